/**
 * tokenizer.ggml.* metadata for a GGUF export, from the model folder's tokenizer.json, so llama.cpp can load the file
 * on its own. Byte-level BPE tokenizers (Llama 3, SmolLM, GPT-2 style) are written as llama.cpp's "gpt2" vocabulary:
 * tokens by id, token types (1 normal, 3 control, 4 user-defined, 5 unused for id gaps), merges. Other tokenizers
 * (SentencePiece-style byte-fallback BPE needs scores llama.cpp takes from tokenizer.model) are not written; the
 * caller reports that.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readGguf } from './gguf-reader.ts';
import type { GgufKv } from './gguf-writer.ts';

type Json = Record<string, unknown>;

const isObj = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);

function readJson(path: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: cannot read as JSON (${(e as Error).message})`, { cause: e });
  }
  if (!isObj(v)) throw new Error(`${path}: expected a JSON object`);
  return v;
}

/** llama.cpp's pre-tokenizer name for the pre_tokenizer of a tokenizer.json (convert_hf_to_gguf identifies it by hash). */
export function preTokenizerName(tj: Json): string {
  const text = JSON.stringify(tj.pre_tokenizer ?? null);
  if (text.includes("(?i:'s|'t|'re|'ve|'m|'ll|'d)") && text.includes('\\\\p{N}{1,3}')) return 'llama-bpe';
  if (text.includes('"Digits"') && text.includes('"individual_digits":true') && text.includes('"ByteLevel"')) return 'smollm';
  if (text.includes('"ByteLevel"')) return 'gpt-2';
  return 'default';
}

export interface GgufTokenizerResult {
  kvs: GgufKv[];
  /** Why nothing (or less) was written, for the user. */
  note: string | null;
}

/** general.* keys of a source GGUF that say where the model came from; the exporter writes its own name, type, file type. */
const PROVENANCE_KEYS = ['general.basename', 'general.finetune', 'general.organization', 'general.size_label', 'general.license', 'general.languages', 'general.tags', 'general.version', 'general.author', 'general.url', 'general.repo_url', 'general.description'];

/** tokenizer.* and provenance general.* keys copied unchanged from the GGUF the model was loaded from. */
function kvFromSourceGguf(path: string): GgufTokenizerResult {
  const file = readGguf(path);
  const kvs: GgufKv[] = [];
  for (const [key, value] of file.kv) if (key.startsWith('tokenizer.') || PROVENANCE_KEYS.includes(key)) kvs.push({ key, value });
  return { kvs, note: file.kv.has('tokenizer.ggml.model') ? null : `${path} has no tokenizer.ggml.model: the GGUF has no tokenizer and llama.cpp will refuse to load it` };
}

/** Whether tokenizer.json's post-processor puts `token` around a single sequence, at the start or the end. */
function postProcessorAdds(tj: Json, token: unknown, where: 'start' | 'end'): boolean | null {
  const pp = tj.post_processor;
  if (typeof token !== 'string' || !isObj(pp)) return null;
  const procs = pp.type === 'Sequence' && Array.isArray(pp.processors) ? pp.processors : [pp];
  const tpl = procs.find((x): x is Json => isObj(x) && x.type === 'TemplateProcessing');
  if (!tpl || !Array.isArray(tpl.single)) return procs.some((x) => isObj(x) && x.type === 'ByteLevel') ? false : null;
  const item = where === 'start' ? tpl.single[0] : tpl.single.at(-1);
  return isObj(item) && isObj(item.SpecialToken) && item.SpecialToken.id === token;
}

const tokenText = (v: unknown): string | null => (typeof v === 'string' ? v : isObj(v) && typeof v.content === 'string' ? v.content : null);

/**
 * The tokenizer (and, from a GGUF source, provenance) metadata for a model GGUF exported from `source`: a GGUF file
 * (its keys copied) or a Hugging Face folder (built from tokenizer.json, tokenizer_config.json, chat_template.jinja).
 */
export function ggufTokenizerKv(source: string, vocabSize: number): GgufTokenizerResult {
  if (source.toLowerCase().endsWith('.gguf')) return kvFromSourceGguf(source);
  const modelDir = source;
  const tjPath = join(modelDir, 'tokenizer.json');
  if (!existsSync(tjPath)) return { kvs: [], note: 'no tokenizer.json in the model folder: the GGUF has no tokenizer and llama.cpp will refuse to load it' };
  const tj = readJson(tjPath);
  const model = tj.model;
  if (!isObj(model) || model.type !== 'BPE' || model.byte_fallback === true || !isObj(model.vocab) || !Array.isArray(model.merges)) {
    return { kvs: [], note: `${tjPath}: only byte-level BPE tokenizers are exported to GGUF; convert this one with llama.cpp's converter` };
  }
  const tokens = new Array<string | undefined>(vocabSize).fill(undefined);
  const types = new Array<number>(vocabSize).fill(1);
  for (const [tok, id] of Object.entries(model.vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new Error(`${tjPath}: model.vocab["${tok}"] is not a token id`);
    if (id < vocabSize) tokens[id] = tok;
  }
  if (Array.isArray(tj.added_tokens)) {
    tj.added_tokens.forEach((t, i) => {
      if (!isObj(t) || typeof t.id !== 'number' || typeof t.content !== 'string') throw new Error(`${tjPath}: added_tokens[${i}] needs "id" and "content"`);
      if (t.id < vocabSize) {
        tokens[t.id] = t.content;
        types[t.id] = t.special === true ? 3 : 4;
      }
    });
  }
  const names = tokens.map((t, i) => {
    if (t !== undefined) return t;
    types[i] = 5;
    return `[PAD${i}]`;
  });
  const merges = model.merges.map((m, i) => {
    if (typeof m === 'string') return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return `${m[0]} ${m[1]}`;
    throw new Error(`${tjPath}: model.merges[${i}] is neither "a b" nor ["a", "b"]`);
  });
  const kvs: GgufKv[] = [
    { key: 'tokenizer.ggml.model', value: { type: 'string', value: 'gpt2' } },
    { key: 'tokenizer.ggml.pre', value: { type: 'string', value: preTokenizerName(tj) } },
    { key: 'tokenizer.ggml.tokens', value: { type: 'array', itemType: 'string', values: names } },
    { key: 'tokenizer.ggml.token_type', value: { type: 'array', itemType: 'int32', values: types } },
    { key: 'tokenizer.ggml.merges', value: { type: 'array', itemType: 'string', values: merges } },
  ];
  const tcPath = join(modelDir, 'tokenizer_config.json');
  const tc = existsSync(tcPath) ? readJson(tcPath) : {};
  const cfgPath = join(modelDir, 'config.json');
  const cfg = existsSync(cfgPath) ? readJson(cfgPath) : {};
  const idOf = (v: unknown): number | null => {
    if (Array.isArray(v)) v = v[0];
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < vocabSize ? v : null;
  };
  const special: [string, unknown][] = [
    ['bos_token_id', cfg.bos_token_id],
    ['eos_token_id', cfg.eos_token_id],
    ['padding_token_id', cfg.pad_token_id],
  ];
  for (const [k, v] of special) {
    const id = idOf(v);
    if (id !== null) kvs.push({ key: `tokenizer.ggml.${k}`, value: { type: 'uint32', value: id } });
  }
  const unk = tokenText(tc.unk_token) ?? (typeof model.unk_token === 'string' ? model.unk_token : null);
  const unkId = unk === null ? -1 : names.indexOf(unk);
  if (unkId >= 0) kvs.push({ key: 'tokenizer.ggml.unknown_token_id', value: { type: 'uint32', value: unkId } });
  if (idOf(cfg.pad_token_id) === null) {
    const padId = tokenText(tc.pad_token) === null ? -1 : names.indexOf(tokenText(tc.pad_token) as string);
    if (padId >= 0) kvs.push({ key: 'tokenizer.ggml.padding_token_id', value: { type: 'uint32', value: padId } });
  }
  // transformers 5 drops add_bos_token from tokenizer_config.json: then what tokenizer.json's post-processor adds decides.
  const bos = tokenText(tc.bos_token) ?? (idOf(cfg.bos_token_id) === null ? null : names[idOf(cfg.bos_token_id) as number]);
  const eos = tokenText(tc.eos_token) ?? (idOf(cfg.eos_token_id) === null ? null : names[idOf(cfg.eos_token_id) as number]);
  const addBos = typeof tc.add_bos_token === 'boolean' ? tc.add_bos_token : postProcessorAdds(tj, bos, 'start');
  const addEos = typeof tc.add_eos_token === 'boolean' ? tc.add_eos_token : postProcessorAdds(tj, eos, 'end');
  if (addBos !== null) kvs.push({ key: 'tokenizer.ggml.add_bos_token', value: { type: 'bool', value: addBos } });
  if (addEos !== null) kvs.push({ key: 'tokenizer.ggml.add_eos_token', value: { type: 'bool', value: addEos } });
  // Byte-level BPE encodes the leading space itself; llama.cpp must not prepend one.
  kvs.push({ key: 'tokenizer.ggml.add_space_prefix', value: { type: 'bool', value: false } });
  // transformers 5 writes the template only to chat_template.jinja.
  const jinjaPath = join(modelDir, 'chat_template.jinja');
  const template = typeof tc.chat_template === 'string' ? tc.chat_template : existsSync(jinjaPath) ? readFileSync(jinjaPath, 'utf8') : null;
  if (template !== null) kvs.push({ key: 'tokenizer.chat_template', value: { type: 'string', value: template } });
  return { kvs, note: null };
}
