/**
 * A GGUF file (llama.cpp, Ollama, LM Studio) as a model source: the same ModelConfig and ModelWeights the Hugging Face
 * loader makes, so every part of the studio trains, generates and measures on the GGUF a user already runs.
 *
 * - Config from the `{arch}.*` keys (llama, mistral, qwen2, qwen3); vocab size = the length of tokenizer.ggml.tokens.
 * - Tensor names map to Hugging Face's (token_embd → model.embed_tokens, blk.N.attn_q → …q_proj, …); ggml dims are
 *   innermost first, so a ggml [in, out] tensor is the row-major [out, in] matrix PyTorch has, bytes unchanged.
 * - llama.cpp's converter permutes the q/k rows of the "llama" architecture to its interleaved RoPE; that is undone
 *   on load (transformers does the same). Qwen2/Qwen3 are stored unpermuted.
 * - No `output.weight` means tied embeddings.
 * - Lazy: only the header is read when the file is opened; each tensor is read and dequantized when it is asked for,
 *   so loading holds the model once plus one tensor in flight, never the file and the floats together.
 *
 * The raw-block seam (for QLoRA on packed weights): `rawTensor` hands back a tensor's ggml blocks and type as
 * stored, and with `{ hfRowOrder: true }` the rows of q/k moved back to Hugging Face order without dequantizing
 * (a row of blocks is a contiguous byte range), so a kernel can dequantize inside the matmul.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { ModelSummary } from '../../common/protocol.ts';
import { sharedCtor, toShared, toSharedPacked } from '../backend/cpu/shared-arrays.ts';
import { F16Array, type FloatArray, type ModelConfig, type ModelFamily, type LinearWeight, type ModelWeights } from '../model/types.ts';
import { ggmlLayout } from '../quant/ggml-blocks.ts';
import { GgufError, readGguf, readTensorBytes, readTensorF32, type GgufFile, type GgufTensorInfo } from '../quant/gguf-reader.ts';
import type { GgufValue } from '../quant/gguf-types.ts';
import { PACKED_GGML_TYPES, PackedWeight, type PackedFormat } from '../quant/packed-weight.ts';
import { ggufStoredTypes, heldAsOf, planBaseWeights } from './base-weights.ts';
import { encodeF16 } from './f16.ts';
import { assembleWeights, expectedTensors, type LoadModelOptions } from './hf-model.ts';

/** A GGUF that is not a model the studio can train (other architecture, an adapter, a vision projector…). */
export class GgufModelError extends GgufError {
  constructor(file: string, message: string, where: { key?: string; tensor?: string } = {}) {
    super(file, message, where);
    this.name = 'GgufModelError';
  }
}

/** llama.cpp architecture → the engine's family and the Hugging Face class it corresponds to. */
export const GGUF_MODEL_ARCHITECTURES: Readonly<Record<string, { family: ModelFamily; hfArchitecture: string; permuteQK: boolean }>> = {
  llama: { family: 'llama', hfArchitecture: 'LlamaForCausalLM', permuteQK: true },
  mistral: { family: 'mistral', hfArchitecture: 'MistralForCausalLM', permuteQK: true },
  qwen2: { family: 'qwen2', hfArchitecture: 'Qwen2ForCausalLM', permuteQK: false },
  qwen3: { family: 'qwen3', hfArchitecture: 'Qwen3ForCausalLM', permuteQK: false },
};

/** Why a known non-llama GGUF cannot be trained, in words a user knows. */
const OTHER_ARCHITECTURES: Readonly<Record<string, string>> = {
  clip: 'a vision projector (mmproj), not a language model',
  gemma: 'Gemma',
  gemma2: 'Gemma 2',
  gemma3: 'Gemma 3',
  phi2: 'Phi-2',
  phi3: 'Phi-3',
  qwen2moe: 'a Qwen2 mixture of experts',
  qwen3moe: 'a Qwen3 mixture of experts',
  bert: 'BERT (an encoder)',
  nomic_bert: 'Nomic BERT (an embedding model)',
  t5: 'T5 (an encoder-decoder)',
  mamba: 'Mamba (a state-space model)',
};

/** Hugging Face tensor name → GGUF tensor name. */
export function ggufTensorName(hfName: string): string {
  const fixed: Record<string, string> = {
    'model.embed_tokens.weight': 'token_embd.weight',
    'model.norm.weight': 'output_norm.weight',
    'lm_head.weight': 'output.weight',
  };
  if (fixed[hfName]) return fixed[hfName];
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hfName);
  if (!m) throw new Error(`no GGUF name for tensor '${hfName}'`);
  const part: Record<string, string> = {
    input_layernorm: 'attn_norm',
    post_attention_layernorm: 'ffn_norm',
    'self_attn.q_proj': 'attn_q',
    'self_attn.k_proj': 'attn_k',
    'self_attn.v_proj': 'attn_v',
    'self_attn.o_proj': 'attn_output',
    'self_attn.q_norm': 'attn_q_norm',
    'self_attn.k_norm': 'attn_k_norm',
    'mlp.gate_proj': 'ffn_gate',
    'mlp.up_proj': 'ffn_up',
    'mlp.down_proj': 'ffn_down',
  };
  const p = part[m[2]];
  if (!p) throw new Error(`no GGUF name for tensor '${hfName}'`);
  return `blk.${m[1]}.${p}.${m[3]}`;
}

function kvNumber(file: GgufFile, key: string): number | undefined {
  const v = file.kv.get(key);
  if (v === undefined) return undefined;
  if (v.type === 'array') {
    // Some converters write a per-layer list; the engine supports one value for every layer.
    const first = v.values[0];
    if (v.values.length === 0 || v.values.some((x) => x !== first)) throw new GgufModelError(file.path, `key '${key}' differs between layers (${v.values.slice(0, 8).join(', ')}…), which is not supported`, { key });
    return Number(first);
  }
  if (v.type === 'string' || v.type === 'bool') throw new GgufModelError(file.path, `key '${key}' must be a number, got ${v.type} ${JSON.stringify(v.value)}`, { key });
  return Number(v.value);
}

function kvString(file: GgufFile, key: string): string | undefined {
  const v = file.kv.get(key);
  if (v === undefined) return undefined;
  if (v.type !== 'string') throw new GgufModelError(file.path, `key '${key}' must be a string, got ${v.type}`, { key });
  return v.value;
}

function requiredInt(file: GgufFile, key: string): number {
  const n = kvNumber(file, key);
  if (n === undefined) throw new GgufModelError(file.path, `key '${key}' is missing`, { key });
  if (!Number.isSafeInteger(n) || n <= 0) throw new GgufModelError(file.path, `key '${key}' must be a positive integer, got ${n}`, { key });
  return n;
}

function arrayLength(v: GgufValue | undefined): number | undefined {
  return v && v.type === 'array' ? v.values.length : undefined;
}

/** The llama.cpp architecture of a GGUF model file, checked to be one the studio trains. */
export function ggufArchitectureOf(file: GgufFile): string {
  const type = kvString(file, 'general.type');
  if (type === 'adapter') throw new GgufModelError(file.path, `is a ${kvString(file, 'adapter.type') ?? 'LoRA'} adapter GGUF, not a model; choose the base model's GGUF (the adapter goes on top of it)`, { key: 'general.type' });
  const arch = kvString(file, 'general.architecture');
  if (arch === undefined) throw new GgufModelError(file.path, "key 'general.architecture' is missing, so the file does not say what model it holds", { key: 'general.architecture' });
  if (!GGUF_MODEL_ARCHITECTURES[arch]) {
    const what = OTHER_ARCHITECTURES[arch];
    throw new GgufModelError(
      file.path,
      `architecture '${arch}'${what ? ` (${what})` : ''} is not supported; the studio trains ${Object.keys(GGUF_MODEL_ARCHITECTURES).join(', ')} GGUFs`,
      { key: 'general.architecture' },
    );
  }
  return arch;
}

/**
 * Llama 3.1+ rope scaling is stored as one factor per rotary frequency (rope_freqs.weight). Those factors follow from
 * (factor, low_freq_factor, high_freq_factor, original context); Meta's published values are tried and must give
 * the stored factors back, or the file is refused rather than trained with a guessed RoPE.
 */
function llama3ScalingFrom(file: GgufFile, headDim: number, theta: number): ModelConfig['ropeScaling'] {
  const t = file.byName.get('rope_freqs.weight');
  if (!t) return null;
  const stored = readTensorF32(file, t);
  const factor = Math.max(...stored);
  for (const [low, high, orig] of [
    [1, 4, 8192],
    [1, 4, 4096],
    [1, 4, 2048],
  ]) {
    const lowWavelen = orig / low;
    const highWavelen = orig / high;
    let ok = stored.length === headDim / 2;
    for (let i = 0; ok && i < headDim / 2; i++) {
      const freq = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / headDim)));
      const wavelen = (2 * Math.PI) / freq;
      let want: number;
      if (wavelen < highWavelen) want = 1;
      else if (wavelen > lowWavelen) want = factor;
      else {
        const smooth = (orig / wavelen - low) / (high - low);
        want = 1 / ((1 - smooth) / factor + smooth);
      }
      if (Math.abs(want - stored[i]) > 1e-4 * Math.max(1, want)) ok = false;
    }
    if (ok) return { ropeType: 'llama3', factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: orig };
  }
  throw new GgufModelError(file.path, "tensor 'rope_freqs.weight' holds RoPE factors that are not Llama 3's scaling with its published settings; this rope scaling is not supported", { tensor: 'rope_freqs.weight' });
}

function tokenId(file: GgufFile, key: string, vocab: number): number | null {
  const n = kvNumber(file, key);
  if (n === undefined) return null;
  if (!Number.isSafeInteger(n) || n < 0 || n >= vocab) throw new GgufModelError(file.path, `key '${key}' is ${n}, not a token id below the vocabulary size ${vocab}`, { key });
  return n;
}

/** ModelConfig from a GGUF's metadata (and, for biases, norms and tied embeddings, which tensors exist). */
export function ggufModelConfig(file: GgufFile): ModelConfig {
  const arch = ggufArchitectureOf(file);
  const { family, hfArchitecture } = GGUF_MODEL_ARCHITECTURES[arch];
  const k = (name: string): string => `${arch}.${name}`;
  const hiddenSize = requiredInt(file, k('embedding_length'));
  const numLayers = requiredInt(file, k('block_count'));
  const numHeads = requiredInt(file, k('attention.head_count'));
  const numKvHeads = kvNumber(file, k('attention.head_count_kv')) ?? numHeads;
  if (!Number.isSafeInteger(numKvHeads) || numKvHeads <= 0 || numHeads % numKvHeads !== 0) {
    throw new GgufModelError(file.path, `key '${k('attention.head_count_kv')}' (${numKvHeads}) must divide the head count ${numHeads}`, { key: k('attention.head_count_kv') });
  }
  const keyLength = kvNumber(file, k('attention.key_length'));
  const valueLength = kvNumber(file, k('attention.value_length'));
  const headDim = keyLength ?? hiddenSize / numHeads;
  if (!Number.isSafeInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) throw new GgufModelError(file.path, `head size ${headDim} (${k('attention.key_length')} or embedding_length / head_count) must be an even whole number`, { key: k('attention.key_length') });
  if (valueLength !== undefined && valueLength !== headDim) throw new GgufModelError(file.path, `key '${k('attention.value_length')}' (${valueLength}) differs from the key length ${headDim}, which is not supported`, { key: k('attention.value_length') });
  const ropeDims = kvNumber(file, k('rope.dimension_count'));
  if (ropeDims !== undefined && ropeDims !== headDim) throw new GgufModelError(file.path, `key '${k('rope.dimension_count')}' is ${ropeDims}: RoPE over part of the head (head size ${headDim}) is not supported`, { key: k('rope.dimension_count') });
  const scalingType = kvString(file, k('rope.scaling.type'));
  const scalingFactor = kvNumber(file, k('rope.scaling.factor'));
  if (scalingType !== undefined && scalingType !== 'none' && !(scalingFactor === 1 || scalingFactor === undefined)) {
    throw new GgufModelError(file.path, `key '${k('rope.scaling.type')}' is '${scalingType}' (factor ${scalingFactor}): only unscaled RoPE and Llama 3's scaling are supported`, { key: k('rope.scaling.type') });
  }
  const ropeTheta = kvNumber(file, k('rope.freq_base')) ?? 10000;
  const tokens = arrayLength(file.kv.get('tokenizer.ggml.tokens'));
  const embd = file.byName.get('token_embd.weight');
  const vocabSize = tokens ?? kvNumber(file, k('vocab_size')) ?? embd?.dims[1];
  if (vocabSize === undefined) throw new GgufModelError(file.path, "neither 'tokenizer.ggml.tokens' nor 'token_embd.weight' says how large the vocabulary is", { key: 'tokenizer.ggml.tokens' });
  const has = (name: string): boolean => file.byName.has(name);
  const qkvBias = has('blk.0.attn_q.bias');
  const oBias = has('blk.0.attn_output.bias');
  const mlpBias = has('blk.0.ffn_gate.bias');
  if (family === 'qwen2' && !qkvBias) throw new GgufModelError(file.path, "a qwen2 model must have q/k/v biases, and 'blk.0.attn_q.bias' is missing", { tensor: 'blk.0.attn_q.bias' });
  if ((family === 'qwen2' || family === 'qwen3') && (oBias || mlpBias)) throw new GgufModelError(file.path, `a ${family} model has no ${oBias ? 'attn_output' : 'ffn'} bias, but the file has one`, { tensor: oBias ? 'blk.0.attn_output.bias' : 'blk.0.ffn_gate.bias' });
  const eps = kvNumber(file, k('attention.layer_norm_rms_epsilon'));
  if (eps === undefined) throw new GgufModelError(file.path, `key '${k('attention.layer_norm_rms_epsilon')}' is missing (the model must use RMSNorm)`, { key: k('attention.layer_norm_rms_epsilon') });
  const bos = tokenId(file, 'tokenizer.ggml.bos_token_id', vocabSize);
  const eos = tokenId(file, 'tokenizer.ggml.eos_token_id', vocabSize);
  const config: ModelConfig = {
    family,
    architecture: hfArchitecture,
    vocabSize,
    hiddenSize,
    intermediateSize: requiredInt(file, k('feed_forward_length')),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: eps,
    ropeTheta,
    ropeScaling: null,
    maxPositionEmbeddings: kvNumber(file, k('context_length')) ?? 2048,
    tieWordEmbeddings: !has('output.weight'),
    qkvBias,
    oBias,
    mlpBias,
    qkNorm: family === 'qwen3',
    slidingWindow: null,
    torchDtype: 'float32',
    bosTokenId: bos,
    eosTokenId: eos,
    padTokenId: tokenId(file, 'tokenizer.ggml.padding_token_id', vocabSize),
  };
  config.ropeScaling = llama3ScalingFrom(file, headDim, ropeTheta);
  return config;
}

/** Rows of a [rows, cols] matrix moved from llama.cpp's interleaved RoPE order back to Hugging Face's half-split one. */
function hfRowOf(row: number, rows: number, nHead: number): number {
  // GGUF row (h, i, s) holds HF row (h, s, i): the inverse of permuteQK in engine/quant/gguf-llama.ts.
  const hd = rows / nHead;
  const half = hd / 2;
  const h = Math.floor(row / hd);
  const r = row % hd;
  return h * hd + (r % 2) * half + Math.floor(r / 2);
}

/** A tensor as stored: ggml type and blocks (what a QLoRA kernel would keep packed). */
export interface RawTensor {
  /** The GGUF name (blk.N.attn_q.weight). */
  name: string;
  type: number;
  typeName: string;
  blockSize: number;
  blockBytes: number;
  /** PyTorch shape: [out, in] for a matrix, [n] for a vector. */
  shape: number[];
  /** Whole blocks, one row after another (a row is shape[1]/blockSize blocks). */
  bytes: Uint8Array;
  /**
   * Number of heads whose q/k rows are still in llama.cpp's interleaved RoPE order (unpermute to use them as Hugging
   * Face rows), or 0 when the rows are already in Hugging Face order.
   */
  permutedHeads: number;
}

/** An opened GGUF model: config, and each tensor read on demand. */
export class GgufModelSource {
  readonly path: string;
  readonly file: GgufFile;
  readonly arch: string;
  readonly config: ModelConfig;

  private constructor(file: GgufFile) {
    this.path = file.path;
    this.file = file;
    this.arch = ggufArchitectureOf(file);
    this.config = ggufModelConfig(file);
    this.check();
  }

  static open(path: string): GgufModelSource {
    return new GgufModelSource(readGguf(resolve(path)));
  }

  /** Every tensor the config needs is there with the right shape, and of a type the studio reads. */
  private check(): void {
    for (const t of expectedTensors(this.config)) {
      const name = ggufTensorName(t.name);
      const info = this.file.byName.get(name);
      if (!info) throw new GgufModelError(this.path, `tensor '${name}' (${t.name}) is missing`, { tensor: name });
      const shape = [...info.dims].reverse();
      if (shape.length !== t.shape.length || shape.some((d, i) => d !== t.shape[i])) {
        throw new GgufModelError(this.path, `tensor '${name}' has shape [${shape.join(', ')}] but the metadata implies [${t.shape.join(', ')}]`, { tensor: name });
      }
      ggmlLayout(info.type, `${this.path}: tensor '${name}'`);
    }
  }

  info(hfName: string): GgufTensorInfo {
    const name = ggufTensorName(hfName);
    const t = this.file.byName.get(name);
    if (!t) throw new GgufModelError(this.path, `tensor '${name}' is missing`, { tensor: name });
    return t;
  }

  /** How many heads a tensor's rows are permuted over (llama q/k weights and biases), else 0. */
  permutedHeadsOf(hfName: string): number {
    if (!GGUF_MODEL_ARCHITECTURES[this.arch].permuteQK) return 0;
    if (/\.self_attn\.q_proj\.(weight|bias)$/.test(hfName)) return this.config.numHeads;
    if (/\.self_attn\.k_proj\.(weight|bias)$/.test(hfName)) return this.config.numKvHeads;
    return 0;
  }

  /**
   * A tensor's ggml blocks as stored (the QLoRA seam). With hfRowOrder, permuted q/k rows are moved back to Hugging
   * Face order (whole rows of blocks are moved; nothing is dequantized) and permutedHeads is 0.
   */
  rawTensor(hfName: string, opts: { hfRowOrder?: boolean } = {}): RawTensor {
    const t = this.info(hfName);
    const layout = ggmlLayout(t.type, `${this.path}: tensor '${t.name}'`);
    let bytes = readTensorBytes(this.file, t);
    let heads = this.permutedHeadsOf(hfName);
    const shape = [...t.dims].reverse();
    if (opts.hfRowOrder && heads > 0) {
      const rows = shape[0];
      const rowBytes = t.nbytes / rows;
      const out = new Uint8Array(bytes.length);
      for (let r = 0; r < rows; r++) out.set(bytes.subarray(r * rowBytes, (r + 1) * rowBytes), hfRowOf(r, rows, heads) * rowBytes);
      bytes = out;
      heads = 0;
    }
    return { name: t.name, type: t.type, typeName: t.typeName, blockSize: layout.blockSize, blockBytes: layout.blockBytes, shape, bytes, permutedHeads: heads };
  }

  /**
   * A linear weight as a PackedWeight of `format` in Hugging Face row order: the stored blocks as they are when the
   * file holds it in that format (nothing is dequantized), else quantized from this one tensor's f32 values.
   */
  packedTensor(hfName: string, format: PackedFormat): PackedWeight {
    const t = this.info(hfName);
    const [rows, cols] = [...t.dims].reverse();
    if (PACKED_GGML_TYPES[format] === t.type) return new PackedWeight(format, rows, cols, this.rawTensor(hfName, { hfRowOrder: true }).bytes);
    return PackedWeight.quantize(format, this.readFloat(hfName), rows, cols);
  }

  /** A tensor dequantized to fp32 in Hugging Face layout (q/k rows unpermuted); `out` receives it when given. */
  readFloat(hfName: string, out?: Float32Array): Float32Array {
    const t = this.info(hfName);
    const heads = this.permutedHeadsOf(hfName);
    if (heads === 0) return readTensorF32(this.file, t, out);
    const stored = readTensorF32(this.file, t);
    const rows = t.dims.length > 1 ? t.dims[1] : t.dims[0];
    const cols = t.dims.length > 1 ? t.dims[0] : 1;
    const dst = out ?? new Float32Array(stored.length);
    for (let r = 0; r < rows; r++) dst.set(stored.subarray(r * cols, (r + 1) * cols), hfRowOf(r, rows, heads) * cols);
    return dst;
  }
}

/** Reads a GGUF model into memory, one tensor at a time (synchronously; call it from the engine worker). */
export function loadGgufModel(path: string, opts: LoadModelOptions = {}): ModelWeights {
  const src = GgufModelSource.open(path);
  const config = src.config;
  const ctor = opts.dtype ?? Float32Array;
  const total = expectedTensors(config).length;
  const sharedArray = opts.shared === true ? sharedCtor(ctor) : null;
  let count = 0;
  const read = (name: string): FloatArray => {
    const n = src.info(name).dims.reduce((a, b) => a * b, 1);
    let data: FloatArray;
    if (ctor === Float32Array) data = src.readFloat(name, sharedArray ? (new sharedArray(n) as Float32Array) : undefined);
    else {
      const f32 = src.readFloat(name);
      data = sharedArray ? new sharedArray(n) : new ctor(n);
      data.set(f32);
    }
    opts.onTensor?.(name, count++, total);
    return data;
  };
  const plan = planBaseWeights(config, opts.baseWeights ?? (opts.frozenF16 === true ? 'f16' : 'f32'), ggufStoredTypes(src.file, ggufTensorName), opts.baseWeightsKeep ?? null);
  const readFrozen = (name: string): LinearWeight => {
    const held = heldAsOf(plan, name);
    if (held === 'f32') return read(name);
    if (held !== 'f16') {
      const packed = src.packedTensor(name, held);
      opts.onTensor?.(name, count++, total);
      // Shared so the portable kernels' worker threads read the same bytes (the native kernels take any bytes).
      return opts.shared === true ? toSharedPacked(packed) : packed;
    }
    const bits = encodeF16(src.readFloat(name));
    opts.onTensor?.(name, count++, total);
    return new F16Array(opts.shared === true ? toShared(bits) : bits);
  };
  return assembleWeights(config, read, readFrozen);
}

/** The ggml type holding most of the bytes (the file's quantization, as a person names it: Q4_K, Q8_0…). */
export function ggufQuantization(file: GgufFile): string {
  const bytes = new Map<string, number>();
  for (const t of file.tensors) bytes.set(t.typeName, (bytes.get(t.typeName) ?? 0) + t.nbytes);
  return [...bytes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'none';
}

/** Describes a GGUF model without reading any weights. */
export function inspectGgufModel(path: string): ModelSummary {
  const src = GgufModelSource.open(path);
  const c = src.config;
  let parameters = 0;
  for (const t of expectedTensors(c)) parameters += t.shape.reduce((a, b) => a * b, 1);
  const name = kvString(src.file, 'general.name');
  return {
    path: src.path,
    name: name && name.trim() ? `${name} (${basename(src.path)})` : basename(src.path),
    architecture: c.architecture,
    modelType: c.family,
    hiddenSize: c.hiddenSize,
    layers: c.numLayers,
    heads: c.numHeads,
    kvHeads: c.numKvHeads,
    vocabSize: c.vocabSize,
    parameters,
    dtype: ggufQuantization(src.file),
    hasTokenizer: src.file.kv.has('tokenizer.ggml.tokens'),
    hasChatTemplate: src.file.kv.has('tokenizer.chat_template'),
    format: 'gguf',
    sizeBytes: src.file.fileSize,
  };
}

/** Whether `path` is a file that starts with GGUF's magic (Ollama's blobs have no .gguf extension). */
export function isGgufFile(path: string): boolean {
  let fd: number | null = null;
  try {
    if (!statSync(path).isFile()) return false;
    fd = openSync(path, 'r');
    const head = Buffer.alloc(4);
    return readSync(fd, head, 0, 4, 0) === 4 && head.toString('latin1') === 'GGUF';
  } catch {
    return false;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
