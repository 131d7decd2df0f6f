/**
 * A LoRA adapter merged into its base (W' = W + scaling·B·A, engine/model/lora.ts) and written as a model of its own:
 * a GGUF for llama.cpp / Ollama (`lora-studio quantize` and 'adapters.exportMerged' both call writeMergedGguf), or a
 * Hugging Face folder transformers loads (writeMergedHf: config.json, model.safetensors in f32, the base's tokenizer
 * files and chat template copied).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import { decodeF16 } from '../io/f16.ts';
import { expectedTensors } from '../io/hf-model.ts';
import { loadModel, modelFormat } from '../io/model-source.ts';
import { loadAdapter } from '../io/peft-adapter.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { mergeLora } from '../model/lora.ts';
import { F16Array, type LinearWeight, type ModelWeights } from '../model/types.ts';
import { writeLlamaGguf, type GgufExportFormat, type LlamaGgufResult } from '../quant/gguf-llama.ts';
import { ggufTokenizerKv } from '../quant/gguf-tokenizer.ts';
import { PackedWeight } from '../quant/packed-weight.ts';
import { mergedExportNote } from './merged-note.ts';

/** The base read in f32 and, with an adapter, the merge (which checks the adapter fits the base's shapes). */
export function loadMerged(modelPath: string, adapterDir: string | undefined): ModelWeights {
  const model = loadModel(modelPath, { dtype: Float32Array });
  if (!adapterDir) return model;
  return mergeLora(model, loadAdapter(adapterDir, model.config));
}

export interface MergedGgufOptions {
  format: GgufExportFormat;
  /** general.name (default: the base's file or folder name). */
  name?: string;
  onTensor?: (name: string, index: number, total: number) => void;
}

export type MergedGgufResult = LlamaGgufResult & { tokenizerNote: string | null };

/** The merged model as one GGUF file, the tokenizer and chat template in its metadata, the merge in general.description. */
export function writeMergedGguf(modelPath: string, adapterDir: string | undefined, out: string, opts: MergedGgufOptions): MergedGgufResult {
  const merged = loadMerged(modelPath, adapterDir);
  const tok = ggufTokenizerKv(modelPath, merged.config.vocabSize);
  // A merged file says what it merged into (the dequantized base + B·A) and how it was written.
  const note = adapterDir ? mergedExportNote(modelPath, adapterDir, opts.format) : null;
  const res = writeLlamaGguf(out, merged, { format: opts.format, name: opts.name ?? basename(resolve(modelPath)), extraKv: [...tok.kvs, ...(note?.kvs ?? [])] }, opts.onTensor);
  return { ...res, tokenizerNote: tok.note };
}

/** Files of a Hugging Face folder that carry the tokenizer and chat template, copied as they are. */
export const HF_TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'tokenizer.model', 'vocab.json', 'merges.txt', 'generation_config.json'];

export interface MergedHfResult {
  dir: string;
  files: string[];
  bytes: number;
}

function f32(w: LinearWeight): Float32Array {
  if (w instanceof F16Array) return decodeF16(w.bits);
  if (w instanceof PackedWeight) return Float32Array.from(w.dequantize());
  return w instanceof Float32Array ? w : Float32Array.from(w);
}

/** Every tensor of the model by its Hugging Face name, as f32, in expectedTensors' order. */
function hfTensors(m: ModelWeights): Map<string, Float32Array> {
  const t = new Map<string, Float32Array>();
  t.set('model.embed_tokens.weight', f32(m.embedTokens));
  m.layers.forEach((l, i) => {
    const p = `model.layers.${i}`;
    t.set(`${p}.input_layernorm.weight`, f32(l.inputNorm));
    t.set(`${p}.post_attention_layernorm.weight`, f32(l.postAttentionNorm));
    for (const [proj, lin, group] of [['q_proj', l.q, 'self_attn'], ['k_proj', l.k, 'self_attn'], ['v_proj', l.v, 'self_attn'], ['o_proj', l.o, 'self_attn'], ['gate_proj', l.gate, 'mlp'], ['up_proj', l.up, 'mlp'], ['down_proj', l.down, 'mlp']] as const) {
      t.set(`${p}.${group}.${proj}.weight`, f32(lin.weight));
      if (lin.bias) t.set(`${p}.${group}.${proj}.bias`, f32(lin.bias));
    }
    if (l.qNorm) t.set(`${p}.self_attn.q_norm.weight`, f32(l.qNorm));
    if (l.kNorm) t.set(`${p}.self_attn.k_norm.weight`, f32(l.kNorm));
  });
  t.set('model.norm.weight', f32(m.norm));
  if (!m.config.tieWordEmbeddings) t.set('lm_head.weight', f32(m.lmHead));
  return t;
}

/**
 * The merged model as a Hugging Face folder in `dir` (created): the base's config.json with the torch_dtype written
 * (f32 by default, so the merge loses nothing; f16 or bf16 for half the bytes, rounded once from the f32 merge),
 * model.safetensors, and the base's tokenizer files. Only a
 * Hugging Face folder base has a config.json to carry over; a GGUF base is refused (its merged export is a GGUF).
 */
export function writeMergedHf(modelPath: string, adapterDir: string | undefined, dir: string, note?: string, dtype: 'F32' | 'F16' | 'BF16' = 'F32'): MergedHfResult {
  if (modelFormat(modelPath) !== 'hf') throw new Error(`${modelPath} is a GGUF file: a Hugging Face folder export needs a base folder with config.json (export a GGUF format instead)`);
  const merged = loadMerged(modelPath, adapterDir);
  const tensors = hfTensors(merged);
  mkdirSync(dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(modelPath, 'config.json'), 'utf8')) as Record<string, unknown>;
  const torchDtype = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype];
  config.torch_dtype = torchDtype;
  if ('dtype' in config) config.dtype = torchDtype;
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  const metadata: Record<string, string> = { format: 'pt', ...(note ? { lora_studio_merge: note } : {}) };
  writeSafetensors(
    join(dir, 'model.safetensors'),
    expectedTensors(merged.config).map(({ name, shape }) => {
      const data = tensors.get(name);
      if (!data) throw new Error(`merged export: the model has no tensor ${name}`);
      // Norms and biases too: transformers loads a folder in one dtype (the merge itself was computed in f32).
      return { name, shape, dtype, data };
    }),
    metadata,
  );
  const files = ['config.json', 'model.safetensors'];
  for (const f of HF_TOKENIZER_FILES) {
    if (!existsSync(join(modelPath, f))) continue;
    copyFileSync(join(modelPath, f), join(dir, f));
    files.push(f);
  }
  return { dir, files, bytes: files.reduce((s, f) => s + statSync(join(dir, f)).size, 0) };
}
