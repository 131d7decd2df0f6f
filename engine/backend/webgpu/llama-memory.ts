/**
 * Every device buffer a webgpu session (training, evaluation or generation with its KV cache) allocates, listed
 * before allocation: the pre-flight memory check ("needs X GiB, adapter allows Y") and the UI's estimate come from
 * the same list the session allocates from.
 *
 * Pure arithmetic, no GPU import (nothing here loads Dawn): engine/train/memory-estimate.ts, which the services run
 * for the Train form and the pre-flight check, takes its webgpu figures from estimateMemory below, so there is one
 * account of a session's memory, held against the allocator by test/webgpu/memory.test.ts and
 * test/webgpu/train-estimate.test.ts.
 */
import { LORA_TARGET_ORDER, targetShape } from '../../model/lora.ts';
import type { LoraConfig, LoraTargetName, ModelConfig } from '../../model/types.ts';
import { ADAMW_HP_SIZE, alignUp, allocationBytes, chunkRowsFor, dtypeBytes, GIB, NORM_PARTIALS, type GpuDtype } from './buffer-sizes.ts';
import { weightBytes, type LinearPacking } from './weight-specs.ts';

export type Precision = 'fp32' | 'fp16';

export interface SessionShape {
  precision: Precision;
  checkpointing: boolean;
  /** Allocate gradients, backward scratch and optimizer state. */
  training: boolean;
  batch: number;
  seq: number;
  /** Budget of one chunk of f32 logits in the cross-entropy (default 64 MiB). */
  ceChunkBytes: number;
  /**
   * Positions of the generation KV cache (prefill/decode): per layer K and V [kvCacheLen, kvHeads·headDim] in the
   * activation dtype, and RoPE tables covering them. Absent or 0: no cache.
   */
  kvCacheLen?: number;
  /** Linear weights kept packed on the device (QLoRA); absent or null: all in the activation dtype. */
  packing?: LinearPacking | null;
}

export interface BufferSpec {
  name: string;
  size: number;
  dtype: GpuDtype;
}

export function actDtype(p: Precision): 'f32' | 'f16' {
  return p === 'fp16' ? 'f16' : 'f32';
}

/** Layers that keep their own activations: all when training without checkpointing, else one shared set. */
export function activationSets(cfg: ModelConfig, s: SessionShape): number {
  return s.training && !s.checkpointing ? cfg.numLayers : 1;
}

export function ceChunkRows(cfg: ModelConfig, s: SessionShape): number {
  return chunkRowsFor(cfg.vocabSize, s.batch * s.seq, s.ceChunkBytes);
}

/** What of a LoRA config the buffer list depends on (a LoraConfig fits). */
export type LoraShape = Pick<LoraConfig, 'r'> & { targets: readonly LoraTargetName[] };

/** Names and sizes of the generation KV cache buffers: `kv.<layer>.k` and `kv.<layer>.v` (kv-cache.ts GpuKvCache). */
export function kvCacheSpecs(cfg: ModelConfig, capacity: number, dtype: 'f32' | 'f16'): BufferSpec[] {
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const out: BufferSpec[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    out.push({ name: `kv.${l}.k`, size: capacity * kvDim, dtype });
    out.push({ name: `kv.${l}.v`, size: capacity * kvDim, dtype });
  }
  return out;
}

/** The cross-entropy's chunk buffers (hidden rows, their f32 logits, and the rows' gradient when training). */
export const CE_CHUNK_BUFFERS: readonly string[] = ['ce.hChunk', 'ce.logits', 'ce.dhChunk'];

/** Targets adapted in a layer, in module order. */
export function adaptedTargets(lora: LoraShape | null): LoraTargetName[] {
  return lora === null ? [] : LORA_TARGET_ORDER.filter((t) => lora.targets.includes(t));
}

/** Activation, scratch and bookkeeping buffers (everything but frozen weights and LoRA state). */
export function activationSpecs(cfg: ModelConfig, lora: LoraShape | null, s: SessionShape): BufferSpec[] {
  const act = actDtype(s.precision);
  const grad = act;
  const B = s.batch;
  const T = s.seq;
  const M = B * T;
  const H = cfg.hiddenSize;
  const I = cfg.intermediateSize;
  const qDim = cfg.numHeads * cfg.headDim;
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const r = lora?.r ?? 0;
  const out: BufferSpec[] = [];
  const add = (name: string, size: number, dtype: GpuDtype): void => {
    out.push({ name, size, dtype });
  };
  const kvLen = s.kvCacheLen ?? 0;
  // Decoding rotates positions up to the cache's end, which may lie past the activations' rows.
  const ropeRows = Math.max(T, kvLen);
  add('ids', M, 'i32');
  add('rope.cos', ropeRows * (cfg.headDim / 2), 'f32');
  add('rope.sin', ropeRows * (cfg.headDim / 2), 'f32');
  // The residual stream: layer inputs are what checkpointing keeps.
  for (let l = 0; l <= cfg.numLayers; l++) add(`res.${l}`, M * H, act);
  for (let si = 0; si < activationSets(cfg, s); si++) {
    const p = `act.${si}.`;
    add(`${p}rstd1`, M, 'f32');
    add(`${p}xn1`, M * H, act);
    add(`${p}q`, M * qDim, act);
    add(`${p}k`, M * kvDim, act);
    add(`${p}v`, M * kvDim, act);
    if (cfg.qkNorm) {
      add(`${p}qr`, M * qDim, act);
      add(`${p}kr`, M * kvDim, act);
      add(`${p}rstdQ`, M * cfg.numHeads, 'f32');
      add(`${p}rstdK`, M * cfg.numKvHeads, 'f32');
    }
    add(`${p}att`, M * qDim, act);
    add(`${p}lse`, B * cfg.numHeads * T, 'f32');
    add(`${p}h`, M * H, act);
    add(`${p}rstd2`, M, 'f32');
    add(`${p}xn2`, M * H, act);
    add(`${p}g`, M * I, act);
    add(`${p}up`, M * I, act);
    add(`${p}a`, M * I, act);
    for (const t of adaptedTargets(lora)) add(`${p}u.${t}`, M * r, 'f32');
  }
  add('tmp', M * H, act);
  add('hn', M * H, act);
  add('rstdF', M, 'f32');
  if (kvLen > 0) out.push(...kvCacheSpecs(cfg, kvLen, act));
  const C = ceChunkRows(cfg, s);
  add('ce.rowIdx', M, 'i32');
  add('ce.targets', M, 'i32');
  add('ce.losses', M, 'f32');
  add('ce.gradScale', 1, 'f32');
  add('ce.hChunk', C * H, act);
  add('ce.logits', C * cfg.vocabSize, 'f32');
  if (!s.training) return out;
  if (s.checkpointing) add('recomputed', M * H, act);
  add('ce.dhChunk', C * H, grad);
  add('dhn', M * H, grad);
  add('dres', M * H, grad);
  add('dxn', M * H, grad);
  // dg and dup are written over da and the layer's up activation (swigluBackwardInPlace).
  add('da', M * I, grad);
  add('datt', M * qDim, grad);
  add('dq', M * qDim, grad);
  add('dk', M * kvDim, grad);
  add('dv', M * kvDim, grad);
  if (cfg.qkNorm) {
    add('dqr', M * qDim, grad);
    add('dkr', M * kvDim, grad);
  }
  add('delta', B * cfg.numHeads * T, 'f32');
  if (r > 0) add('lora.g', M * r, 'f32');
  add('opt.found', 1, 'u32');
  add('opt.normsq', 1, 'f32');
  add('opt.partials', NORM_PARTIALS, 'f32');
  add('opt.hp', ADAMW_HP_SIZE, 'f32');
  return out;
}

/** A LoRA tensor inside the flat buffers. */
export interface LoraSlotSpec {
  layer: number;
  target: LoraTargetName;
  which: 'A' | 'B';
  size: number;
}

export function loraSlotSpecs(cfg: ModelConfig, lora: LoraShape): LoraSlotSpec[] {
  const out: LoraSlotSpec[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    for (const t of adaptedTargets(lora)) {
      const { outFeatures, inFeatures } = targetShape(cfg, t);
      out.push({ layer: l, target: t, which: 'A', size: lora.r * inFeatures });
      out.push({ layer: l, target: t, which: 'B', size: outFeatures * lora.r });
    }
  }
  return out;
}

/** Bytes of one flat LoRA buffer with every tensor at a 256-byte aligned offset. */
export function loraFlatBytes(cfg: ModelConfig, lora: LoraShape): number {
  let off = 0;
  for (const s of loraSlotSpecs(cfg, lora)) off = alignUp(off, 256) + s.size * 4;
  return off;
}

export interface MemoryEstimate {
  /** Frozen weights (llama-weights.ts createWeights, listed by weight-specs.ts weightSpecs). */
  weights: number;
  /** LoRA state: the flat parameter buffer, and when training its gradients and both AdamW moments. */
  lora: number;
  /** One flat LoRA buffer (parameters; the gradients and each moment are as large). */
  loraBuffer: number;
  /** Activations, scratch and bookkeeping (activationSpecs), the cross-entropy chunk included. */
  activations: number;
  /** The cross-entropy's chunk buffers (CE_CHUNK_BUFFERS), part of `activations`. */
  crossEntropyChunk: number;
  total: number;
}

/**
 * Device bytes a session allocates (as the allocator counts them) when it starts; running adds only the recorded
 * programs' uniform parameters (256 bytes a dispatch while a program is cached, about 25 KiB a layer for a forward
 * and backward pair) and read-back staging of a few bytes. LoRA: parameters, plus gradients and both AdamW moments
 * when training.
 */
export function estimateMemory(cfg: ModelConfig, lora: LoraShape | null, s: SessionShape): MemoryEstimate {
  const weights = weightBytes(cfg, actDtype(s.precision), s.packing ?? null);
  const loraBuffer = lora === null ? 0 : allocationBytes(loraFlatBytes(cfg, lora));
  const loraTotal = loraBuffer * (s.training ? 4 : 1);
  let activations = 0;
  let crossEntropyChunk = 0;
  for (const b of activationSpecs(cfg, lora, s)) {
    const bytes = allocationBytes(b.size * dtypeBytes(b.dtype));
    activations += bytes;
    if (CE_CHUNK_BUFFERS.includes(b.name)) crossEntropyChunk += bytes;
  }
  return { weights, lora: loraTotal, loraBuffer, activations, crossEntropyChunk, total: weights + loraTotal + activations };
}

export function describeEstimate(e: MemoryEstimate): string {
  const g = (b: number): string => `${(b / GIB).toFixed(2)} GiB`;
  return `weights ${g(e.weights)}, LoRA state ${g(e.lora)}, activations and scratch ${g(e.activations)}`;
}
