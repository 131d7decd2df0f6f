/**
 * A llama-family model as a GGUF file llama.cpp loads: architecture "llama", llama.cpp's tensor names and metadata
 * keys (convert_hf_to_gguf.py, LlamaModel), every decoder linear in the chosen format, norms in F32, the embedding
 * and the output head in F16. Q and K rows are permuted from Hugging Face's half-split RoPE layout to ggml's
 * interleaved one, as the converter does.
 */
import type { FloatArray, Linear, ModelWeights, LinearWeight } from '../model/types.ts';
import { floatWeight } from '../model/weight-array.ts';
import { QUANT_FORMATS } from './format.ts';
import { GGML_TYPE, type GgufValue } from './gguf-types.ts';
import { writeGguf, type GgufKv, type GgufTensorSpec, type GgufWriteResult } from './gguf-writer.ts';

export const GGUF_EXPORT_FORMATS = ['f16', 'q8_0', 'q4_0', 'q4_1'] as const;
export type GgufExportFormat = (typeof GGUF_EXPORT_FORMATS)[number];

/** llama.cpp's LLAMA_FTYPE for a file whose linears are in `format`. */
const FILE_TYPE: Record<GgufExportFormat, number> = { f16: 1, q4_0: 2, q4_1: 3, q8_0: 7 };

export const LLAMA_MATRIX_NAMES = {
  q: 'attn_q',
  k: 'attn_k',
  v: 'attn_v',
  o: 'attn_output',
  gate: 'ffn_gate',
  up: 'ffn_up',
  down: 'ffn_down',
} as const;

export interface LlamaGgufOptions {
  format: GgufExportFormat;
  /** general.name */
  name?: string;
  /** Extra keys (e.g. tokenizer.ggml.*), written after the model's. */
  extraKv?: GgufKv[];
}

/**
 * llama.cpp's `LlamaModel.permute`: rows viewed as (n_head, 2, head_dim/2) → swap the last two → flattened. Row
 * (h, half, i) moves to (h, i, half), turning rotate-half pairs (i, i + d/2) into adjacent pairs (2i, 2i + 1).
 */
export function permuteQK(w: FloatArray, rows: number, cols: number, nHead: number): Float32Array {
  const hd = rows / nHead;
  if (!Number.isInteger(hd) || hd % 2 !== 0) throw new Error(`permuteQK: ${rows} rows do not split into ${nHead} heads of even size`);
  const half = hd / 2;
  const out = new Float32Array(rows * cols);
  for (let h = 0; h < nHead; h++) {
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < half; i++) {
        const src = (h * hd + s * half + i) * cols;
        const dst = (h * hd + i * 2 + s) * cols;
        for (let c = 0; c < cols; c++) out[dst + c] = w[src + c];
      }
    }
  }
  return out;
}

/** Inverse of permuteQK (what a GGUF → Hugging Face converter does). */
export function unpermuteQK(w: FloatArray, rows: number, cols: number, nHead: number): Float32Array {
  const hd = rows / nHead;
  const half = hd / 2;
  const out = new Float32Array(rows * cols);
  for (let h = 0; h < nHead; h++) {
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < half; i++) {
        const dst = (h * hd + s * half + i) * cols;
        const src = (h * hd + i * 2 + s) * cols;
        for (let c = 0; c < cols; c++) out[dst + c] = w[src + c];
      }
    }
  }
  return out;
}

/** llama3 rope scaling as the converter stores it: one factor per rotary frequency, in `rope_freqs.weight`. */
export function llama3RopeFactors(model: ModelWeights): Float32Array | null {
  const c = model.config;
  const s = c.ropeScaling;
  if (!s || s.ropeType !== 'llama3') return null;
  const dim = c.headDim;
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    const freq = Math.fround(1 / Math.fround(c.ropeTheta ** Math.fround((2 * i) / dim)));
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

function f32(w: LinearWeight): Float32Array {
  const a = floatWeight(w);
  return a instanceof Float32Array ? a : Float32Array.from(a);
}

const u32 = (value: number): GgufValue => ({ type: 'uint32', value });
const f32v = (value: number): GgufValue => ({ type: 'float32', value });
const str = (value: string): GgufValue => ({ type: 'string', value });

/** Checks that the model is something llama.cpp's "llama" architecture can run, naming what is not. */
export function checkLlamaExportable(model: ModelWeights): void {
  const c = model.config;
  if (c.family !== 'llama' && c.family !== 'mistral') throw new Error(`GGUF export: model family '${c.family}' is not supported (llama and mistral only)`);
  if (c.qkvBias || c.oBias || c.mlpBias) throw new Error('GGUF export: linear biases (attention_bias / mlp_bias) are not supported by the llama architecture');
  if (c.qkNorm) throw new Error('GGUF export: q_norm/k_norm are not supported by the llama architecture');
}

export function llamaGgufContent(model: ModelWeights, opts: LlamaGgufOptions): { kvs: GgufKv[]; tensors: GgufTensorSpec[]; fallbacks: { name: string; reason: string }[] } {
  checkLlamaExportable(model);
  const c = model.config;
  const fmt = QUANT_FORMATS[opts.format];
  if (fmt.ggmlType === null) throw new Error(`GGUF export: format '${opts.format}' has no GGUF type`);
  const kvs: GgufKv[] = [
    { key: 'general.architecture', value: str('llama') },
    { key: 'general.type', value: str('model') },
    { key: 'general.name', value: str(opts.name ?? c.architecture) },
    { key: 'general.file_type', value: u32(FILE_TYPE[opts.format]) },
    ...(opts.format === 'f16' ? [] : [{ key: 'general.quantization_version', value: u32(2) }]),
    { key: 'general.alignment', value: u32(32) },
    { key: 'llama.vocab_size', value: u32(c.vocabSize) },
    { key: 'llama.context_length', value: u32(c.maxPositionEmbeddings) },
    { key: 'llama.embedding_length', value: u32(c.hiddenSize) },
    { key: 'llama.block_count', value: u32(c.numLayers) },
    { key: 'llama.feed_forward_length', value: u32(c.intermediateSize) },
    { key: 'llama.rope.dimension_count', value: u32(c.headDim) },
    { key: 'llama.attention.head_count', value: u32(c.numHeads) },
    { key: 'llama.attention.head_count_kv', value: u32(c.numKvHeads) },
    ...(c.headDim * c.numHeads !== c.hiddenSize
      ? [
          { key: 'llama.attention.key_length', value: u32(c.headDim) },
          { key: 'llama.attention.value_length', value: u32(c.headDim) },
        ]
      : []),
    { key: 'llama.rope.freq_base', value: f32v(c.ropeTheta) },
    { key: 'llama.attention.layer_norm_rms_epsilon', value: f32v(c.rmsNormEps) },
    ...(opts.extraKv ?? []),
  ];

  const H = c.hiddenSize;
  const tensors: GgufTensorSpec[] = [];
  const fallbacks: { name: string; reason: string }[] = [];
  const norm = (name: string, w: FloatArray): void => {
    tensors.push({ name, dims: [w.length], type: GGML_TYPE.F32, data: () => new Uint8Array(f32(w).slice().buffer) });
  };
  const half = (name: string, w: LinearWeight, rows: number, cols: number): void => {
    tensors.push({ name, dims: [cols, rows], type: GGML_TYPE.F16, data: () => QUANT_FORMATS.f16.quantize(f32(w), rows, cols) });
  };
  const linear = (name: string, lin: Linear, permuteHeads: number): void => {
    const { outFeatures: rows, inFeatures: cols } = lin;
    // As llama.cpp's converter: a row the format's blocks do not divide is stored in F16.
    let f = fmt;
    try {
      fmt.check(rows, cols);
    } catch (e) {
      fallbacks.push({ name, reason: (e as Error).message });
      f = QUANT_FORMATS.f16;
    }
    tensors.push({
      name,
      dims: [cols, rows],
      type: f.ggmlType ?? GGML_TYPE.F16,
      data: () => f.quantize(permuteHeads > 0 ? permuteQK(floatWeight(lin.weight), rows, cols, permuteHeads) : f32(lin.weight), rows, cols),
    });
  };

  half('token_embd.weight', model.embedTokens, c.vocabSize, H);
  const rope = llama3RopeFactors(model);
  if (rope) norm('rope_freqs.weight', rope);
  model.layers.forEach((L, i) => {
    norm(`blk.${i}.attn_norm.weight`, L.inputNorm);
    linear(`blk.${i}.${LLAMA_MATRIX_NAMES.q}.weight`, L.q, c.numHeads);
    linear(`blk.${i}.${LLAMA_MATRIX_NAMES.k}.weight`, L.k, c.numKvHeads);
    linear(`blk.${i}.${LLAMA_MATRIX_NAMES.v}.weight`, L.v, 0);
    linear(`blk.${i}.${LLAMA_MATRIX_NAMES.o}.weight`, L.o, 0);
    norm(`blk.${i}.ffn_norm.weight`, L.postAttentionNorm);
    linear(`blk.${i}.${LLAMA_MATRIX_NAMES.gate}.weight`, L.gate, 0);
    linear(`blk.${i}.${LLAMA_MATRIX_NAMES.up}.weight`, L.up, 0);
    linear(`blk.${i}.${LLAMA_MATRIX_NAMES.down}.weight`, L.down, 0);
  });
  norm('output_norm.weight', model.norm);
  // Tied embeddings: llama.cpp falls back to token_embd when output.weight is absent, as the converter relies on.
  if (!c.tieWordEmbeddings) half('output.weight', model.lmHead, c.vocabSize, H);
  return { kvs, tensors, fallbacks };
}

export interface LlamaGgufResult extends GgufWriteResult {
  /** Linears written in F16 because the format's blocks do not divide their rows. */
  fallbacks: { name: string; reason: string }[];
}

export function writeLlamaGguf(path: string, model: ModelWeights, opts: LlamaGgufOptions, onTensor?: (name: string, index: number, total: number) => void): LlamaGgufResult {
  const { kvs, tensors, fallbacks } = llamaGgufContent(model, opts);
  return { ...writeGguf(path, kvs, tensors, (name, i) => onTensor?.(name, i, tensors.length)), fallbacks };
}
