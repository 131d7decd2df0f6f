/**
 * A LoRA adapter as a GGUF LoRA file, what llama.cpp's `--lora` and Ollama's `ADAPTER` load next to a GGUF base model
 * (convert_lora_to_gguf.py's layout): general.type "adapter", adapter.type "lora", adapter.lora.alpha, and per adapted
 * linear `blk.{i}.<name>.weight.lora_a` [in, r] and `.lora_b` [r, out] (ggml dims, innermost first: PEFT's row-major
 * lora_A [r, in] and lora_B [out, r] bytes as they are). llama.cpp scales by alpha / r, so rsLoRA's alpha / √r is
 * written as the alpha that gives the same scale. For the "llama" architecture (Llama, Mistral) the base GGUF has its
 * q/k rows permuted to ggml's RoPE layout, so lora_b's rows of q_proj and k_proj are permuted the same way: then
 * W' + s·B'A = permute(W + s·BA), the merged model's GGUF weight.
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { tempSiblingPath } from '../io/atomic.ts';
import { ggufModelConfig, isGgufFile } from '../io/gguf-model.ts';
import { readHfConfig } from '../io/hf-config.ts';
import { readGguf } from './gguf-reader.ts';
import { loadAdapter, readAdapterConfig } from '../io/peft-adapter.ts';
import type { LoraTargetName, LoraWeights, ModelConfig } from '../model/types.ts';
import { LORA_TARGET_ORDER, targetShape } from '../model/lora.ts';
import { LLAMA_MATRIX_NAMES, permuteQK } from './gguf-llama.ts';
import { GGML_TYPE, type GgufValue } from './gguf-types.ts';
import { writeGguf, type GgufKv, type GgufTensorSpec, type GgufWriteResult } from './gguf-writer.ts';
import { QUANT_FORMATS } from './format.ts';

import { LORA_GGUF_DTYPES, type LoraGgufDtype } from '../../common/quant-formats.ts';
export { LORA_GGUF_DTYPES, type LoraGgufDtype };

const TENSOR_NAME: Record<LoraTargetName, string> = {
  q_proj: LLAMA_MATRIX_NAMES.q,
  k_proj: LLAMA_MATRIX_NAMES.k,
  v_proj: LLAMA_MATRIX_NAMES.v,
  o_proj: LLAMA_MATRIX_NAMES.o,
  gate_proj: LLAMA_MATRIX_NAMES.gate,
  up_proj: LLAMA_MATRIX_NAMES.up,
  down_proj: LLAMA_MATRIX_NAMES.down,
};

/** llama.cpp's architecture for a model family; Llama and Mistral are both "llama" there. */
export function ggufArchitecture(cfg: ModelConfig): 'llama' | 'qwen2' | 'qwen3' {
  switch (cfg.family) {
    case 'llama':
    case 'mistral':
      return 'llama';
    case 'qwen2':
    case 'qwen3':
      return cfg.family;
  }
}

export interface LoraGgufOptions {
  dtype: LoraGgufDtype;
  name?: string;
  /**
   * The base the adapter was trained on, named in the file (general.base_model.0.name, as llama.cpp's converter
   * writes it, and lora_studio.base_model.file): for a run trained on a GGUF, that GGUF's file name, so the adapter
   * is put on the same quantized base it learned on. `baseWeights`: the run's train.baseWeights, when known.
   */
  base?: { name: string; file?: string; baseWeights?: string };
}

export function loraGgufContent(lora: LoraWeights, cfg: ModelConfig, opts: LoraGgufOptions): { kvs: GgufKv[]; tensors: GgufTensorSpec[] } {
  const arch = ggufArchitecture(cfg);
  if (arch === 'llama' && (cfg.qkvBias || cfg.oBias || cfg.mlpBias || cfg.qkNorm)) {
    throw new Error('GGUF LoRA: this model has biases or q/k norms, which llama.cpp\'s "llama" architecture does not have, so no GGUF base exists for it');
  }
  if (lora.layers.length !== cfg.numLayers) throw new Error(`GGUF LoRA: the adapter has ${lora.layers.length} layers, the model ${cfg.numLayers}`);
  const { r } = lora.config;
  const str = (value: string): GgufValue => ({ type: 'string', value });
  const kvs: GgufKv[] = [
    { key: 'general.architecture', value: str(arch) },
    { key: 'general.type', value: str('adapter') },
    { key: 'general.name', value: str(opts.name ?? 'lora') },
    { key: 'general.alignment', value: { type: 'uint32', value: 32 } },
    { key: 'adapter.type', value: str('lora') },
    // llama.cpp applies alpha / r; this alpha reproduces the adapter's own scaling (alpha / √r with rsLoRA).
    { key: 'adapter.lora.alpha', value: { type: 'float32', value: lora.scaling * r } },
  ];
  if (opts.base) {
    kvs.push({ key: 'general.base_model.count', value: { type: 'uint32', value: 1 } }, { key: 'general.base_model.0.name', value: str(opts.base.name) });
    if (opts.base.file) kvs.push({ key: 'lora_studio.base_model.file', value: str(opts.base.file) });
    if (opts.base.baseWeights) kvs.push({ key: 'lora_studio.base_weights', value: str(opts.base.baseWeights) });
  }
  const type = opts.dtype === 'f16' ? GGML_TYPE.F16 : GGML_TYPE.F32;
  const encode = (w: Float32Array, rows: number, cols: number): Uint8Array =>
    opts.dtype === 'f16' ? QUANT_FORMATS.f16.quantize(w, rows, cols) : new Uint8Array(w.buffer, w.byteOffset, w.byteLength).slice();
  const asF32 = (w: ArrayLike<number>): Float32Array => (w instanceof Float32Array ? w : Float32Array.from(w));
  const tensors: GgufTensorSpec[] = [];
  lora.layers.forEach((layer, i) => {
    for (const target of LORA_TARGET_ORDER) {
      const pair = layer[target];
      if (!pair) continue;
      const { outFeatures: out, inFeatures: inF } = targetShape(cfg, target);
      const heads = arch !== 'llama' ? 0 : target === 'q_proj' ? cfg.numHeads : target === 'k_proj' ? cfg.numKvHeads : 0;
      const base = `blk.${i}.${TENSOR_NAME[target]}.weight`;
      tensors.push({ name: `${base}.lora_a`, dims: [inF, r], type, data: () => encode(asF32(pair.A), r, inF) });
      tensors.push({ name: `${base}.lora_b`, dims: [r, out], type, data: () => encode(heads > 0 ? permuteQK(pair.B, out, r, heads) : asF32(pair.B), out, r) });
    }
  });
  if (tensors.length === 0) throw new Error('GGUF LoRA: the adapter has no LoRA tensors');
  return { kvs, tensors };
}

export function writeLoraGguf(path: string, lora: LoraWeights, cfg: ModelConfig, opts: LoraGgufOptions): GgufWriteResult {
  const { kvs, tensors } = loraGgufContent(lora, cfg, opts);
  return writeGguf(path, kvs, tensors);
}

/**
 * An adapter folder as a GGUF LoRA file at `out` (written beside and renamed, so a failure leaves no half file).
 * The base model gives the architecture and head counts: `modelDir`, else the adapter's base_model_name_or_path when
 * that is here — a folder (config.json) or a GGUF file; a GGUF base is named in the file (LoraGgufOptions.base).
 */
export function exportAdapterGguf(adapterDir: string, out: string, opts: LoraGgufOptions & { modelDir?: string }): GgufWriteResult & { modelDir: string } {
  const modelDir = opts.modelDir ?? readAdapterConfig(adapterDir).baseModelNameOrPath;
  const gguf = typeof modelDir === 'string' && modelDir !== '' && isGgufFile(modelDir);
  if (!modelDir || (!gguf && !existsSync(join(modelDir, 'config.json')))) {
    throw new Error(
      `${adapterDir}: its base model ${modelDir ? `${modelDir} is not here (no GGUF file, no folder with config.json)` : 'is not named in adapter_config.json'}; give the base model folder or GGUF file (--model) so the architecture and head counts are known`,
    );
  }
  const cfg = gguf ? ggufModelConfig(readGguf(resolve(modelDir))) : readHfConfig(modelDir);
  const lora = loadAdapter(adapterDir, cfg);
  const base = opts.base ?? (gguf ? { name: basename(modelDir), file: basename(modelDir) } : undefined);
  const tmp = tempSiblingPath(out);
  try {
    const r = writeLoraGguf(tmp, lora, cfg, { ...opts, name: opts.name ?? basename(adapterDir), ...(base ? { base } : {}) });
    renameSync(tmp, out);
    return { ...r, modelDir };
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
