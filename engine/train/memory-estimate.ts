/**
 * How much memory a training run needs, before it starts: frozen weights, LoRA parameters, their gradients, AdamW
 * moments, and the activations of one micro-batch with and without gradient checkpointing, including the chunk of
 * logits the cross-entropy works on. The numbers follow the engine's own buffers (engine/model/llama.ts allocActs /
 * allocScratch, cross-entropy.ts, backend/cpu/matmul.ts scratch), so they are an account, not a rule of thumb; the
 * test in test/runs/memory-estimate.test.ts holds them against the measured peak RSS of a real step.
 *
 * Peak of a step = persistent (weights, LoRA, gradients, optimizer, data) + the activations kept through the step
 * + the larger of (cross-entropy chunk) and (backward scratch + the largest temporary of one op), since the chunk
 * is dropped before the backward pass starts.
 *
 * Backend 'cpu' keeps everything in fp32 with f64 scratch (what the cpu engine does today). Backend 'webgpu' is not
 * counted here but taken from the webgpu session's own buffer list (backend/webgpu/llama-memory.ts estimateMemory,
 * the list WebgpuLlama allocates from and refuses a run by): one account per backend, the webgpu one held against
 * the device allocator by test/webgpu/train-estimate.test.ts. Every device buffer is allocated when the session
 * starts and lives to its end, so that list's total is the peak but for the recorded programs' uniform parameters
 * (256 bytes a dispatch, about 25 KiB a layer per cached forward and backward pair), which it leaves out.
 */
import type { ModelConfig } from '../model/types.ts';
import { baseWeightsOf, type BaseWeights, type BaseWeightsKeep, type LoraTarget, type MemoryEstimateInfo } from '../../common/protocol.ts';
import { LINEAR_TARGETS, planBaseWeights, type BasePlan, type HeldAs } from '../io/base-weights.ts';
import { nativeChunkRows } from '../backend/cpu/ce-chunk.ts';
import { DEFAULT_CE_CHUNK_BYTES } from '../backend/webgpu/buffer-sizes.ts';
import { estimateMemory as estimateSessionMemory, type SessionShape } from '../backend/webgpu/llama-memory.ts';
import type { LinearPacking } from '../backend/webgpu/weight-specs.ts';
import { defaultChunkRows } from '../model/cross-entropy.ts';
import { packedSizeBytes } from '../quant/packed-weight.ts';
import { LORA_TARGETS } from '../../common/lora-targets.ts';

const F64 = 8;
const F32 = 4;
const I32 = 4;
/** Columns per pass in matmulAB (backend/cpu/matmul.ts AB_BLOCK). */
const AB_BLOCK = 256;

/** What of a RunConfig the estimate needs (a RunConfig fits). */
export interface MemoryEstimateRun {
  lora: { r: number; targets: readonly LoraTarget[]; dropout: number };
  train: { batchSize: number; maxSeqLen: number; gradientCheckpointing?: boolean; precision?: 'fp32' | 'fp16'; frozenWeightsF16?: boolean; baseWeights?: BaseWeights; baseWeightsKeep?: BaseWeightsKeep };
}

export interface MemoryEstimateOptions {
  /** cpu: threads of the cpu backend's pool (backend/cpu/thread-pool.ts configuredThreads); default 1. */
  threads?: number;
  backend?: 'cpu' | 'webgpu';
  /**
   * cpu: which kernels run (cpu-ops.ts cpuBackendInfo().native). 'native' keeps the activations in one Workspace
   * reused from step to step, its lse in f32 and its temporaries in C++ (freed at once, no f64 scratch); 'portable'
   * (default) allocates every step afresh with f64 scratch, and V8 frees it lazily.
   */
  kernels?: 'native' | 'portable';
  /** Tokens per sequence of a micro-batch; default maxSeqLen (batches are padded to their longest example). */
  seqLen?: number;
  /** Tokens in the tokenized training set, when known (kept in memory as JS arrays of ids and labels). */
  datasetTokens?: number;
  /**
   * How each frozen matrix is held (engine/io/base-weights.ts planBaseWeights, from the model file's headers; the
   * services pass model-source.ts basePlanOf). Absent: planned from train.baseWeights alone, 'as-stored' then
   * counting f32 (the file's types are unknown).
   */
  basePlan?: BasePlan;
}

function heldBytes(held: HeldAs, rows: number, cols: number, floatBytes: number): number {
  if (held === 'f32') return rows * cols * floatBytes;
  if (held === 'f16') return rows * cols * (floatBytes === F32 ? 2 : floatBytes);
  return packedSizeBytes(held, rows, cols);
}

/** Bytes of the frozen matrices (linears, embed_tokens, untied lm_head) under a plan, as the cpu backend holds them: f32 4 bytes, f16 2 bytes, packed its format's bytes. */
export function frozenWeightBytes(c: ModelConfig, plan: BasePlan): number {
  let total = heldBytes(plan.embedding, c.vocabSize, c.hiddenSize, F32);
  for (let l = 0; l < c.numLayers; l++) {
    for (const t of LINEAR_TARGETS) {
      const d = targetDims(c, t);
      total += heldBytes(plan.linear(l, t), d.out, d.in, F32);
    }
  }
  if (!c.tieWordEmbeddings) total += heldBytes(plan.lmHead, c.vocabSize, c.hiddenSize, F32);
  return total;
}

/**
 * The protocol's shape, in bytes per part. `activations` (with the run's checkpointing setting) includes
 * `logitsChunk`, the cross-entropy's chunk of logits and its hidden rows; `total` is the peak of a step with the
 * run's setting, the other two totals are for comparison in the Train form.
 */
export type MemoryEstimate = MemoryEstimateInfo;

function targetDims(c: ModelConfig, t: LoraTarget): { out: number; in: number } {
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  switch (t) {
    case 'q_proj':
      return { out: qDim, in: c.hiddenSize };
    case 'k_proj':
    case 'v_proj':
      return { out: kvDim, in: c.hiddenSize };
    case 'o_proj':
      return { out: c.hiddenSize, in: qDim };
    case 'gate_proj':
    case 'up_proj':
      return { out: c.intermediateSize, in: c.hiddenSize };
    case 'down_proj':
      return { out: c.hiddenSize, in: c.intermediateSize };
  }
}

/** Frozen parameters of the base model, a tied lm_head counted once. */
export function baseParameterCount(c: ModelConfig): number {
  const H = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const I = c.intermediateSize;
  let perLayer = 2 * H + H * qDim + 2 * H * kvDim + qDim * H + 3 * H * I;
  if (c.qkvBias) perLayer += qDim + 2 * kvDim;
  if (c.oBias) perLayer += H;
  if (c.mlpBias) perLayer += 2 * I + H;
  if (c.qkNorm) perLayer += 2 * c.headDim;
  const embed = c.vocabSize * H;
  return embed + (c.tieWordEmbeddings ? 0 : embed) + H + c.numLayers * perLayer;
}

/** Parameters of the frozen matrices (every Linear weight, embed_tokens, an untied lm_head): what frozenF16 stores as f16. */
export function frozenMatrixParameterCount(c: ModelConfig): number {
  const H = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const perLayer = H * qDim + 2 * H * kvDim + qDim * H + 3 * H * c.intermediateSize;
  const embed = c.vocabSize * H;
  return embed + (c.tieWordEmbeddings ? 0 : embed) + c.numLayers * perLayer;
}

/** LoRA parameters: r × (in + out) per adapted Linear per layer. */
export function loraParameterCountFor(c: ModelConfig, lora: { r: number; targets: readonly LoraTarget[] }): number {
  let perLayer = 0;
  for (const t of lora.targets) {
    const d = targetDims(c, t);
    perLayer += lora.r * (d.in + d.out);
  }
  return perLayer * c.numLayers;
}

/** f64 scratch of matmulAB(out[M,K], a[M,N], b[N,K]). */
function matmulABScratch(M: number, N: number, K: number): number {
  if (N <= AB_BLOCK) return N * K * F64;
  return (M * K + M * AB_BLOCK + K * AB_BLOCK) * F64;
}

/** f64 scratch of matmulAtB(out[N,K], a[M,N], b[M,K]). */
function matmulAtBScratch(M: number, N: number, K: number): number {
  return (M * N + M * K) * F64;
}

/**
 * Temporaries of one Linear's backward (linear.ts backward + the matmuls it calls): the most it holds at once, and
 * everything it allocates (garbage once it returns).
 */
function linearBackwardScratch(M: number, d: { out: number; in: number }, r: number | null, dropout: boolean): { peak: number; allocated: number } {
  const frozen = matmulABScratch(M, d.out, d.in);
  if (r === null) return { peak: frozen, allocated: frozen };
  const g = M * r * F64;
  const parts = [matmulAtBScratch(M, d.out, r), matmulABScratch(M, d.out, r), matmulAtBScratch(M, r, d.in), dropout ? M * d.in * F64 : matmulABScratch(M, r, d.in)];
  return {
    peak: Math.max(frozen, parts[0], g + parts[1], g + parts[2], g + parts[3]),
    allocated: frozen + g + parts.reduce((a, b) => a + b, 0),
  };
}

/**
 * Node frees a dead ArrayBuffer only when V8 collects it, and the cpu engine allocates a step's activations afresh.
 * Two V8 limits bound what is dead but still resident at a peak: a young-generation collection runs once young
 * ArrayBuffers reach 2 × the max semi-space (16 MiB on 64-bit), so up to 32 MiB of a step's scratch; buffers that
 * lived long enough to be promoted (the previous step's activations) wait for a full collection, which external
 * memory growth of 64 MiB over the last one starts (heap.cc AllocateExternalBackingStore, external memory soft limit).
 */
const V8_YOUNG_BACKING_STORE_TRIGGER = 2 * 16 * 1024 * 1024;
const V8_EXTERNAL_SOFT_LIMIT = 64 * 1024 * 1024;
const CPU_WORKER_BYTES = 10 * 1024 * 1024;

/** Tokenized examples are JS arrays of ids and labels (8 bytes per element in V8 without pointer compression). */
function datasetBytes(tokens: number): number {
  return tokens * 2 * 8;
}

/**
 * The plan's packed linears, as the webgpu session keeps them packed on the device (llama-weights.ts packingOf of
 * the model the plan loads); f32 and f16 matrices are uploaded in the activation dtype.
 */
function packingOfPlan(plan: BasePlan): LinearPacking {
  return (layer, target) => {
    const held = plan.linear(layer, target);
    return held === 'f32' || held === 'f16' ? null : held;
  };
}

/**
 * webgpu: the session's own buffer list (llama-memory.ts estimateMemory) for a training session of this batch and
 * sequence length, as webgpu-trainer-backend.ts creates it (default cross-entropy chunk), mapped onto the parts the
 * Train form shows. LoRA parameters, gradients and both AdamW moments are four flat buffers of one size. `data` is
 * host memory (the token arrays), counted beside the device's bytes when the caller knows it.
 */
function estimateWebgpu(model: ModelConfig, run: MemoryEstimateRun, plan: BasePlan, B: number, T: number, datasetTokens: number): MemoryEstimate {
  const packing = packingOfPlan(plan);
  const shape = (checkpointing: boolean): SessionShape => ({ precision: run.train.precision ?? 'fp32', checkpointing, training: true, batch: B, seq: T, ceChunkBytes: DEFAULT_CE_CHUNK_BYTES, packing });
  const lora = { r: run.lora.r, targets: run.lora.targets };
  const without = estimateSessionMemory(model, lora, shape(false));
  const withCkpt = estimateSessionMemory(model, lora, shape(true));
  const checkpointing = run.train.gradientCheckpointing === true;
  const chosen = checkpointing ? withCkpt : without;
  const data = datasetBytes(datasetTokens);
  const persistent = chosen.weights + chosen.lora + data;
  return {
    backend: 'webgpu',
    tokensPerMicroBatch: B * T,
    parameters: { base: baseParameterCount(model), trainable: loraParameterCountFor(model, run.lora) },
    weights: chosen.weights,
    lora: chosen.loraBuffer,
    gradients: chosen.loraBuffer,
    optimizer: 2 * chosen.loraBuffer,
    data,
    activations: chosen.activations,
    activationsWithoutCheckpointing: without.activations,
    activationsWithCheckpointing: withCkpt.activations,
    logitsChunk: chosen.crossEntropyChunk,
    total: persistent + chosen.activations,
    totalWithoutCheckpointing: persistent + without.activations,
    totalWithCheckpointing: persistent + withCkpt.activations,
  };
}

export function estimateTrainingMemory(model: ModelConfig, run: MemoryEstimateRun, options: MemoryEstimateOptions = {}): MemoryEstimate {
  const backend = options.backend ?? 'cpu';
  const T = options.seqLen ?? run.train.maxSeqLen;
  const B = run.train.batchSize;
  for (const [name, v] of [
    ['train.batchSize', B],
    ['sequence length', T],
    ['lora.r', run.lora.r],
  ] as const) {
    if (!(Number.isInteger(v) && v >= 1)) throw new Error(`memory estimate: ${name} must be a whole number ≥ 1, got ${v}`);
  }
  const plan = options.basePlan ?? planBaseWeights(model, baseWeightsOf(run.train), null, run.train.baseWeightsKeep ?? null);
  if (backend === 'webgpu') return estimateWebgpu(model, run, plan, B, T, options.datasetTokens ?? 0);
  const M = B * T;
  const H = model.hiddenSize;
  const I = model.intermediateSize;
  const V = model.vocabSize;
  const L = model.numLayers;
  const nH = model.numHeads;
  const nKv = model.numKvHeads;
  const qDim = nH * model.headDim;
  const kvDim = nKv * model.headDim;
  const r = run.lora.r;
  const dropout = run.lora.dropout > 0;
  const native = options.kernels === 'native';
  // Bytes of an activation element.
  const aB = F32;

  const base = baseParameterCount(model);
  const trainable = loraParameterCountFor(model, run.lora);
  // The frozen matrices as the base-weights plan holds them; norms and biases stay f32, and f16 or packed matrices
  // are decoded 128 rows at a time into f32 scratch (engine/backend/cpu/matmul.ts).
  const matrices = frozenMatrixParameterCount(model);
  let decodes = plan.embedding !== 'f32';
  for (let l = 0; l < L && !decodes; l++) decodes = LINEAR_TARGETS.some((t) => plan.linear(l, t) !== 'f32');
  const decoded = decodes ? 128 * Math.max(H, I) * F32 : 0;
  const frozenBytes = frozenWeightBytes(model, plan) + (base - matrices) * F32 + decoded;
  const rope = 2 * T * (model.headDim / 2) * F32; // RoPE cos/sin tables
  const weights = frozenBytes + rope;
  const lora = trainable * F32;
  const gradients = trainable * F32;
  const optimizer = 2 * trainable * F32;
  const data = datasetBytes(options.datasetTokens ?? 0);

  // One layer's saved activations (allocActs with saveLse).
  let layer = (M + M * H + M * qDim + 2 * M * kvDim + M * qDim + M * H + M + M * H + 3 * M * I + M * H) * aB + B * nH * T * (native ? F32 : F64);
  if (model.qkNorm) layer += (M * qDim + M * kvDim + M * nH + M * nKv) * aB;
  for (const t of run.lora.targets) {
    const d = targetDims(model, t);
    layer += M * r * aB;
    if (dropout) layer += M * d.in * aB + M * d.in; // xd + the keep mask (bytes)
  }
  // Kept through the whole step: the residual stream at every layer boundary, the batch, targets, final norm.
  const always = (L + 1) * M * H * aB + 3 * M * I32 + (M + M * H) * aB;
  // Backward: dhn, dres, then the per-layer scratch (allocScratch).
  let scratch = 2 * M * H * aB + (3 * M * I + M * H + 3 * M * qDim + 3 * M * kvDim) * aB;
  if (model.qkNorm) scratch += (M * qDim + M * kvDim) * aB;
  let opScratch = 0;
  let garbagePerLayer = 0;
  for (const t of LORA_TARGETS) {
    const adapted = run.lora.targets.includes(t);
    const d = targetDims(model, t);
    // Native: g = dY·B [M, r] and, with dropout, the masked dx term [M, in], both f32 (native/src/ops.cpp).
    const s = native ? { peak: adapted ? M * r * F32 + (dropout ? M * d.in * F32 : 0) : 0, allocated: 0 } : linearBackwardScratch(M, d, adapted ? r : null, dropout && adapted);
    opScratch = Math.max(opScratch, s.peak);
    garbagePerLayer += s.allocated;
  }
  // Portable: h and dh rows plus the logits, all f64; dhn is already allocated when the chunk is. Native: the f32
  // logits of a chunk only (ce-chunk.ts nativeChunkRows), read from and written into the rows in place.
  const logitsChunk = native ? Math.min(nativeChunkRows(V), M) * V * F32 : (Math.min(defaultChunkRows(V), M) * H * 2 + Math.min(defaultChunkRows(V), M) * V) * F64;
  const peakOf = (layersKept: number, recompute: boolean): number => {
    const live = always + layersKept * layer + Math.max(logitsChunk + M * H * aB, scratch + (recompute ? M * H * aB : 0) + opScratch);
    if (native) return live; // the native path reuses its Workspace
    // Dead but not yet collected: this step's scratch, and the previous step's buffers (all of `live` is allocated anew).
    return live + Math.min(V8_YOUNG_BACKING_STORE_TRIGGER, logitsChunk + L * garbagePerLayer) + Math.min(V8_EXTERNAL_SOFT_LIMIT, live);
  };
  // Each extra cpu thread: a worker (≈ 10 MiB resident, measured from dist/) and the block of a weight it transposes
  // for a dX product (matmulAB: AB_BLOCK rows × the widest input, f64).
  // (The native kernels' threads are C++ threads with no buffers of their own.)
  const extraThreads = native ? 0 : Math.max(0, (options.threads ?? 1) - 1);
  const threadsOverhead = extraThreads * (CPU_WORKER_BYTES + 256 * Math.max(H, I, qDim) * F64);
  const activationsWithoutCheckpointing = peakOf(L, false) + threadsOverhead;
  const activationsWithCheckpointing = peakOf(1, true) + threadsOverhead;
  const checkpointing = run.train.gradientCheckpointing === true;
  const activations = checkpointing ? activationsWithCheckpointing : activationsWithoutCheckpointing;
  const persistent = weights + lora + gradients + optimizer + data;
  return {
    backend,
    tokensPerMicroBatch: M,
    parameters: { base, trainable },
    weights,
    lora,
    gradients,
    optimizer,
    data,
    activations,
    activationsWithoutCheckpointing,
    activationsWithCheckpointing,
    logitsChunk,
    total: persistent + activations,
    totalWithoutCheckpointing: persistent + activationsWithoutCheckpointing,
    totalWithCheckpointing: persistent + activationsWithCheckpointing,
  };
}

/** "1.4 GiB" style. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v.toFixed(0) : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}
