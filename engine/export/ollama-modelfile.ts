/**
 * "Export for Ollama": a folder Ollama builds a model from with `ollama create NAME -f Modelfile` — the adapter as a
 * GGUF LoRA (adapter.gguf, engine/quant/gguf-lora.ts) and a Modelfile (Ollama's documented syntax:
 * https://github.com/ollama/ollama/blob/main/docs/modelfile.md) whose FROM is the base the adapter was trained on:
 * the Ollama model name when the base is a blob of Ollama's store (so the model keeps the base's own template and
 * parameters), else the base GGUF file or model folder by absolute path. ADAPTER points at ./adapter.gguf. The base's
 * chat template, when it is one of the families below, becomes TEMPLATE (Ollama's Go template syntax) and its turn
 * markers PARAMETER stop, so the model stops at the end of its answer; another template is left for Ollama to read
 * from the GGUF metadata, and the Modelfile says so.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { ollamaNamesForBlob } from '../io/model-discovery.ts';
import { isGgufFile } from '../io/model-source.ts';
import { readAdapterConfig } from '../io/peft-adapter.ts';
import { exportAdapterGguf } from '../quant/gguf-lora.ts';
import { readGguf } from '../quant/gguf-reader.ts';

export type OllamaTemplateFamily = 'chatml' | 'llama3' | 'mistral';

/** Each family's TEMPLATE (as Ollama's own library models write it) and the markers that end a turn. */
export const OLLAMA_TEMPLATES: Record<OllamaTemplateFamily, { template: string; stop: string[] }> = {
  chatml: {
    template: '{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n',
    stop: ['<|im_start|>', '<|im_end|>'],
  },
  llama3: {
    template: '{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>\n{{- end }}<|start_header_id|>assistant<|end_header_id|>\n\n',
    stop: ['<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
  },
  mistral: {
    template: '{{- range .Messages }}{{- if eq .Role "user" }}[INST] {{ .Content }} [/INST]{{- else if eq .Role "assistant" }} {{ .Content }}</s>{{- end }}{{- end }}',
    stop: ['[INST]', '[/INST]'],
  },
};

/** Which family a Jinja chat template is, by the turn markers it writes; null for any other. */
export function templateFamily(jinja: string | null): OllamaTemplateFamily | null {
  if (!jinja) return null;
  if (jinja.includes('<|im_start|>')) return 'chatml';
  if (jinja.includes('<|start_header_id|>')) return 'llama3';
  if (jinja.includes('[INST]')) return 'mistral';
  return null;
}

/** The base's chat template: a GGUF's tokenizer.chat_template, or a folder's chat_template.jinja / tokenizer_config.json. */
export function baseChatTemplate(base: string): string | null {
  if (isGgufFile(base)) {
    const v = readGguf(base).kv.get('tokenizer.chat_template');
    return v && v.type === 'string' ? v.value : null;
  }
  const jinja = join(base, 'chat_template.jinja');
  if (existsSync(jinja)) return readFileSync(jinja, 'utf8');
  try {
    const t = (JSON.parse(readFileSync(join(base, 'tokenizer_config.json'), 'utf8')) as { chat_template?: unknown }).chat_template;
    if (typeof t === 'string') return t;
    // A list of named templates: the default one.
    if (Array.isArray(t)) {
      const d = (t as { name?: unknown; template?: unknown }[]).find((x) => x && x.name === 'default');
      return d && typeof d.template === 'string' ? d.template : null;
    }
  } catch {
    // no tokenizer_config.json: no template
  }
  return null;
}

/** An Ollama model name from a display name: lower case, [a-z0-9._-], never empty. */
export function ollamaModelName(name: string): string {
  const s = name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[-._]+|[-._]+$/g, '');
  return s || 'lora-studio-adapter';
}

/** A Modelfile string argument: Ollama takes "…" for one line and """…""" for text with newlines or quotes. */
function quoted(s: string): string {
  if (!s.includes('\n') && !s.includes('"')) return `"${s}"`;
  if (s.includes('"""')) throw new Error(`cannot write ${JSON.stringify(s)} into a Modelfile: it contains """`);
  return `"""${s}"""`;
}

export interface OllamaExport {
  dir: string;
  modelfile: string;
  adapter: string;
  /** What FROM says: an Ollama model name or an absolute path. */
  from: string;
  fromOllama: boolean;
  template: OllamaTemplateFamily | null;
  /** The model name `command` creates. */
  name: string;
  command: string;
}

export interface OllamaExportOptions {
  /** The base model (a GGUF or folder); default the adapter's base_model_name_or_path. */
  modelDir?: string;
  /** Display name (the adapter's); the Ollama model name is made from it. */
  name?: string;
}

export function exportForOllama(adapterDir: string, outDir: string, opts: OllamaExportOptions = {}): OllamaExport {
  const base = opts.modelDir ?? readAdapterConfig(adapterDir).baseModelNameOrPath;
  if (!base || !existsSync(base)) {
    throw new Error(`${adapterDir}: its base model ${base ? `${base} is not on this machine` : 'is not named in adapter_config.json'}; Ollama's FROM needs the base the adapter was trained on`);
  }
  const absBase = resolve(base);
  const gguf = isGgufFile(absBase);
  mkdirSync(outDir, { recursive: true });
  const adapter = join(outDir, 'adapter.gguf');
  exportAdapterGguf(adapterDir, adapter, { dtype: 'f16', modelDir: absBase, ...(opts.name ? { name: opts.name } : {}) });
  const ollamaNames = gguf ? ollamaNamesForBlob(absBase) : [];
  const fromOllama = ollamaNames.length > 0;
  const from = fromOllama ? ollamaNames[0]! : absBase;
  const family = templateFamily(baseChatTemplate(absBase));
  const name = ollamaModelName(opts.name ?? basename(adapterDir));
  const lines = [`# Written by LoRA Studio: the LoRA adapter "${opts.name ?? basename(adapterDir)}" on its base model.`, `# Build it with: ollama create ${name} -f Modelfile`, `FROM ${from}`, 'ADAPTER ./adapter.gguf'];
  if (fromOllama) {
    lines.push(`# The chat template and stop parameters are ${from}'s own (Ollama carries them over from FROM).`);
  } else if (family) {
    const t = OLLAMA_TEMPLATES[family];
    lines.push(`# The base's chat template is ${family}:`, `TEMPLATE ${quoted(t.template)}`, ...t.stop.map((s) => `PARAMETER stop ${quoted(s)}`));
  } else {
    lines.push(`# The base's chat template is not one the studio translates (ChatML, Llama 3, Mistral); Ollama reads ${gguf ? "the GGUF's tokenizer.chat_template" : "the model's"} when it knows it, else write TEMPLATE here.`);
  }
  const modelfile = join(outDir, 'Modelfile');
  const tmp = `${modelfile}.tmp`;
  writeFileSync(tmp, lines.join('\n') + '\n');
  renameSync(tmp, modelfile);
  return { dir: outDir, modelfile, adapter, from, fromOllama, template: fromOllama ? null : family, name, command: `ollama create ${name} -f ${quotePath(modelfile)}` };
}

/** A path as a shell word: as it is when safe, else in single quotes. */
function quotePath(p: string): string {
  return /^[A-Za-z0-9_./:\\-]+$/.test(p) ? p : `'${p.replaceAll("'", "'\\''")}'`;
}
