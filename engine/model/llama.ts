/**
 * The LLaMA-family decoder (Llama, Mistral, Qwen2, Qwen3) with LoRA, on the cpu reference ops:
 * loss and LoRA gradients for training, loss for evaluation, logits (optionally through a KV cache) for generation.
 *
 *   x₀ = embed(ids); per layer: h = x + o(attn(rope(qk_norm(q(n₁(x)), k(n₁(x)))), v(n₁(x))));
 *                               y = h + down(silu(gate(n₂(h))) · up(n₂(h)));
 *   logits = lm_head(norm(x_L)); loss = mean CE of row t against labels[t+1] over labels ≠ −100.
 *
 * Every array (activations, frozen weights) has the model's FloatArray type. The ops are a ModelOps set (ops.ts):
 * by default the reference ops of this folder (sums in f64); the cpu backend passes its own kernels
 * (engine/backend/cpu/cpu-ops.ts). A Workspace keeps the activations between calls (training steps, decoded tokens).
 */
import type { AttentionShape } from './attention.ts';
import type { CrossEntropyShape } from './cross-entropy.ts';
import type { DropoutMask } from './linear.ts';
import { LORA_TARGET_ORDER, targetShape, validateLoraForModel, zerosLike } from './lora.ts';
import { referenceOps, type ModelOps } from './ops.ts';
import * as rope from './rope.ts';
import type { RopeTables } from './rope.ts';
import { IGNORE_INDEX, type Batch, type FloatArray, type FloatArrayConstructor, type Linear, type LoraPair, type LoraTargetName, type LoraWeights, type ModelConfig, type ModelWeights, type LinearWeight, F16Array } from './types.ts';
import { PackedWeight } from '../quant/packed-weight.ts';
import type { KvCache } from '../generate/kv-cache.ts';
import type { Rng } from '../util/rng.ts';

export interface StepOptions {
  /** Dropout is active only when training and lora.config.dropout > 0. */
  training: boolean;
  /** Required when dropout is active; one uint32 per layer is drawn from it per call. */
  dropoutRng?: Rng;
  /** Keep only each layer's input; recompute the layer in backward. Gradients are bit-identical to false. */
  checkpointing?: boolean;
  /** Multiplies dLoss (grad scaler); default 1. */
  lossScale?: number;
  /** The summed token loss is divided by this for the gradient; default = this batch's non-ignored tokens. */
  normalizer?: number;
  /** Accumulate (+=) LoRA gradients into these arrays instead of allocating. */
  gradsInto?: LoraWeights;
  /** Rows of logits per cross-entropy chunk; default: the ops' choice (a chunk of 16–32 MiB). */
  ceChunkRows?: number;
  /** The kernels; default the reference ops. */
  ops?: ModelOps;
  /** Reuse the activation arrays of earlier calls (they are overwritten). */
  workspace?: Workspace;
}

/**
 * Activation arrays kept between calls, one per named slot, grown to the largest size asked for; a call gets views of
 * the sizes it needs. Nothing returned to a caller (logits, gradients) lives here.
 */
export class Workspace {
  private readonly floats = new Map<string, FloatArray>();
  private readonly bytes = new Map<string, Uint8Array>();

  /** n values for `slot` (zeroed when asked; otherwise what the last user left). */
  take(ops: ModelOps, F: FloatArrayConstructor, slot: string, n: number, zero: boolean): FloatArray {
    const key = `${F.name}:${slot}`;
    let a = this.floats.get(key);
    if (a === undefined || a.length < n) {
      a = ops.floats(F, n);
      this.floats.set(key, a);
      return a.length === n ? a : a.subarray(0, n);
    }
    const v = a.length === n ? a : a.subarray(0, n);
    if (zero) v.fill(0);
    return v;
  }

  mask(slot: string, n: number): Uint8Array {
    let a = this.bytes.get(slot);
    if (a === undefined || a.length < n) {
      a = new Uint8Array(n);
      this.bytes.set(slot, a);
    }
    return a.length === n ? a : a.subarray(0, n);
  }

  /** Bytes held (for memory reports). */
  size(): number {
    let n = 0;
    for (const a of this.floats.values()) n += a.byteLength;
    for (const a of this.bytes.values()) n += a.byteLength;
    return n;
  }
}

export interface StepResult {
  /** Mean CE over this batch's non-ignored targets (0 when there are none), independent of normalizer. */
  loss: number;
  /** Non-ignored target positions. */
  tokens: number;
  grads: LoraWeights | null;
}

interface Ctx {
  model: ModelWeights;
  cfg: ModelConfig;
  lora: LoraWeights | null;
  F: FloatArrayConstructor;
  ops: ModelOps;
  ws: Workspace | null;
  B: number;
  T: number;
  M: number;
  H: number;
  I: number;
  V: number;
  nH: number;
  nKv: number;
  D: number;
  qDim: number;
  kvDim: number;
  eps: number;
  rope: RopeTables;
  posOffset: number;
  cache: KvCache | null;
  dropoutP: number;
  layerSeeds: number[] | null;
}

interface TargetActs {
  u: FloatArray;
  xd: FloatArray | null;
  mask: DropoutMask | null;
}

interface LayerActs {
  rstd1: FloatArray;
  xn1: FloatArray;
  q: FloatArray;
  k: FloatArray;
  v: FloatArray;
  /** q/k after q_norm/k_norm and RoPE; the same arrays as q/k when there is no q/k norm (RoPE runs in place). */
  qr: FloatArray;
  kr: FloatArray;
  rstdQ: FloatArray | null;
  rstdK: FloatArray | null;
  att: FloatArray;
  lse: FloatArray | null;
  h: FloatArray;
  rstd2: FloatArray;
  xn2: FloatArray;
  g: FloatArray;
  up: FloatArray;
  a: FloatArray;
  tmp: FloatArray;
  lora: Partial<Record<LoraTargetName, TargetActs>>;
}

interface BackwardScratch {
  da: FloatArray;
  dg: FloatArray;
  dup: FloatArray;
  dxn: FloatArray;
  datt: FloatArray;
  dqr: FloatArray;
  dq: FloatArray;
  dkr: FloatArray;
  dk: FloatArray;
  dv: FloatArray;
  /** Gradients after RoPE backward, before q_norm/k_norm backward (qwen3 only). */
  dqn: FloatArray | null;
  dkn: FloatArray | null;
}

// ---------------------------------------------------------------------------------------------------------------
// Validation

function arrayCtorOf(model: ModelWeights): FloatArrayConstructor {
  // model.norm, not embed_tokens: frozen matrices may be f16 bits (F16Array); norms are always floats.
  if (model.norm instanceof Float32Array) return Float32Array;
  if (model.norm instanceof Float64Array) return Float64Array;
  throw new Error('model: model.norm must be a Float32Array or Float64Array');
}

function expectLen(name: string, a: LinearWeight | null | undefined, n: number): void {
  if (a === null || a === undefined) throw new Error(`model: tensor ${name} is missing`);
  if (a.length !== n) throw new Error(`model: tensor ${name} has ${a.length} values, expected ${n}`);
}

/** A packed frozen matrix must be [rows, cols] itself, not just hold that many values (its blocks run along rows). */
function expectPackedShape(name: string, w: LinearWeight, rows: number, cols: number): void {
  if (w instanceof PackedWeight && (w.rows !== rows || w.cols !== cols)) throw new Error(`model: ${name} is a ${w.format} [${w.rows}, ${w.cols}] matrix, expected [${rows}, ${cols}]`);
}

function checkLinear(name: string, lin: Linear, out: number, inF: number, bias: boolean): void {
  if (lin.outFeatures !== out || lin.inFeatures !== inF) throw new Error(`model: ${name} is [${lin.outFeatures}, ${lin.inFeatures}], expected [${out}, ${inF}]`);
  expectLen(`${name}.weight`, lin.weight, out * inF);
  // A packed weight's blocks run along its rows: [rows, cols] must be [out, in], not just the same element count.
  if (lin.weight instanceof PackedWeight && (lin.weight.rows !== out || lin.weight.cols !== inF)) throw new Error(`model: ${name}.weight is a ${lin.weight.format} [${lin.weight.rows}, ${lin.weight.cols}] matrix, expected [${out}, ${inF}]`);
  if (bias) expectLen(`${name}.bias`, lin.bias, out);
  else if (lin.bias !== null) throw new Error(`model: ${name}.bias is present but the config has no bias there`);
}

const validated = new WeakSet<ModelWeights>();

/** Throws naming the config field or tensor (HF names) that does not fit. Cached per weights object. */
export function validateModel(model: ModelWeights): void {
  if (validated.has(model)) return;
  const c = model.config;
  const posInt = (field: string, v: number): void => {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`model config: ${field} must be a positive integer, got ${v}`);
  };
  posInt('vocab_size', c.vocabSize);
  posInt('hidden_size', c.hiddenSize);
  posInt('intermediate_size', c.intermediateSize);
  posInt('num_hidden_layers', c.numLayers);
  posInt('num_attention_heads', c.numHeads);
  posInt('num_key_value_heads', c.numKvHeads);
  posInt('head_dim', c.headDim);
  if (c.headDim % 2 !== 0) throw new Error(`model config: head_dim must be even for RoPE, got ${c.headDim}`);
  if (c.numHeads % c.numKvHeads !== 0) throw new Error(`model config: num_attention_heads ${c.numHeads} is not a multiple of num_key_value_heads ${c.numKvHeads}`);
  if (!(c.rmsNormEps > 0)) throw new Error(`model config: rms_norm_eps must be > 0, got ${c.rmsNormEps}`);
  if (c.slidingWindow !== null) posInt('sliding_window', c.slidingWindow);
  const F = arrayCtorOf(model);
  const H = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  expectLen('model.embed_tokens.weight', model.embedTokens, c.vocabSize * H);
  expectLen('model.norm.weight', model.norm, H);
  expectLen('lm_head.weight', model.lmHead, c.vocabSize * H);
  expectPackedShape('model.embed_tokens.weight', model.embedTokens, c.vocabSize, H);
  expectPackedShape('lm_head.weight', model.lmHead, c.vocabSize, H);
  if (model.layers.length !== c.numLayers) throw new Error(`model: ${model.layers.length} layers, config num_hidden_layers = ${c.numLayers}`);
  model.layers.forEach((L, i) => {
    const p = `model.layers.${i}`;
    expectLen(`${p}.input_layernorm.weight`, L.inputNorm, H);
    expectLen(`${p}.post_attention_layernorm.weight`, L.postAttentionNorm, H);
    checkLinear(`${p}.self_attn.q_proj`, L.q, qDim, H, c.qkvBias);
    checkLinear(`${p}.self_attn.k_proj`, L.k, kvDim, H, c.qkvBias);
    checkLinear(`${p}.self_attn.v_proj`, L.v, kvDim, H, c.qkvBias);
    checkLinear(`${p}.self_attn.o_proj`, L.o, H, qDim, c.oBias);
    checkLinear(`${p}.mlp.gate_proj`, L.gate, c.intermediateSize, H, c.mlpBias);
    checkLinear(`${p}.mlp.up_proj`, L.up, c.intermediateSize, H, c.mlpBias);
    checkLinear(`${p}.mlp.down_proj`, L.down, H, c.intermediateSize, c.mlpBias);
    if (c.qkNorm) {
      expectLen(`${p}.self_attn.q_norm.weight`, L.qNorm, c.headDim);
      expectLen(`${p}.self_attn.k_norm.weight`, L.kNorm, c.headDim);
    }
    for (const [name, a] of [['q_proj', L.q.weight], ['o_proj', L.o.weight], ['down_proj', L.down.weight]] as const) {
      if (!(a instanceof F || a instanceof F16Array || a instanceof PackedWeight)) throw new Error(`model: ${p}.${name}.weight is a ${a.constructor.name}, the model uses ${F.name}`);
    }
  });
  validated.add(model);
}

function validateBatch(model: ModelWeights, batch: Batch): void {
  const { batchSize: B, seqLen: T } = batch;
  if (!Number.isInteger(B) || B <= 0) throw new Error(`batch.batchSize must be a positive integer, got ${B}`);
  if (!Number.isInteger(T) || T <= 0) throw new Error(`batch.seqLen must be a positive integer, got ${T}`);
  if (batch.inputIds.length !== B * T) throw new Error(`batch.inputIds has ${batch.inputIds.length} ids, expected batchSize ${B} × seqLen ${T}`);
  if (batch.labels.length !== B * T) throw new Error(`batch.labels has ${batch.labels.length} labels, expected batchSize ${B} × seqLen ${T}`);
  const V = model.config.vocabSize;
  for (let i = 0; i < B * T; i++) {
    const id = batch.inputIds[i];
    if (!(id >= 0 && id < V)) throw new Error(`batch.inputIds[${i}] (sequence ${Math.floor(i / T)}, position ${i % T}) = ${id} is outside the vocabulary [0, ${V})`);
    const lab = batch.labels[i];
    if (lab !== IGNORE_INDEX && !(lab >= 0 && lab < V)) throw new Error(`batch.labels[${i}] (sequence ${Math.floor(i / T)}, position ${i % T}) = ${lab} is neither ${IGNORE_INDEX} nor in [0, ${V})`);
  }
}

function checkSameModules(lora: LoraWeights, grads: LoraWeights): void {
  if (grads.layers.length !== lora.layers.length) throw new Error(`lossAndGrads: gradsInto has ${grads.layers.length} layers, the adapter ${lora.layers.length}`);
  for (let l = 0; l < lora.layers.length; l++) {
    for (const target of LORA_TARGET_ORDER) {
      const p = lora.layers[l][target];
      const g = grads.layers[l][target];
      if (p === undefined && g === undefined) continue;
      if (p === undefined || g === undefined || g.A.length !== p.A.length || g.B.length !== p.B.length) {
        throw new Error(`lossAndGrads: gradsInto layers.${l}.${target} does not match the adapter's lora_A/lora_B shapes`);
      }
    }
  }
}

/** Row b·T + t predicts labels[b·T + t + 1]; the last row of each sequence predicts nothing. */
export function shiftLabels(batch: Batch): Int32Array {
  const { batchSize: B, seqLen: T, labels } = batch;
  const targets = new Int32Array(B * T).fill(IGNORE_INDEX);
  for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) targets[b * T + t] = labels[b * T + t + 1];
  return targets;
}

// ---------------------------------------------------------------------------------------------------------------
// Context and buffers

const ropeCache = new WeakMap<ModelConfig, { fp32: RopeTables | null; f64: RopeTables | null }>();

/** RoPE tables for at least `positions` positions, memoised per config (table values do not depend on the size). */
function ropeFor(cfg: ModelConfig, positions: number, fp32: boolean): RopeTables {
  let entry = ropeCache.get(cfg);
  if (entry === undefined) {
    entry = { fp32: null, f64: null };
    ropeCache.set(cfg, entry);
  }
  const have = fp32 ? entry.fp32 : entry.f64;
  if (have !== null && have.positions >= positions) return have;
  const n = Math.max(positions, have === null ? 0 : 2 * have.positions);
  const tables = rope.ropeTables({ headDim: cfg.headDim, ropeTheta: cfg.ropeTheta, ropeScaling: cfg.ropeScaling }, n, fp32);
  if (fp32) entry.fp32 = tables;
  else entry.f64 = tables;
  return tables;
}

function makeCtx(model: ModelWeights, lora: LoraWeights | null, B: number, T: number, cache: KvCache | null, ops: ModelOps, ws: Workspace | null): Ctx {
  validateModel(model);
  if (lora !== null) validateLoraForModel(model, lora);
  const cfg = model.config;
  const F = arrayCtorOf(model);
  const posOffset = cache === null ? 0 : cache.length;
  return {
    model,
    cfg,
    lora,
    F,
    ops,
    ws,
    B,
    T,
    M: B * T,
    H: cfg.hiddenSize,
    I: cfg.intermediateSize,
    V: cfg.vocabSize,
    nH: cfg.numHeads,
    nKv: cfg.numKvHeads,
    D: cfg.headDim,
    qDim: cfg.numHeads * cfg.headDim,
    kvDim: cfg.numKvHeads * cfg.headDim,
    eps: cfg.rmsNormEps,
    rope: ropeFor(cfg, posOffset + T, F === Float32Array),
    posOffset,
    cache,
    dropoutP: 0,
    layerSeeds: null,
  };
}

/** An activation array: from the workspace when there is one (contents undefined unless zero), else a new one. */
function take(ctx: Ctx, slot: string, n: number, zero = false): FloatArray {
  return ctx.ws === null ? ctx.ops.floats(ctx.F, n) : ctx.ws.take(ctx.ops, ctx.F, slot, n, zero);
}

function allocActs(ctx: Ctx, saveLse: boolean, slot: string): LayerActs {
  const { M, H, I, nH, nKv, qDim, kvDim } = ctx;
  const t = (name: string, n: number): FloatArray => take(ctx, `${slot}.${name}`, n);
  const qkNorm = ctx.cfg.qkNorm;
  const q = t('q', M * qDim);
  const k = t('k', M * kvDim);
  const lora: Partial<Record<LoraTargetName, TargetActs>> = {};
  if (ctx.lora !== null) {
    for (const target of ctx.lora.config.targets) {
      const { inFeatures } = targetShape(ctx.cfg, target);
      const dropout = ctx.dropoutP > 0;
      const maskSlot = `${slot}.${target}.keep`;
      lora[target] = {
        u: t(`${target}.u`, M * ctx.lora.config.r),
        xd: dropout ? t(`${target}.xd`, M * inFeatures) : null,
        mask: dropout ? { keep: ctx.ws === null ? new Uint8Array(M * inFeatures) : ctx.ws.mask(maskSlot, M * inFeatures), scale: 1 / (1 - ctx.dropoutP) } : null,
      };
    }
  }
  const lseLen = ctx.B * nH * ctx.T;
  return {
    rstd1: t('rstd1', M),
    xn1: t('xn1', M * H),
    q,
    k,
    v: t('v', M * kvDim),
    qr: qkNorm ? t('qr', M * qDim) : q,
    kr: qkNorm ? t('kr', M * kvDim) : k,
    rstdQ: qkNorm ? t('rstdQ', M * nH) : null,
    rstdK: qkNorm ? t('rstdK', M * nKv) : null,
    att: t('att', M * qDim),
    lse: saveLse ? (ctx.ws === null ? ctx.ops.lse(lseLen) : ctx.ws.take(ctx.ops, ctx.ops.lse(0).constructor as FloatArrayConstructor, `${slot}.lse`, lseLen, false)) : null,
    h: t('h', M * H),
    rstd2: t('rstd2', M),
    xn2: t('xn2', M * H),
    g: t('g', M * I),
    up: t('up', M * I),
    a: t('a', M * I),
    tmp: t('tmp', M * H),
    lora,
  };
}

function allocScratch(ctx: Ctx): BackwardScratch {
  const { M, H, I, qDim, kvDim } = ctx;
  const t = (name: string, n: number): FloatArray => take(ctx, `bwd.${name}`, n);
  return {
    da: t('da', M * I),
    dg: t('dg', M * I),
    dup: t('dup', M * I),
    dxn: t('dxn', M * H),
    datt: t('datt', M * qDim),
    dqr: t('dqr', M * qDim),
    dq: t('dq', M * qDim),
    dkr: t('dkr', M * kvDim),
    dk: t('dk', M * kvDim),
    dv: t('dv', M * kvDim),
    dqn: ctx.cfg.qkNorm ? t('dqn', M * qDim) : null,
    dkn: ctx.cfg.qkNorm ? t('dkn', M * kvDim) : null,
  };
}

function attentionShape(ctx: Ctx): AttentionShape {
  const cached = ctx.cache !== null;
  return {
    batch: ctx.B,
    queryLen: ctx.T,
    keyLen: cached ? ctx.posOffset + ctx.T : ctx.T,
    nHeads: ctx.nH,
    nKvHeads: ctx.nKv,
    headDim: ctx.D,
    window: ctx.cfg.slidingWindow,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// One decoder layer

function linearsOf(ctx: Ctx, l: number): Record<LoraTargetName, Linear> {
  const L = ctx.model.layers[l];
  return { q_proj: L.q, k_proj: L.k, v_proj: L.v, o_proj: L.o, gate_proj: L.gate, up_proj: L.up, down_proj: L.down };
}

function pairOf(ctx: Ctx, l: number, target: LoraTargetName): LoraPair | null {
  return ctx.lora === null ? null : (ctx.lora.layers[l][target] ?? null);
}

/** Dropout masks of layer l, drawn from the layer's own seed so a recompute (checkpointing) draws the same ones. */
function drawMasks(ctx: Ctx, l: number, acts: LayerActs): void {
  if (ctx.layerSeeds === null || ctx.lora === null) return;
  const masks: Uint8Array[] = [];
  for (const target of LORA_TARGET_ORDER) {
    const ta = acts.lora[target];
    if (ta === undefined || ta.mask === null || pairOf(ctx, l, target) === null) continue;
    masks.push(ta.mask.keep);
  }
  ctx.ops.dropoutMasks(ctx.layerSeeds[l], ctx.dropoutP, masks);
}

function project(ctx: Ctx, l: number, target: LoraTargetName, lin: Linear, x: FloatArray, y: FloatArray, acts: LayerActs): void {
  const pair = pairOf(ctx, l, target);
  const ta = pair === null ? undefined : acts.lora[target];
  const scaling = ctx.lora === null ? 0 : ctx.lora.scaling;
  ctx.ops.linearForward(y, ta?.u ?? null, ta?.xd ?? null, x, lin, pair, scaling, ta?.mask ?? null, ctx.M);
}

/** y = layer l applied to x; fills acts. With a KV cache, this layer's keys/values are appended at ctx.posOffset. */
function layerForward(ctx: Ctx, l: number, x: FloatArray, acts: LayerActs, y: FloatArray): void {
  const L = ctx.model.layers[l];
  const lin = linearsOf(ctx, l);
  const { M, H, I, nH, nKv, D, eps, ops } = ctx;
  drawMasks(ctx, l, acts);
  ops.rmsnormForward(acts.xn1, acts.rstd1, x, L.inputNorm, M, H, eps);
  project(ctx, l, 'q_proj', lin.q_proj, acts.xn1, acts.q, acts);
  project(ctx, l, 'k_proj', lin.k_proj, acts.xn1, acts.k, acts);
  project(ctx, l, 'v_proj', lin.v_proj, acts.xn1, acts.v, acts);
  if (ctx.cfg.qkNorm) {
    ops.rmsnormForward(acts.qr, acts.rstdQ as FloatArray, acts.q, L.qNorm as FloatArray, M * nH, D, eps);
    ops.rmsnormForward(acts.kr, acts.rstdK as FloatArray, acts.k, L.kNorm as FloatArray, M * nKv, D, eps);
  }
  ops.ropeForward(acts.qr, acts.qr, ctx.rope, ctx.B, ctx.T, nH, D, ctx.posOffset);
  ops.ropeForward(acts.kr, acts.kr, ctx.rope, ctx.B, ctx.T, nKv, D, ctx.posOffset);
  const shape = attentionShape(ctx);
  if (ctx.cache !== null) {
    const ck = ctx.cache.k[l];
    const cv = ctx.cache.v[l];
    ck.set(acts.kr.subarray(0, M * ctx.kvDim), ctx.posOffset * ctx.kvDim);
    cv.set(acts.v.subarray(0, M * ctx.kvDim), ctx.posOffset * ctx.kvDim);
    ops.attentionForward(acts.att, acts.lse, acts.qr, ck, cv, shape);
  } else {
    ops.attentionForward(acts.att, acts.lse, acts.qr, acts.kr, acts.v, shape);
  }
  project(ctx, l, 'o_proj', lin.o_proj, acts.att, acts.tmp, acts);
  const h = acts.h;
  const tmp = acts.tmp;
  ops.add(h, x, tmp, M * H);
  ops.rmsnormForward(acts.xn2, acts.rstd2, h, L.postAttentionNorm, M, H, eps);
  project(ctx, l, 'gate_proj', lin.gate_proj, acts.xn2, acts.g, acts);
  project(ctx, l, 'up_proj', lin.up_proj, acts.xn2, acts.up, acts);
  ops.swigluForward(acts.a, acts.g, acts.up, M * I);
  project(ctx, l, 'down_proj', lin.down_proj, acts.a, tmp, acts);
  ops.add(y, h, tmp, M * H);
}

function projectBack(
  ctx: Ctx,
  l: number,
  target: LoraTargetName,
  lin: Linear,
  dx: FloatArray | null,
  dY: FloatArray,
  x: FloatArray,
  acts: LayerActs,
  grads: LoraWeights | null,
): void {
  const pair = pairOf(ctx, l, target);
  if (pair === null) {
    if (dx !== null) ctx.ops.linearBackward(dx, null, null, dY, null, null, x, lin, null, 0, null, ctx.M);
    return;
  }
  const ta = acts.lora[target] as TargetActs;
  const g = grads === null ? undefined : grads.layers[l][target];
  const scaling = (ctx.lora as LoraWeights).scaling;
  ctx.ops.linearBackward(dx, g?.A ?? null, g?.B ?? null, dY, ta.u, ta.xd, x, lin, pair, scaling, ta.mask, ctx.M);
}

/**
 * dres holds ∂L/∂y on entry and ∂L/∂x on exit (when needDx; layer 0 skips what only feeds the frozen embedding).
 */
function layerBackward(ctx: Ctx, l: number, x: FloatArray, acts: LayerActs, dres: FloatArray, s: BackwardScratch, grads: LoraWeights | null, needDx: boolean): void {
  const L = ctx.model.layers[l];
  const lin = linearsOf(ctx, l);
  const { M, H, I, nH, nKv, D, ops } = ctx;
  s.da.fill(0);
  projectBack(ctx, l, 'down_proj', lin.down_proj, s.da, dres, acts.a, acts, grads);
  s.dg.fill(0);
  s.dup.fill(0);
  ops.swigluBackward(s.dg, s.dup, s.da, acts.g, acts.up, M * I);
  s.dxn.fill(0);
  projectBack(ctx, l, 'gate_proj', lin.gate_proj, s.dxn, s.dg, acts.xn2, acts, grads);
  projectBack(ctx, l, 'up_proj', lin.up_proj, s.dxn, s.dup, acts.xn2, acts, grads);
  ops.rmsnormBackward(dres, s.dxn, acts.h, L.postAttentionNorm, acts.rstd2, M, H);
  s.datt.fill(0);
  projectBack(ctx, l, 'o_proj', lin.o_proj, s.datt, dres, acts.att, acts, grads);
  s.dqr.fill(0);
  s.dkr.fill(0);
  s.dv.fill(0);
  ops.attentionBackward(s.dqr, s.dkr, s.dv, s.datt, acts.att, acts.lse as FloatArray, acts.qr, acts.kr, acts.v, attentionShape(ctx));
  s.dq.fill(0);
  s.dk.fill(0);
  if (ctx.cfg.qkNorm) {
    // RoPE backward into the post-norm gradient, then through q_norm/k_norm (frozen: no weight gradient).
    const dqn = s.dqn as FloatArray;
    const dkn = s.dkn as FloatArray;
    dqn.fill(0);
    dkn.fill(0);
    ops.ropeBackward(dqn, s.dqr, ctx.rope, ctx.B, ctx.T, nH, D, ctx.posOffset);
    ops.rmsnormBackward(s.dq, dqn, acts.q, L.qNorm as FloatArray, acts.rstdQ as FloatArray, M * nH, D);
    ops.ropeBackward(dkn, s.dkr, ctx.rope, ctx.B, ctx.T, nKv, D, ctx.posOffset);
    ops.rmsnormBackward(s.dk, dkn, acts.k, L.kNorm as FloatArray, acts.rstdK as FloatArray, M * nKv, D);
  } else {
    ops.ropeBackward(s.dq, s.dqr, ctx.rope, ctx.B, ctx.T, nH, D, ctx.posOffset);
    ops.ropeBackward(s.dk, s.dkr, ctx.rope, ctx.B, ctx.T, nKv, D, ctx.posOffset);
  }
  const dxn1 = needDx ? s.dxn : null;
  if (dxn1 !== null) dxn1.fill(0);
  projectBack(ctx, l, 'q_proj', lin.q_proj, dxn1, s.dq, acts.xn1, acts, grads);
  projectBack(ctx, l, 'k_proj', lin.k_proj, dxn1, s.dk, acts.xn1, acts, grads);
  projectBack(ctx, l, 'v_proj', lin.v_proj, dxn1, s.dv, acts.xn1, acts, grads);
  if (dxn1 !== null) ops.rmsnormBackward(dres, dxn1, x, L.inputNorm, acts.rstd1, M, H);
}

// ---------------------------------------------------------------------------------------------------------------
// Public entry points

/**
 * Loss and LoRA gradients of one (micro-)batch. Gradients are of lossScale · Σ token losses / normalizer.
 * With lora = null only the loss is computed (grads null).
 */
export function lossAndGrads(model: ModelWeights, lora: LoraWeights | null, batch: Batch, opts: StepOptions): StepResult {
  validateModel(model);
  validateBatch(model, batch);
  const ctx = makeCtx(model, lora, batch.batchSize, batch.seqLen, null, opts.ops ?? referenceOps, opts.workspace ?? null);
  const { M, H, V, ops } = ctx;
  const nLayers = ctx.cfg.numLayers;
  const lossScale = opts.lossScale ?? 1;
  if (!Number.isFinite(lossScale)) throw new Error(`lossAndGrads: lossScale must be finite, got ${lossScale}`);
  const targets = shiftLabels(batch);
  let count = 0;
  for (let i = 0; i < M; i++) if (targets[i] !== IGNORE_INDEX) count++;
  const normalizer = opts.normalizer ?? count;
  if (opts.normalizer !== undefined && !(opts.normalizer > 0)) throw new Error(`lossAndGrads: normalizer must be > 0, got ${opts.normalizer}`);
  const gradScale = normalizer > 0 ? lossScale / normalizer : 0;
  if (opts.gradsInto !== undefined) {
    if (lora === null) throw new Error('lossAndGrads: gradsInto was given without a LoRA adapter');
    checkSameModules(lora, opts.gradsInto);
  }
  if (lora !== null && opts.training && lora.config.dropout > 0) {
    if (opts.dropoutRng === undefined) throw new Error('lossAndGrads: dropout is active (training, lora.dropout > 0) but no dropoutRng was given');
    // Drawn last, after every check, so a rejected call leaves the Rng untouched.
    ctx.dropoutP = lora.config.dropout;
    ctx.layerSeeds = [];
    for (let l = 0; l < nLayers; l++) ctx.layerSeeds.push(opts.dropoutRng.nextU32());
  }
  const checkpointing = opts.checkpointing === true;
  const wantGrads = lora !== null;

  const res: FloatArray[] = [];
  for (let l = 0; l <= nLayers; l++) res.push(take(ctx, `res${l}`, M * H));
  ops.embedding(res[0], batch.inputIds, model.embedTokens, M, H);
  const acts: LayerActs[] = [];
  if (checkpointing || !wantGrads) acts.push(allocActs(ctx, wantGrads, 'layer'));
  else for (let l = 0; l < nLayers; l++) acts.push(allocActs(ctx, true, `layer${l}`));
  const actsFor = (l: number): LayerActs => (acts.length === 1 ? acts[0] : acts[l]);
  for (let l = 0; l < nLayers; l++) layerForward(ctx, l, res[l], actsFor(l), res[l + 1]);
  const rstdF = take(ctx, 'rstdF', M);
  const hn = take(ctx, 'hn', M * H);
  ops.rmsnormForward(hn, rstdF, res[nLayers], model.norm, M, H, ctx.eps);
  const ceShape: CrossEntropyShape = { rows: M, hidden: H, vocab: V, chunkRows: opts.ceChunkRows ?? ops.ceChunkRows(V) };
  if (!wantGrads) {
    const r = ops.crossEntropy(null, hn, model.lmHead, targets, ceShape, 0);
    return { loss: r.count > 0 ? r.sumLoss / r.count : 0, tokens: r.count, grads: null };
  }
  const dhn = take(ctx, 'dhn', M * H, true);
  const ce = ops.crossEntropy(dhn, hn, model.lmHead, targets, ceShape, gradScale);
  const grads = opts.gradsInto ?? zerosLike(lora);
  const dres = take(ctx, 'dres', M * H, true);
  ops.rmsnormBackward(dres, dhn, res[nLayers], model.norm, rstdF, M, H);
  const scratch = allocScratch(ctx);
  const recomputed = checkpointing ? take(ctx, 'recomputed', M * H) : null;
  for (let l = nLayers - 1; l >= 0; l--) {
    const a = actsFor(l);
    if (recomputed !== null) layerForward(ctx, l, res[l], a, recomputed);
    layerBackward(ctx, l, res[l], a, dres, scratch, grads, l > 0);
  }
  return { loss: ce.count > 0 ? ce.sumLoss / ce.count : 0, tokens: ce.count, grads };
}

/** What evalLoss and forwardLogits take besides the model: the kernels and a workspace (see StepOptions). */
export interface ForwardOptions {
  ops?: ModelOps;
  workspace?: Workspace;
}

/** Forward only: mean and summed CE over non-ignored targets (no dropout). */
export function evalLoss(model: ModelWeights, lora: LoraWeights | null, batch: Batch, opts: ForwardOptions = {}): { loss: number; tokens: number; sumLoss: number } {
  validateModel(model);
  validateBatch(model, batch);
  const ctx = makeCtx(model, lora, batch.batchSize, batch.seqLen, null, opts.ops ?? referenceOps, opts.workspace ?? null);
  const hn = forwardHidden(ctx, batch.inputIds);
  const targets = shiftLabels(batch);
  const r = ctx.ops.crossEntropy(null, hn, model.lmHead, targets, { rows: ctx.M, hidden: ctx.H, vocab: ctx.V, chunkRows: ctx.ops.ceChunkRows(ctx.V) }, 0);
  return { loss: r.count > 0 ? r.sumLoss / r.count : 0, tokens: r.count, sumLoss: r.sumLoss };
}

/** Final-norm hidden states [M, H] without keeping activations (eval, generation). */
function forwardHidden(ctx: Ctx, inputIds: Int32Array): FloatArray {
  const { M, H, ops } = ctx;
  let x = take(ctx, 'fwd.x', M * H);
  let y = take(ctx, 'fwd.y', M * H);
  ops.embedding(x, inputIds, ctx.model.embedTokens, M, H);
  const acts = allocActs(ctx, false, 'layer');
  for (let l = 0; l < ctx.cfg.numLayers; l++) {
    layerForward(ctx, l, x, acts, y);
    const t = x;
    x = y;
    y = t;
  }
  const hn = take(ctx, 'fwd.hn', M * H);
  ops.rmsnormForward(hn, take(ctx, 'fwd.rstd', M), x, ctx.model.norm, M, H, ctx.eps);
  return hn;
}

export interface LogitsOptions extends ForwardOptions {
  /** Decode through this cache (batch 1): the ids continue the cached tokens, and are appended to it. */
  cache?: KvCache;
  /** Only the logits of each sequence's last position ([B, V] instead of [B·T, V]). */
  lastOnly?: boolean;
  /**
   * The [vocab, hidden] weight the logits are taken with instead of model.lmHead — e.g. lm_head kept packed as a GGUF
   * stores it (PackedWeight), so decoding reads its blocks rather than an f16 copy. It must hold the same matrix.
   */
  lmHead?: LinearWeight;
}

/** Logits [B·T, V] (or [B, V] with lastOnly) in the model's array type, no dropout; a new array (not the workspace's). */
export function forwardLogits(model: ModelWeights, lora: LoraWeights | null, inputIds: Int32Array, B: number, T: number, opts: LogitsOptions = {}): FloatArray {
  validateModel(model);
  if (inputIds.length !== B * T) throw new Error(`forwardLogits: ${inputIds.length} ids, expected batch ${B} × length ${T}`);
  const cache = opts.cache ?? null;
  if (cache !== null) {
    if (B !== 1) throw new Error(`forwardLogits: a KV cache holds one sequence, got batch ${B}`);
    if (cache.k.length !== model.config.numLayers || cache.kvDim !== model.config.numKvHeads * model.config.headDim) throw new Error('forwardLogits: the KV cache was made for another model config');
    cache.ensureRoom(T);
  }
  const lmHead = opts.lmHead ?? model.lmHead;
  if (lmHead instanceof PackedWeight ? lmHead.rows !== model.config.vocabSize || lmHead.cols !== model.config.hiddenSize : lmHead.length !== model.config.vocabSize * model.config.hiddenSize) {
    const shape = lmHead instanceof PackedWeight ? `a ${lmHead.format} [${lmHead.rows}, ${lmHead.cols}] matrix` : `${lmHead.length} values`;
    throw new Error(`forwardLogits: the lm_head given for the logits is ${shape}, expected [vocab ${model.config.vocabSize}, hidden ${model.config.hiddenSize}]`);
  }
  const ctx = makeCtx(model, lora, B, T, cache, opts.ops ?? referenceOps, opts.workspace ?? null);
  const hn = forwardHidden(ctx, inputIds);
  if (cache !== null) cache.length += T;
  const { F, H, V } = ctx;
  if (opts.lastOnly === true) {
    const last = take(ctx, 'fwd.last', B * H);
    for (let b = 0; b < B; b++) last.set(hn.subarray((b * T + T - 1) * H, (b * T + T) * H), b * H);
    const out = ctx.ops.floats(F, B * V);
    lmHeadLogits(ctx, out, last, lmHead, B, H, V);
    return out;
  }
  const out = ctx.ops.floats(F, B * T * V);
  lmHeadLogits(ctx, out, hn, lmHead, B * T, H, V);
  return out;
}

function lmHeadLogits(ctx: Ctx, out: FloatArray, hn: FloatArray, lmHead: LinearWeight, rows: number, H: number, V: number): void {
  ctx.ops.linearForward(out, null, null, hn, { weight: lmHead, bias: null, outFeatures: V, inFeatures: H }, null, 0, null, rows);
}

/** Frozen parameters of the base model (a tied lm_head counted once). */
export function countParameters(model: ModelWeights): number {
  const seen = new Set<LinearWeight>();
  const add = (a: LinearWeight | null): void => {
    if (a !== null) seen.add(a);
  };
  add(model.embedTokens);
  add(model.norm);
  add(model.lmHead);
  for (const L of model.layers) {
    add(L.inputNorm);
    add(L.postAttentionNorm);
    add(L.qNorm);
    add(L.kNorm);
    for (const lin of [L.q, L.k, L.v, L.o, L.gate, L.up, L.down]) {
      add(lin.weight);
      add(lin.bias);
    }
  }
  let n = 0;
  for (const a of seen) n += a.length;
  return n;
}
