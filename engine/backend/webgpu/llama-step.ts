/**
 * The LLaMA-family training step on the GPU: the same math as engine/model/llama.ts (the cpu reference), with the
 * frozen weights, activations, LoRA state and AdamW all resident on the device.
 *
 *   forward    embed → per layer: rmsnorm, q/k/v (+LoRA), [q/k norm], RoPE, fused attention, o (+LoRA), residual,
 *              rmsnorm, gate/up (+LoRA), SwiGLU, down (+LoRA), residual → final norm
 *   loss       chunked cross-entropy through lm_head (never the full fp32 logits), gradient written in place
 *   backward   the reverse, recomputing a layer's forward first when checkpointing
 *   optimizer  unscale + inf/NaN flag, global grad norm, AdamW with the clip coefficient — on the flat LoRA buffers
 *
 * Each phase is a recorded Program replayed per step (see runner.ts); the host uploads the batch (ids, shifted
 * targets, active rows), per-step scalars and dropout seeds, and reads back the per-row losses and two optimizer
 * scalars. Precision 'fp16': frozen weights and activations (and activation gradients) f16, LoRA master weights,
 * their gradients and AdamW state f32, every matmul accumulating in f32 (DESIGN.md §4).
 *
 * Generation (a session made with `kvCacheLen`): prefill() runs the prompt once and decode() one token per call, both
 * appending keys/values to a per-layer KV cache on the device (kv-cache.ts) and attending over it with a position
 * offset (ropeAt, attentionCached); the last position's hidden state goes through lm_head on the device too, so a
 * step reads back only its hidden row and logits. LoRA is applied unmerged, without dropout.
 *
 * Dropout differs from the cpu backend in one respect: masks come from a hash of (seed, element) on the device, not
 * from the host Rng, so they have the same distribution but not the same bits. One uint32 per layer is still drawn
 * from `dropoutRng` per call, so the host RNG advances exactly as the cpu backend's does.
 */
import { forEachPair, LORA_TARGET_ORDER, validateLoraForModel, zerosLike } from '../../model/lora.ts';
import { validateModel } from '../../model/llama.ts';
import type { StepOptions, StepResult } from '../../model/llama.ts';
import { ropeTables } from '../../model/rope.ts';
import { IGNORE_INDEX, type Batch, type LoraConfig, type LoraPair, type LoraTargetName, type LoraWeights, type ModelConfig, type ModelWeights } from '../../model/types.ts';
import type { Rng } from '../../util/rng.ts';
import { adamwScalars, adamwStep } from './adamw.ts';
import { attentionBackward, attentionCached, attentionForward, type AttentionDims } from './attention.ts';
import { DEFAULT_CE_CHUNK_BYTES } from './buffer-sizes.ts';
import { crossEntropy, type CrossEntropyBuffers } from './cross-entropy.ts';
import { acquireGpu, formatGiB, GpuOutOfMemoryError, type AcquireOptions, type GpuContext } from './device.ts';
import { add, fill } from './elementwise.ts';
import { embeddingForward } from './embedding.ts';
import { gradNormSquared } from './grad-norm.ts';
import { copyAt, GpuKvCache } from './kv-cache.ts';
import { linearRow, matvec } from './matvec.ts';
import { activationSets, activationSpecs, adaptedTargets, ceChunkRows, describeEstimate, estimateMemory, loraSlotSpecs, type Precision, type SessionShape } from './llama-memory.ts';
import { createWeights, sourcePacking, type GpuLayerWeights, type GpuModelWeights, type WeightSource } from './llama-weights.ts';
import { specBytes, weightSpecs } from './weight-specs.ts';
import { linearBackward, linearForward, type GpuLoraBranch } from './lora.ts';
import { rmsnormBackward, rmsnormForward } from './rmsnorm.ts';
import { rope, ropeAt } from './rope.ts';
import { Program, Runner, type ParamValue } from './runner.ts';
import { swigluBackwardInPlace, swigluForward } from './swiglu.ts';
import { createPacked, createTensor, download, dtypeBytes, upload, view, type GpuTensor } from './tensor.ts';
import { unscaleGrads } from './unscale.ts';
import { pcgHash } from './wgsl.ts';

export type { Precision } from './llama-memory.ts';

export interface WebgpuSessionOptions {
  precision: Precision;
  checkpointing: boolean;
  /** Largest batch (sequences × tokens) the session will run; activations are allocated for it. */
  maxBatchSize: number;
  maxSeqLen: number;
  /** false: forward only (eval-loss), no gradients or optimizer state. Default true. */
  training?: boolean;
  /** Use this device instead of acquiring one (the session then does not destroy it). */
  gpu?: GpuContext;
  acquire?: AcquireOptions;
  /** f32 logits per cross-entropy chunk; default 64 MiB. */
  ceChunkBytes?: number;
  /** Override the storage-binding limit (tests force the split lm_head path). */
  maxBindingBytes?: number;
  /**
   * Positions of a KV cache on the device for prefill()/decode() (prompt + new tokens). Activations stay sized by
   * maxBatchSize × maxSeqLen: a prompt longer than maxSeqLen is prefilled in chunks of that many tokens.
   */
  kvCacheLen?: number;
}

/** What a generation step reads back: the last new position's final-norm hidden state and its logits. */
export interface GenerationStep {
  /** [hidden] f32 (widened from f16 in fp16): lm_head's input. */
  hidden: Float32Array;
  /** [vocab] f32, from lm_head on the device (f32 accumulation). */
  logits: Float32Array;
}

export interface GpuStepOptions {
  training: boolean;
  dropoutRng?: Rng;
  lossScale?: number;
  normalizer?: number;
  /** Add to the gradients already on the device (gradient accumulation) instead of starting from zero. */
  accumulate?: boolean;
}

export interface OptimizerStepOptions {
  lr: number;
  /** The AdamW step number after this update (state.t + 1). */
  t: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global norm (after unscaling) to this; ≤ 0 measures only. */
  maxGradNorm: number;
  /** The loss scale the gradients carry (1 when not scaling): they are unscaled by fround(1/scale) first. */
  lossScale: number;
}

export interface OptimizerStepResult {
  foundInf: boolean;
  /** Global norm after unscaling, before clipping (what the charts show). */
  gradNorm: number;
  /** false when an inf/NaN skipped the update (the trainer then backs the scale off). */
  applied: boolean;
}

interface ActSet {
  rstd1: GpuTensor;
  xn1: GpuTensor;
  q: GpuTensor;
  k: GpuTensor;
  v: GpuTensor;
  qr: GpuTensor;
  kr: GpuTensor;
  rstdQ: GpuTensor | null;
  rstdK: GpuTensor | null;
  att: GpuTensor;
  lse: GpuTensor;
  h: GpuTensor;
  rstd2: GpuTensor;
  xn2: GpuTensor;
  g: GpuTensor;
  up: GpuTensor;
  a: GpuTensor;
  u: Partial<Record<LoraTargetName, GpuTensor>>;
}

interface LoraSlot {
  A: GpuTensor;
  B: GpuTensor;
  dA: GpuTensor | null;
  dB: GpuTensor | null;
}

interface Shape {
  B: number;
  T: number;
  M: number;
}

/** Seed of one adapted module's dropout mask, from its layer's draw (each module has its own mask, as in PEFT). */
function targetSeed(layerSeed: number, targetIndex: number): number {
  return pcgHash((layerSeed ^ Math.imul(targetIndex + 1, 0x9e3779b9)) >>> 0);
}

export class WebgpuLlama {
  readonly runner: Runner;
  readonly shape: SessionShape;
  private readonly act: 'f32' | 'f16';
  private readonly bufs = new Map<string, GpuTensor>();
  private readonly acts: ActSet[] = [];
  private lora: { config: LoraConfig; scaling: number; slots: Partial<Record<LoraTargetName, LoraSlot>>[]; flat: { params: GpuTensor; grads: GpuTensor | null; m: GpuTensor | null; v: GpuTensor | null; n: number } } | null = null;
  private readonly layerSeeds: Uint32Array;
  private readonly programs = new Map<string, Program>();
  /** Leading rows of the RoPE tables uploaded (the tables are the same whatever length they are built for). */
  private ropeRows = 0;
  private kv: GpuKvCache | null = null;
  /** Cache position of the step being submitted: the recorded generation programs read it through thunks. */
  private kvPos = 0;
  private destroyed = false;
  /** Every buffer made for this session (weights, LoRA state, activations), released by destroy(). */
  private owned: GPUBuffer[] = [];

  private constructor(
    readonly ctx: GpuContext,
    private readonly ownsDevice: boolean,
    readonly weights: GpuModelWeights,
    shape: SessionShape,
  ) {
    this.runner = new Runner(ctx);
    this.shape = shape;
    this.act = shape.precision === 'fp16' ? 'f16' : 'f32';
    this.layerSeeds = new Uint32Array(weights.config.numLayers);
  }

  get config(): ModelConfig {
    return this.weights.config;
  }

  /**
   * Checks that the whole session fits, acquires the device (unless given), uploads weights and LoRA.
   * Throws GpuOutOfMemoryError ("needs X GiB, adapter allows Y") before allocating when it cannot fit.
   */
  static async create(src: WeightSource, lora: LoraWeights | null, opts: WebgpuSessionOptions): Promise<WebgpuLlama> {
    const cfg = src.kind === 'host' ? src.model.config : src.config;
    if (src.kind === 'host') {
      validateModel(src.model);
      if (lora !== null) validateLoraForModel(src.model, lora);
    }
    if (!(Number.isInteger(opts.maxBatchSize) && opts.maxBatchSize > 0)) throw new Error(`webgpu: maxBatchSize must be a positive integer, got ${opts.maxBatchSize}`);
    if (!(Number.isInteger(opts.maxSeqLen) && opts.maxSeqLen > 0)) throw new Error(`webgpu: maxSeqLen must be a positive integer, got ${opts.maxSeqLen}`);
    if (opts.kvCacheLen !== undefined && !(Number.isInteger(opts.kvCacheLen) && opts.kvCacheLen > 0)) throw new Error(`webgpu: kvCacheLen must be a positive integer, got ${opts.kvCacheLen}`);
    const shape: SessionShape = {
      precision: opts.precision,
      checkpointing: opts.checkpointing,
      training: opts.training ?? true,
      batch: opts.maxBatchSize,
      seq: opts.maxSeqLen,
      ceChunkBytes: opts.ceChunkBytes ?? DEFAULT_CE_CHUNK_BYTES,
      ...(opts.kvCacheLen !== undefined ? { kvCacheLen: opts.kvCacheLen } : {}),
      packing: sourcePacking(src),
    };
    const ctx = opts.gpu ?? (await acquireGpu(opts.acquire));
    const owns = opts.gpu === undefined;
    const snap = ctx.allocator.snapshot();
    try {
      if (opts.precision === 'fp16' && !ctx.features.f16) throw new Error(`webgpu: precision fp16 needs the shader-f16 feature, which ${ctx.adapterName} lacks; use fp32`);
      const est = estimateMemory(cfg, lora?.config ?? null, shape);
      const budget = ctx.allocator.budgetBytes;
      if (ctx.allocator.liveBytes + est.total > budget) {
        throw new GpuOutOfMemoryError(est.total, budget, `${describeEstimate(est)}; try checkpointing, fp16, a shorter sequence or a smaller batch`);
      }
      const maxBinding = Math.min(opts.maxBindingBytes ?? Number.POSITIVE_INFINITY, ctx.limits.maxStorageBufferBindingSize);
      // Activations and the per-layer weights are bound whole (only embed/lm_head are split by rows).
      for (const b of activationSpecs(cfg, lora?.config ?? null, shape)) {
        if (b.size * dtypeBytes(b.dtype) > ctx.limits.maxStorageBufferBindingSize) {
          throw new Error(`webgpu: activation '${b.name}' needs ${formatGiB(b.size * dtypeBytes(b.dtype))} in one binding, ${ctx.adapterName} binds at most ${formatGiB(ctx.limits.maxStorageBufferBindingSize)}; lower the batch size or sequence length`);
        }
      }
      for (const w of weightSpecs(cfg, shape.packing ?? null)) {
        if (w.name.includes('layers.') && specBytes(w, shape.precision === 'fp16' ? 'f16' : 'f32') > ctx.limits.maxStorageBufferBindingSize) {
          throw new Error(`webgpu: weight ${w.name} exceeds ${ctx.adapterName}'s storage-binding limit of ${formatGiB(ctx.limits.maxStorageBufferBindingSize)}`);
        }
      }
      const weights = await ctx.allocator.guard('uploading the model', est.total, () => createWeights(ctx, new Runner(ctx), src, shape.precision === 'fp16' ? 'f16' : 'f32', maxBinding));
      const session = new WebgpuLlama(ctx, owns, weights, shape);
      await ctx.allocator.guard('allocating activations', est.total, () => session.allocate(lora));
      session.owned = ctx.allocator.createdSince(snap);
      if (lora !== null) session.writeLora(lora);
      await ctx.sync();
      return session;
    } catch (e) {
      for (const b of ctx.allocator.createdSince(snap)) ctx.allocator.destroy(b);
      if (owns) ctx.destroy();
      throw e;
    }
  }

  private buf(name: string): GpuTensor {
    const t = this.bufs.get(name);
    if (!t) throw new Error(`webgpu: internal buffer '${name}' was not allocated`);
    return t;
  }

  private allocate(lora: LoraWeights | null): void {
    const cfg = this.config;
    const loraCfg = lora?.config ?? null;
    for (const s of activationSpecs(cfg, loraCfg, this.shape)) this.bufs.set(s.name, createTensor(this.ctx, s.name, s.size, s.dtype));
    for (let si = 0; si < activationSets(cfg, this.shape); si++) {
      const g = (n: string): GpuTensor => this.buf(`act.${si}.${n}`);
      const u: Partial<Record<LoraTargetName, GpuTensor>> = {};
      for (const t of adaptedTargets(loraCfg)) u[t] = g(`u.${t}`);
      this.acts.push({
        rstd1: g('rstd1'),
        xn1: g('xn1'),
        q: g('q'),
        k: g('k'),
        v: g('v'),
        qr: cfg.qkNorm ? g('qr') : g('q'),
        kr: cfg.qkNorm ? g('kr') : g('k'),
        rstdQ: cfg.qkNorm ? g('rstdQ') : null,
        rstdK: cfg.qkNorm ? g('rstdK') : null,
        att: g('att'),
        lse: g('lse'),
        h: g('h'),
        rstd2: g('rstd2'),
        xn2: g('xn2'),
        g: g('g'),
        up: g('up'),
        a: g('a'),
        u,
      });
    }
    const kvLen = this.shape.kvCacheLen ?? 0;
    if (kvLen > 0) {
      const layers = Array.from({ length: cfg.numLayers }, (_, l) => l);
      this.kv = new GpuKvCache(
        layers.map((l) => this.buf(`kv.${l}.k`)),
        layers.map((l) => this.buf(`kv.${l}.v`)),
        kvLen,
        cfg.numKvHeads * cfg.headDim,
      );
    }
    if (lora === null || loraCfg === null) return;
    const specs = loraSlotSpecs(cfg, loraCfg);
    const parts = specs.map((s) => ({ name: `layers.${s.layer}.${s.target}.lora_${s.which}`, size: s.size }));
    const params = createPacked(this.ctx, 'lora.params', parts, 'f32');
    const training = this.shape.training;
    const grads = training ? createPacked(this.ctx, 'lora.grads', parts, 'f32') : null;
    const m = training ? createPacked(this.ctx, 'lora.m', parts, 'f32') : null;
    const v = training ? createPacked(this.ctx, 'lora.v', parts, 'f32') : null;
    const slots: Partial<Record<LoraTargetName, LoraSlot>>[] = Array.from({ length: cfg.numLayers }, () => ({}));
    specs.forEach((s, i) => {
      const slot = (slots[s.layer][s.target] ??= { A: params.tensors[i], B: params.tensors[i], dA: null, dB: null });
      if (s.which === 'A') {
        slot.A = params.tensors[i];
        slot.dA = grads ? grads.tensors[i] : null;
      } else {
        slot.B = params.tensors[i];
        slot.dB = grads ? grads.tensors[i] : null;
      }
    });
    const whole = (p: ReturnType<typeof createPacked>, name: string): GpuTensor => ({ name, buffer: p.buffer, offset: 0, size: p.totalElements, dtype: 'f32' });
    this.lora = {
      config: loraCfg,
      scaling: lora.scaling,
      slots,
      flat: { params: whole(params, 'lora.params'), grads: grads ? whole(grads, 'lora.grads') : null, m: m ? whole(m, 'lora.m') : null, v: v ? whole(v, 'lora.v') : null, n: params.totalElements },
    };
    // The optimizer kernels run over the whole flat buffers, alignment gaps included: WebGPU zero-initialises
    // buffers, and nothing ever writes the gaps, so they stay 0 through every update.
  }

  // -------------------------------------------------------------------------------------------------------------
  // LoRA state in and out

  /** Uploads LoRA weights (same config as the session was created with). */
  writeLora(lora: LoraWeights): void {
    const st = this.requireLora();
    if (lora.config.r !== st.config.r || lora.layers.length !== this.config.numLayers) throw new Error('webgpu: writeLora got an adapter of another shape than the session');
    forEachPair(lora, (target, l, pair) => {
      const slot = st.slots[l][target];
      if (!slot) throw new Error(`webgpu: the session has no LoRA slot for layers.${l}.${target}`);
      upload(this.ctx, slot.A, pair.A instanceof Float32Array ? pair.A : Float32Array.from(pair.A));
      upload(this.ctx, slot.B, pair.B instanceof Float32Array ? pair.B : Float32Array.from(pair.B));
    });
  }

  private requireLora(): NonNullable<WebgpuLlama['lora']> {
    if (this.lora === null) throw new Error('webgpu: this session has no LoRA adapter');
    return this.lora;
  }

  private async readSlots(which: 'params' | 'grads' | 'm' | 'v'): Promise<LoraWeights> {
    const st = this.requireLora();
    const list: { target: LoraTargetName; layer: number; A: GpuTensor; B: GpuTensor }[] = [];
    st.slots.forEach((layer, l) => {
      for (const target of LORA_TARGET_ORDER) {
        const s = layer[target];
        if (!s) continue;
        const pick = (t: GpuTensor, d: GpuTensor | null): GpuTensor => {
          if (which === 'params') return t;
          if (which === 'grads') {
            if (!d) throw new Error('webgpu: this session has no gradients (training: false)');
            return d;
          }
          const flat = which === 'm' ? st.flat.m : st.flat.v;
          if (!flat) throw new Error('webgpu: this session has no optimizer state (training: false)');
          return { ...t, buffer: flat.buffer };
        };
        list.push({ target, layer: l, A: pick(s.A, s.dA), B: pick(s.B, s.dB) });
      }
    });
    const data = await download(this.ctx, list.flatMap((x) => [x.A, x.B]));
    const out: LoraWeights = { config: { ...st.config, targets: [...st.config.targets] }, scaling: st.scaling, layers: Array.from({ length: this.config.numLayers }, () => ({})) };
    list.forEach((x, i) => {
      const pair: LoraPair = { A: data[2 * i], B: data[2 * i + 1] };
      out.layers[x.layer][x.target] = pair;
    });
    return out;
  }

  readLora(): Promise<LoraWeights> {
    return this.readSlots('params');
  }

  /** The accumulated LoRA gradients (of lossScale·Σ losses / normalizer, as the cpu backend's). */
  readGrads(): Promise<LoraWeights> {
    return this.readSlots('grads');
  }

  /** AdamW moments in the LoRA layout (for checkpoints). */
  async readOptimizerState(): Promise<{ m: LoraWeights; v: LoraWeights }> {
    return { m: await this.readSlots('m'), v: await this.readSlots('v') };
  }

  writeOptimizerState(m: LoraWeights, v: LoraWeights): void {
    const st = this.requireLora();
    const mm = st.flat.m;
    const vv = st.flat.v;
    if (!mm || !vv) throw new Error('webgpu: this session has no optimizer state (training: false)');
    for (const [src, flat] of [
      [m, mm],
      [v, vv],
    ] as const) {
      forEachPair(src, (target, l, pair) => {
        const slot = st.slots[l][target];
        if (!slot) throw new Error(`webgpu: the session has no LoRA slot for layers.${l}.${target}`);
        upload(this.ctx, { ...slot.A, buffer: flat.buffer }, Float32Array.from(pair.A));
        upload(this.ctx, { ...slot.B, buffer: flat.buffer }, Float32Array.from(pair.B));
      });
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Recording

  private branch(l: number, target: LoraTargetName, si: number, dropout: boolean): GpuLoraBranch | null {
    const st = this.lora;
    const slot = st?.slots[l][target];
    if (!st || !slot) return null;
    const u = this.acts[si].u[target];
    if (!u) throw new Error(`webgpu: no u buffer for ${target}`);
    const ti = LORA_TARGET_ORDER.indexOf(target);
    const p = st.config.dropout;
    return {
      A: slot.A,
      B: slot.B,
      dA: slot.dA,
      dB: slot.dB,
      u,
      g: this.bufs.get('lora.g') ?? u,
      r: st.config.r,
      scaling: st.scaling,
      dropout: dropout && p > 0 ? { p, seed: () => targetSeed(this.layerSeeds[l], ti) } : null,
    };
  }

  private attnDims(s: Shape): AttentionDims {
    const c = this.config;
    return { batch: s.B, T: s.T, nHeads: c.numHeads, nKvHeads: c.numKvHeads, headDim: c.headDim, window: c.slidingWindow };
  }

  private setFor(l: number): number {
    return this.acts.length === 1 ? 0 : l;
  }

  /** With `kv`, the s.M tokens are new positions kv.pos.. of one sequence: keys/values go to the cache first. */
  private recordLayerForward(p: Program, l: number, x: GpuTensor, y: GpuTensor, s: Shape, dropout: boolean, kv: { cache: GpuKvCache; pos: ParamValue } | null = null): void {
    const c = this.config;
    const L: GpuLayerWeights = this.weights.layers[l];
    const si = this.setFor(l);
    const a = this.acts[si];
    const { M } = s;
    const H = c.hiddenSize;
    const br = (t: LoraTargetName): GpuLoraBranch | null => this.branch(l, t, si, dropout);
    // A decode step is one row: the matrix-vector kernel instead of a 64-row matmul tile.
    const linear = (out: GpuTensor, inp: GpuTensor, t: LoraTargetName): void => {
      if (kv !== null && M === 1) linearRow(p, out, inp, L.lin[t], br(t));
      else linearForward(p, out, inp, L.lin[t], br(t), M);
    };
    rmsnormForward(p, a.xn1, a.rstd1, x, L.inputNorm, M, H, c.rmsNormEps);
    linear(a.q, a.xn1, 'q_proj');
    linear(a.k, a.xn1, 'k_proj');
    linear(a.v, a.xn1, 'v_proj');
    if (c.qkNorm && a.rstdQ && a.rstdK && L.qNorm && L.kNorm) {
      rmsnormForward(p, a.qr, a.rstdQ, a.q, L.qNorm, M * c.numHeads, c.headDim, c.rmsNormEps);
      rmsnormForward(p, a.kr, a.rstdK, a.k, L.kNorm, M * c.numKvHeads, c.headDim, c.rmsNormEps);
    }
    const cos = this.buf('rope.cos');
    const sin = this.buf('rope.sin');
    if (kv === null) {
      rope(p, a.qr, cos, sin, { tokens: M, T: s.T, nHeads: c.numHeads, headDim: c.headDim }, 'forward');
      rope(p, a.kr, cos, sin, { tokens: M, T: s.T, nHeads: c.numKvHeads, headDim: c.headDim }, 'forward');
      attentionForward(p, a.att, a.lse, a.qr, a.kr, a.v, this.attnDims(s));
    } else {
      const kvDim = kv.cache.kvDim;
      const pos = kv.pos;
      const at = typeof pos === 'number' ? pos * kvDim : (): number => pos() * kvDim;
      ropeAt(p, a.qr, cos, sin, { tokens: M, nHeads: c.numHeads, headDim: c.headDim }, pos);
      ropeAt(p, a.kr, cos, sin, { tokens: M, nHeads: c.numKvHeads, headDim: c.headDim }, pos);
      copyAt(p, a.kr, 0, kv.cache.k[l], at, M * kvDim);
      copyAt(p, a.v, 0, kv.cache.v[l], at, M * kvDim);
      attentionCached(p, a.att, a.qr, kv.cache.k[l], kv.cache.v[l], { queries: M, nHeads: c.numHeads, nKvHeads: c.numKvHeads, headDim: c.headDim, window: c.slidingWindow }, pos);
    }
    const tmp = this.buf('tmp');
    linear(tmp, a.att, 'o_proj');
    add(p, x, tmp, a.h, M * H);
    rmsnormForward(p, a.xn2, a.rstd2, a.h, L.postNorm, M, H, c.rmsNormEps);
    linear(a.g, a.xn2, 'gate_proj');
    linear(a.up, a.xn2, 'up_proj');
    swigluForward(p, a.a, a.g, a.up, M * c.intermediateSize);
    linear(tmp, a.a, 'down_proj');
    add(p, a.h, tmp, y, M * H);
  }

  /** dres: ∂L/∂y in, ∂L/∂x out (when needDx). */
  private recordLayerBackward(p: Program, l: number, x: GpuTensor, s: Shape, needDx: boolean, dropout: boolean): void {
    const c = this.config;
    const L = this.weights.layers[l];
    const si = this.setFor(l);
    const a = this.acts[si];
    const { M } = s;
    const H = c.hiddenSize;
    const b = (n: string): GpuTensor => this.buf(n);
    const br = (t: LoraTargetName): GpuLoraBranch | null => this.branch(l, t, si, dropout);
    const dres = b('dres');
    linearBackward(p, b('da'), false, dres, a.a, L.lin.down_proj, br('down_proj'), M);
    // da becomes dg and a.up becomes dup: this layer's up activation is not read again.
    swigluBackwardInPlace(p, b('da'), a.g, a.up, M * c.intermediateSize);
    linearBackward(p, b('dxn'), false, b('da'), a.xn2, L.lin.gate_proj, br('gate_proj'), M);
    linearBackward(p, b('dxn'), true, a.up, a.xn2, L.lin.up_proj, br('up_proj'), M);
    rmsnormBackward(p, dres, b('dxn'), a.h, L.postNorm, a.rstd2, M, H, true);
    linearBackward(p, b('datt'), false, dres, a.att, L.lin.o_proj, br('o_proj'), M);
    const qk = c.qkNorm && a.rstdQ && a.rstdK && L.qNorm && L.kNorm;
    const dqr = qk ? b('dqr') : b('dq');
    const dkr = qk ? b('dkr') : b('dk');
    attentionBackward(p, dqr, dkr, b('dv'), b('delta'), b('datt'), a.att, a.lse, a.qr, a.kr, a.v, this.attnDims(s));
    const cos = b('rope.cos');
    const sin = b('rope.sin');
    rope(p, dqr, cos, sin, { tokens: M, T: s.T, nHeads: c.numHeads, headDim: c.headDim }, 'backward');
    rope(p, dkr, cos, sin, { tokens: M, T: s.T, nHeads: c.numKvHeads, headDim: c.headDim }, 'backward');
    if (qk && a.rstdQ && a.rstdK && L.qNorm && L.kNorm) {
      rmsnormBackward(p, b('dq'), dqr, a.q, L.qNorm, a.rstdQ, M * c.numHeads, c.headDim, false);
      rmsnormBackward(p, b('dk'), dkr, a.k, L.kNorm, a.rstdK, M * c.numKvHeads, c.headDim, false);
    }
    const dxn = needDx ? b('dxn') : null;
    linearBackward(p, dxn, false, b('dq'), a.xn1, L.lin.q_proj, br('q_proj'), M);
    linearBackward(p, dxn, true, b('dk'), a.xn1, L.lin.k_proj, br('k_proj'), M);
    linearBackward(p, dxn, true, b('dv'), a.xn1, L.lin.v_proj, br('v_proj'), M);
    if (needDx) rmsnormBackward(p, dres, b('dxn'), x, L.inputNorm, a.rstd1, M, H, true);
  }

  private async program(key: string, record: (p: Program) => void): Promise<Program> {
    let prog = this.programs.get(key);
    if (!prog) {
      prog = new Program(this.runner, key);
      record(prog);
      await prog.compile();
      await prog.build();
      // Shapes vary little in practice; keep the most recent few.
      if (this.programs.size >= 24) {
        const oldest = this.programs.keys().next().value;
        if (oldest !== undefined) {
          this.programs.get(oldest)?.destroy();
          this.programs.delete(oldest);
        }
      }
      this.programs.set(key, prog);
    }
    return prog;
  }

  private forwardProgram(s: Shape, dropout: boolean): Promise<Program> {
    return this.program(`fwd:${s.B}x${s.T}:drop=${dropout}`, (p) => {
      const c = this.config;
      const res0 = this.buf('res.0');
      const parts = this.weights.embed;
      parts.parts.forEach((t, i) => embeddingForward(p, res0, this.buf('ids'), t, s.M, c.hiddenSize, i * parts.vp));
      for (let l = 0; l < c.numLayers; l++) this.recordLayerForward(p, l, this.buf(`res.${l}`), this.buf(`res.${l + 1}`), s, dropout);
      rmsnormForward(p, this.buf('hn'), this.buf('rstdF'), this.buf(`res.${c.numLayers}`), this.weights.norm, s.M, c.hiddenSize, c.rmsNormEps);
    });
  }

  private ceBuffers(grad: boolean): CrossEntropyBuffers {
    return {
      rowIdx: this.buf('ce.rowIdx'),
      targets: this.buf('ce.targets'),
      losses: this.buf('ce.losses'),
      gradScale: this.buf('ce.gradScale'),
      hChunk: this.buf('ce.hChunk'),
      logits: this.buf('ce.logits'),
      dhChunk: grad ? this.buf('ce.dhChunk') : null,
    };
  }

  private ceProgram(s: Shape, nChunks: number, grad: boolean): Promise<Program> {
    const c = this.config;
    const chunk = ceChunkRows(c, this.shape);
    return this.program(`ce:${s.B}x${s.T}:chunks=${nChunks}:grad=${grad}`, (p) => {
      crossEntropy(p, this.buf('hn'), this.weights.lmHead, grad ? this.buf('dhn') : null, this.ceBuffers(grad), { rows: s.M, hidden: c.hiddenSize, vocab: c.vocabSize, chunkRows: chunk }, nChunks);
    });
  }

  private backwardProgram(s: Shape, dropout: boolean): Promise<Program> {
    return this.program(`bwd:${s.B}x${s.T}:drop=${dropout}`, (p) => {
      const c = this.config;
      const nL = c.numLayers;
      rmsnormBackward(p, this.buf('dres'), this.buf('dhn'), this.buf(`res.${nL}`), this.weights.norm, this.buf('rstdF'), s.M, c.hiddenSize, false);
      for (let l = nL - 1; l >= 0; l--) {
        if (this.shape.checkpointing) this.recordLayerForward(p, l, this.buf(`res.${l}`), this.buf('recomputed'), s, dropout);
        this.recordLayerBackward(p, l, this.buf(`res.${l}`), s, l > 0, dropout);
      }
    });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Steps

  private checkBatch(batch: Batch): Shape {
    const { batchSize: B, seqLen: T } = batch;
    const V = this.config.vocabSize;
    if (!Number.isInteger(B) || B <= 0) throw new Error(`batch.batchSize must be a positive integer, got ${B}`);
    if (!Number.isInteger(T) || T <= 0) throw new Error(`batch.seqLen must be a positive integer, got ${T}`);
    if (B * T > this.shape.batch * this.shape.seq || T > this.shape.seq) {
      throw new Error(`webgpu: batch ${B}×${T} is larger than the session was sized for (${this.shape.batch}×${this.shape.seq})`);
    }
    if (batch.inputIds.length !== B * T) throw new Error(`batch.inputIds has ${batch.inputIds.length} ids, expected batchSize ${B} × seqLen ${T}`);
    if (batch.labels.length !== B * T) throw new Error(`batch.labels has ${batch.labels.length} labels, expected batchSize ${B} × seqLen ${T}`);
    for (let i = 0; i < B * T; i++) {
      const id = batch.inputIds[i];
      if (!(id >= 0 && id < V)) throw new Error(`batch.inputIds[${i}] (sequence ${Math.floor(i / T)}, position ${i % T}) = ${id} is outside the vocabulary [0, ${V})`);
      const lab = batch.labels[i];
      if (lab !== IGNORE_INDEX && !(lab >= 0 && lab < V)) throw new Error(`batch.labels[${i}] (sequence ${Math.floor(i / T)}, position ${i % T}) = ${lab} is neither ${IGNORE_INDEX} nor in [0, ${V})`);
    }
    return { B, T, M: B * T };
  }

  /** Uploads ids, shifted targets, active rows and RoPE tables; returns the active row count. */
  private uploadBatch(batch: Batch, s: Shape, gradScale: number): number {
    const { B, T, M } = s;
    upload(this.ctx, this.buf('ids'), batch.inputIds);
    const targets = new Int32Array(M).fill(IGNORE_INDEX);
    for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) targets[b * T + t] = batch.labels[b * T + t + 1];
    const rowIdx = new Int32Array(M).fill(-1);
    let count = 0;
    for (let i = 0; i < M; i++) if (targets[i] !== IGNORE_INDEX) rowIdx[count++] = i;
    upload(this.ctx, this.buf('ce.targets'), targets);
    upload(this.ctx, this.buf('ce.rowIdx'), rowIdx);
    upload(this.ctx, this.buf('ce.gradScale'), [gradScale]);
    this.ensureRope(T);
    return count;
  }

  /** Uploads the RoPE tables' first `rows` positions unless they are there already. */
  private ensureRope(rows: number): void {
    if (this.ropeRows >= rows) return;
    // The cpu backend's own fp32 tables: both backends rotate by the same angles.
    const c = this.config;
    const tables = ropeTables({ headDim: c.headDim, ropeTheta: c.ropeTheta, ropeScaling: c.ropeScaling }, rows, true);
    upload(this.ctx, this.buf('rope.cos'), tables.cos);
    upload(this.ctx, this.buf('rope.sin'), tables.sin);
    this.ropeRows = rows;
  }

  private async sumLosses(s: Shape): Promise<number> {
    const [losses] = await download(this.ctx, [this.buf('ce.losses')]);
    let sum = 0;
    for (let i = 0; i < s.M; i++) sum += losses[i];
    return sum;
  }

  private checkAlive(): void {
    if (this.destroyed) throw new Error('webgpu: the session was destroyed');
    this.ctx.throwIfLost();
  }

  /**
   * Loss and LoRA gradients of one (micro-)batch, as engine/model/llama.ts lossAndGrads: gradients of
   * lossScale · Σ token losses / normalizer, left on the device (readGrads() copies them out).
   */
  async lossAndGrads(batch: Batch, opts: GpuStepOptions): Promise<{ loss: number; tokens: number }> {
    this.checkAlive();
    if (!this.shape.training) throw new Error('webgpu: this session was created with training: false');
    const st = this.requireLora();
    const s = this.checkBatch(batch);
    const lossScale = opts.lossScale ?? 1;
    if (!Number.isFinite(lossScale)) throw new Error(`lossAndGrads: lossScale must be finite, got ${lossScale}`);
    if (opts.normalizer !== undefined && !(opts.normalizer > 0)) throw new Error(`lossAndGrads: normalizer must be > 0, got ${opts.normalizer}`);
    const dropout = opts.training && st.config.dropout > 0;
    if (dropout) {
      if (opts.dropoutRng === undefined) throw new Error('lossAndGrads: dropout is active (training, lora.dropout > 0) but no dropoutRng was given');
      for (let l = 0; l < this.layerSeeds.length; l++) this.layerSeeds[l] = opts.dropoutRng.nextU32();
    }
    let count = 0;
    for (let b = 0; b < s.B; b++) for (let t = 0; t + 1 < s.T; t++) if (batch.labels[b * s.T + t + 1] !== IGNORE_INDEX) count++;
    const normalizer = opts.normalizer ?? count;
    const gradScale = normalizer > 0 ? lossScale / normalizer : 0;
    this.uploadBatch(batch, s, gradScale);
    const chunk = ceChunkRows(this.config, this.shape);
    const fwd = await this.forwardProgram(s, dropout);
    const ce = await this.ceProgram(s, Math.ceil(count / chunk), true);
    const bwd = await this.backwardProgram(s, dropout);
    const progs = [fwd, ce, bwd];
    if (opts.accumulate !== true) progs.unshift(await this.zeroGradsProgram());
    fwd.refreshParams();
    bwd.refreshParams();
    this.runner.submit(progs);
    const sum = await this.sumLosses(s);
    this.ctx.throwIfErrors();
    return { loss: count > 0 ? sum / count : 0, tokens: count };
  }

  /** Forward only, no dropout: mean and summed CE over non-ignored targets (as the cpu evalLoss). */
  async evalLoss(batch: Batch): Promise<{ loss: number; tokens: number; sumLoss: number }> {
    this.checkAlive();
    const s = this.checkBatch(batch);
    const count = this.uploadBatch(batch, s, 0);
    const chunk = ceChunkRows(this.config, this.shape);
    const fwd = await this.forwardProgram(s, false);
    const ce = await this.ceProgram(s, Math.ceil(count / chunk), false);
    this.runner.submit([fwd, ce]);
    const sum = await this.sumLosses(s);
    this.ctx.throwIfErrors();
    return { loss: count > 0 ? sum / count : 0, tokens: count, sumLoss: sum };
  }

  /**
   * Forward only, no dropout: the final-norm hidden states of every position (B·T × hidden, f32), i.e. lm_head's
   * input, recomputed over the whole batch (the reference the KV-cached prefill()/decode() are tested against).
   */
  async finalHidden(batch: Batch): Promise<Float32Array> {
    this.checkAlive();
    const s = this.checkBatch(batch);
    this.uploadBatch(batch, s, 0);
    this.runner.submit([await this.forwardProgram(s, false)]);
    const [hn] = await download(this.ctx, [this.buf('hn')]);
    this.ctx.throwIfErrors();
    return hn.subarray(0, s.M * this.config.hiddenSize);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Generation through the KV cache

  private requireKv(): GpuKvCache {
    if (this.kv === null) throw new Error('webgpu: this session has no KV cache (create it with kvCacheLen for prefill/decode)');
    return this.kv;
  }

  /** Tokens in the KV cache: the position the next decode() writes. */
  get cacheLength(): number {
    return this.requireKv().length;
  }

  /**
   * Tq new tokens (ids already uploaded) at cache position kvPos, which the program reads through thunks so one
   * recording serves every position: their keys/values are appended to the cache, and the last one's final-norm
   * hidden row lands in ce.hChunk[0, H) and its logits in ce.logits[0, V) (lm_head part after part).
   */
  private extendProgram(Tq: number): Promise<Program> {
    return this.program(`extend:${Tq}`, (p) => {
      const c = this.config;
      const H = c.hiddenSize;
      const V = c.vocabSize;
      const nL = c.numLayers;
      const kv = { cache: this.requireKv(), pos: (): number => this.kvPos };
      const s: Shape = { B: 1, T: Tq, M: Tq };
      const res0 = this.buf('res.0');
      const parts = this.weights.embed;
      parts.parts.forEach((t, i) => embeddingForward(p, res0, this.buf('ids'), t, Tq, H, i * parts.vp));
      for (let l = 0; l < nL; l++) this.recordLayerForward(p, l, this.buf(`res.${l}`), this.buf(`res.${l + 1}`), s, false, kv);
      // Only the last row feeds the next token: norm and lm_head run on it alone.
      const last = this.buf('tmp');
      const hRow = this.buf('ce.hChunk');
      copyAt(p, this.buf(`res.${nL}`), (Tq - 1) * H, last, 0, H);
      rmsnormForward(p, hRow, this.buf('rstdF'), last, this.weights.norm, 1, H, c.rmsNormEps);
      const head = this.weights.lmHead;
      const logits = this.buf('ce.logits');
      head.parts.forEach((w, i) => {
        const v0 = i * head.vp;
        const n = i === head.parts.length - 1 ? V - v0 : head.vp;
        matvec(p, { y: view(logits, `logits[${v0}:]`, v0, n), x: hRow, w, N: n, K: H });
      });
    });
  }

  private checkIds(ids: ArrayLike<number>, what: string): void {
    const V = this.config.vocabSize;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new Error(`webgpu ${what}: token ${i} = ${id} is outside the vocabulary [0, ${V})`);
    }
  }

  /** Runs `ids` as the next positions of the cached sequence; reads the step back when `read`. */
  private async extend(ids: Int32Array, read: boolean): Promise<GenerationStep | null> {
    const cache = this.requireKv();
    cache.ensureRoom(ids.length);
    this.ensureRope(cache.capacity);
    upload(this.ctx, this.buf('ids'), ids);
    const prog = await this.extendProgram(ids.length);
    this.kvPos = cache.length;
    prog.refreshParams();
    this.runner.submit([prog]);
    cache.length += ids.length;
    if (!read) {
      this.ctx.throwIfErrors();
      return null;
    }
    const c = this.config;
    const [hidden, logits] = await download(this.ctx, [view(this.buf('ce.hChunk'), 'hidden', 0, c.hiddenSize), view(this.buf('ce.logits'), 'logits', 0, c.vocabSize)]);
    this.ctx.throwIfErrors();
    return { hidden, logits };
  }

  /**
   * Starts a sequence: empties the KV cache and runs the prompt through it (in chunks of the activation rows,
   * maxBatchSize × maxSeqLen, when longer). Returns the last prompt position's hidden row and logits.
   */
  async prefill(ids: ArrayLike<number>): Promise<GenerationStep> {
    this.checkAlive();
    const cache = this.requireKv();
    if (ids.length === 0) throw new Error('webgpu prefill: the prompt is empty (needs at least one token, e.g. bos)');
    this.checkIds(ids, 'prefill');
    if (ids.length > cache.capacity) throw new Error(`webgpu prefill: ${ids.length} prompt tokens exceed the KV cache capacity of ${cache.capacity}`);
    cache.reset();
    const chunk = this.shape.batch * this.shape.seq;
    let out: GenerationStep | null = null;
    for (let i = 0; i < ids.length; i += chunk) {
      const end = Math.min(ids.length, i + chunk);
      out = await this.extend(Int32Array.from({ length: end - i }, (_, k) => ids[i + k]), end === ids.length);
    }
    if (out === null) throw new Error('webgpu prefill: no step was read back');
    return out;
  }

  /** One token at position cacheLength (after prefill): appended to the cache; returns its hidden row and logits. */
  async decode(id: number): Promise<GenerationStep> {
    this.checkAlive();
    const cache = this.requireKv();
    if (cache.length === 0) throw new Error('webgpu decode: the KV cache is empty; call prefill with the prompt first');
    this.checkIds([id], 'decode');
    const out = await this.extend(Int32Array.of(id), true);
    if (out === null) throw new Error('webgpu decode: no step was read back');
    return out;
  }

  private zeroGradsProgram(): Promise<Program> {
    return this.program('zero-grads', (p) => {
      const g = this.requireLora().flat.grads;
      if (g) fill(p, g, g.size, 0);
    });
  }

  async zeroGrads(): Promise<void> {
    this.checkAlive();
    this.runner.submit([await this.zeroGradsProgram()]);
  }

  /**
   * Unscale (+ inf/NaN check), global norm, clip and AdamW, all on the device, then zero the gradients. Skips the
   * update when an inf/NaN was found (GradScaler semantics; the caller updates its scaler with `foundInf`).
   */
  async optimizerStep(o: OptimizerStepOptions): Promise<OptimizerStepResult> {
    this.checkAlive();
    const st = this.requireLora();
    const { grads, m, v } = st.flat;
    if (!grads || !m || !v) throw new Error('webgpu: this session has no optimizer state (training: false)');
    const n = st.flat.n;
    const found = this.buf('opt.found');
    const normsq = this.buf('opt.normsq');
    const inv = o.lossScale !== 1 ? Math.fround(1 / o.lossScale) : 1;
    const check = await this.program(`opt.check:inv=${inv}`, (p) => {
      fill(p, found, 1, 0);
      unscaleGrads(p, grads, found, n, inv);
      gradNormSquared(p, normsq, this.buf('opt.partials'), grads, n);
    });
    this.runner.submit([check]);
    const [f, sq] = await download(this.ctx, [found, normsq]);
    const foundInf = f[0] !== 0;
    const gradNorm = Math.sqrt(sq[0]);
    const zero = await this.zeroGradsProgram();
    if (foundInf) {
      this.runner.submit([zero]);
      return { foundInf, gradNorm, applied: false };
    }
    const coef = o.maxGradNorm > 0 && Number.isFinite(gradNorm) ? Math.min(1, o.maxGradNorm / (gradNorm + 1e-6)) : 1;
    upload(this.ctx, this.buf('opt.hp'), adamwScalars({ lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay, t: o.t, gradMul: coef }));
    const adam = await this.program('opt.adamw', (p) => adamwStep(p, st.flat.params, grads, m, v, this.buf('opt.hp'), n));
    this.runner.submit([adam, zero]);
    await this.ctx.sync();
    return { foundInf, gradNorm, applied: true };
  }

  /** Bytes on the device now and at the peak since creation (or the last resetPeak). */
  memory(): { liveBytes: number; peakBytes: number; describe: string } {
    const a = this.ctx.allocator;
    return { liveBytes: a.liveBytes, peakBytes: a.peakBytes, describe: `${formatGiB(a.liveBytes)} live, ${formatGiB(a.peakBytes)} peak on ${this.ctx.adapterName}` };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const p of this.programs.values()) p.destroy();
    this.programs.clear();
    for (const b of this.owned) this.ctx.allocator.destroy(b);
    this.owned = [];
    if (this.ownsDevice) this.ctx.destroy();
  }
}

/**
 * The webgpu counterpart of engine/model/llama.ts `lossAndGrads` for one call: creates a session sized for this
 * batch, runs it, copies the gradients out and releases the device. (A trainer keeps a WebgpuLlama instead.)
 */
export async function webgpuLossAndGrads(
  model: ModelWeights,
  lora: LoraWeights,
  batch: Batch,
  opts: StepOptions & { precision?: Precision; gpu?: GpuContext },
): Promise<StepResult> {
  const session = await WebgpuLlama.create({ kind: 'host', model }, lora, {
    precision: opts.precision ?? 'fp32',
    checkpointing: opts.checkpointing === true,
    maxBatchSize: batch.batchSize,
    maxSeqLen: batch.seqLen,
    gpu: opts.gpu,
  });
  try {
    const r = await session.lossAndGrads(batch, { training: opts.training, dropoutRng: opts.dropoutRng, lossScale: opts.lossScale, normalizer: opts.normalizer });
    const g = await session.readGrads();
    if (opts.gradsInto) {
      const into = opts.gradsInto;
      forEachPair(g, (t, l, p) => {
        const dst = into.layers[l][t];
        if (!dst) throw new Error(`webgpuLossAndGrads: gradsInto has no layers.${l}.${t}`);
        for (let i = 0; i < p.A.length; i++) dst.A[i] += p.A[i];
        for (let i = 0; i < p.B.length; i++) dst.B[i] += p.B[i];
      });
      return { ...r, grads: into };
    }
    const grads = zerosLike(lora);
    forEachPair(g, (t, l, p) => {
      const dst = grads.layers[l][t] as LoraPair;
      dst.A.set(p.A);
      dst.B.set(p.B);
    });
    return { ...r, grads };
  } finally {
    session.destroy();
  }
}
