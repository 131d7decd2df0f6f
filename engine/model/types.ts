/**
 * Shared shapes of the engine: model config, weights, LoRA state and batches.
 *
 * Conventions (as PyTorch, so files map 1:1):
 * - Every matrix is row-major. A Linear weight W is [out, in]; y = x·Wᵀ (+ bias).
 * - Activations are [B, T, C] flattened, row-major.
 * - `FloatArray` is Float32Array for real runs and Float64Array for finite-difference gradient checks:
 *   every op is written once over FloatArray and accumulates in JS numbers (f64).
 */

import type { PackedWeight } from '../quant/packed-weight.ts';
import type { LoraTarget } from '../../common/lora-targets.ts';

export type FloatArray = Float32Array | Float64Array;
export type FloatArrayConstructor = Float32ArrayConstructor | Float64ArrayConstructor;

/**
 * A frozen weight kept as IEEE f16 bit patterns (half the memory of f32). A class, not a bare Uint16Array, so every
 * reader of a weight has to decide how to handle it (engine/model/weight-array.ts decodes).
 */
export class F16Array {
  constructor(readonly bits: Uint16Array) {}
  get length(): number {
    return this.bits.length;
  }
}

/** A frozen base weight: floats, or f16 bits when loaded with `frozenF16`. */
export type WeightArray = FloatArray | F16Array;

/**
 * What a Linear's frozen weight may be: floats or f16 bits, or (QLoRA) the quantized bytes of a PackedWeight, which the
 * products decode a panel at a time (engine/model/packed-rows.ts, native/src/packed-decode.h). embed_tokens and lm_head
 * may be packed too (QLoRA keeps them q8_0 or in the GGUF's own type: engine/io/base-weights.ts); norms stay floats.
 */
export type LinearWeight = WeightArray | PackedWeight;

export type ModelFamily = 'llama' | 'mistral' | 'qwen2' | 'qwen3';

export interface RopeScaling {
  ropeType: 'default' | 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** What the engine uses of a Hugging Face config.json, normalised. */
export interface ModelConfig {
  family: ModelFamily;
  architecture: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Bias on q/k/v projections (Qwen2, or attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (attention_bias on llama). */
  oBias: boolean;
  mlpBias: boolean;
  /** Qwen3: RMSNorm over head_dim on q and k, per head, before RoPE. */
  qkNorm: boolean;
  slidingWindow: number | null;
  torchDtype: string;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
}

export interface Linear {
  /** [out, in]; F16Array when the model was loaded with frozenF16, PackedWeight for a quantized (QLoRA) base. */
  weight: LinearWeight;
  /** [out] or null */
  bias: FloatArray | null;
  outFeatures: number;
  inFeatures: number;
}

export interface LayerWeights {
  inputNorm: FloatArray; // [H]
  postAttentionNorm: FloatArray; // [H]
  q: Linear; // [heads*headDim, H]
  k: Linear; // [kvHeads*headDim, H]
  v: Linear; // [kvHeads*headDim, H]
  o: Linear; // [H, heads*headDim]
  qNorm: FloatArray | null; // [headDim] (qwen3)
  kNorm: FloatArray | null; // [headDim] (qwen3)
  gate: Linear; // [I, H]
  up: Linear; // [I, H]
  down: Linear; // [H, I]
}

/** Frozen base weights. */
export interface ModelWeights {
  config: ModelConfig;
  /** [V, H]; PackedWeight on a packed base: the lookup decodes just the rows it reads (engine/model/embedding.ts). */
  embedTokens: LinearWeight;
  layers: LayerWeights[];
  norm: FloatArray; // [H]
  /** [V, H]; the same array as embedTokens when tie_word_embeddings. */
  lmHead: LinearWeight;
}

export type LoraTargetName = LoraTarget;

export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  targets: LoraTargetName[];
  rslora: boolean;
}

/** One adapted Linear: A is [r, in], B is [out, r], both fp32 master weights (or f64 in gradient checks). */
export interface LoraPair {
  A: FloatArray;
  B: FloatArray;
}

/** LoRA weights (or their gradients, same shape): layers[i][target]. */
export interface LoraWeights {
  config: LoraConfig;
  /** alpha / r, or alpha / sqrt(r) with rsLoRA. */
  scaling: number;
  layers: Partial<Record<LoraTargetName, LoraPair>>[];
}

/** A padded batch; padding is on the right and carries label −100. */
export interface Batch {
  batchSize: number;
  seqLen: number;
  /** [B*T] */
  inputIds: Int32Array;
  /** [B*T]; −100 = ignored. Labels are NOT shifted: position t predicts labels[t+1], as transformers does. */
  labels: Int32Array;
}

export const IGNORE_INDEX = -100;

export function loraScaling(cfg: LoraConfig): number {
  return cfg.rslora ? cfg.alpha / Math.sqrt(cfg.r) : cfg.alpha / cfg.r;
}

/** PEFT module path of a target inside a decoder layer. */
export function loraModulePath(target: LoraTargetName): string {
  return target === 'gate_proj' || target === 'up_proj' || target === 'down_proj' ? `mlp.${target}` : `self_attn.${target}`;
}

/** A tokenizer loaded from a model folder's tokenizer.json + tokenizer_config.json (engine/io/tokenizer.ts). */
export interface Tokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
  vocabSize: number;
  bosTokenId: number | null;
  eosTokenId: number | null;
  padTokenId: number | null;
  /** tokenizer_config.json `chat_template` (a Jinja string), when the model has one. */
  chatTemplate: string | null;
  /** Special token strings a chat template may refer to: bos_token, eos_token, pad_token, unk_token. */
  specialTokens: Record<string, string>;
}

/** One tokenized example; labels are aligned with inputIds (not shifted) and −100 where not trained on. */
export interface TrainingExample {
  inputIds: number[];
  labels: number[];
}
