/**
 * The Trainer's steps on the GPU: a WebgpuLlama session holds the frozen weights, the LoRA weights, their gradients
 * and the AdamW moments; each step runs the micro-batches (gradients accumulated on the device), then unscale +
 * inf/NaN check, global norm, clip and AdamW on the device. The Trainer keeps the loss scaler, the data order, the
 * dropout RNG and the schedule, so checkpoints are the cpu backend's format: pull() copies LoRA and AdamW m/v/t back.
 *
 * Batches are right-padded before they reach the device — rows to the session's batch size, positions up to a
 * multiple of SEQ_BUCKET — so only a handful of shapes ever get their programs compiled. Padding adds positions
 * with label −100 after every real one, and attention is causal, so losses and gradients do not change.
 */
import type { AcquireOptions, GpuContext } from '../backend/webgpu/device.ts';
import { WebgpuLlama } from '../backend/webgpu/llama-step.ts';
import { forEachPair, zerosLike } from '../model/lora.ts';
import { IGNORE_INDEX, type Batch, type LoraWeights, type ModelWeights, type TrainingExample } from '../model/types.ts';
import type { Rng } from '../util/rng.ts';
import type { AdamW } from './adamw.ts';
import { loraTensors } from './lora-params.ts';
import type { TrainerSettings } from './run-config.ts';
import type { StepBackend, StepBackendInit, StepOutcome, StepPlan } from './step-backend.ts';

/** Sequence lengths are rounded up to a multiple of this (capped at the session's length). */
export const SEQ_BUCKET = 64;

export interface WebgpuBackendOptions {
  /** Sequences per micro-batch the session is sized for (default: settings.batchSize). */
  maxBatchSize?: number;
  /** Longest sequence the session is sized for. */
  maxSeqLen: number;
  /** Run on this device (the backend then leaves it alive on destroy). */
  gpu?: GpuContext;
  acquire?: AcquireOptions;
}

/** Longest example of the splits: the sequence length a session needs for this data. */
export function longestExample(...splits: readonly (readonly TrainingExample[])[]): number {
  let n = 1;
  for (const split of splits) for (const e of split) if (e.inputIds.length > n) n = e.inputIds.length;
  return n;
}

/** `batch` right-padded to `rows` × `seqLen` (pad id in, −100 out); the same batch when it already has that shape. */
export function padBatchTo(batch: Batch, rows: number, seqLen: number, padTokenId: number): Batch {
  const { batchSize: B, seqLen: T } = batch;
  if (B === rows && T === seqLen) return batch;
  if (B > rows || T > seqLen) throw new Error(`webgpu: batch ${B}×${T} does not fit the session's ${rows}×${seqLen}`);
  const inputIds = new Int32Array(rows * seqLen).fill(padTokenId);
  const labels = new Int32Array(rows * seqLen).fill(IGNORE_INDEX);
  for (let b = 0; b < B; b++) {
    inputIds.set(batch.inputIds.subarray(b * T, (b + 1) * T), b * seqLen);
    labels.set(batch.labels.subarray(b * T, (b + 1) * T), b * seqLen);
  }
  return { batchSize: rows, seqLen, inputIds, labels };
}

export class WebgpuStepBackend implements StepBackend {
  readonly id = 'webgpu' as const;
  /** AdamW steps applied so far (the trainer's optimizer.state.t follows it at every pull). */
  private t: number;

  private constructor(
    readonly session: WebgpuLlama,
    private readonly settings: TrainerSettings,
    private readonly padTokenId: number,
    t: number,
  ) {
    this.t = t;
  }

  get deviceName(): string {
    return this.session.ctx.adapterName;
  }

  /**
   * Sizes and creates the session (refusing with "needs X GiB, adapter allows Y" before allocating when it cannot
   * fit), uploads the LoRA weights and, on resume, the AdamW moments.
   */
  static async create(model: ModelWeights, init: StepBackendInit, padTokenId: number, opts: WebgpuBackendOptions): Promise<WebgpuStepBackend> {
    const s = init.settings;
    const session = await WebgpuLlama.create({ kind: 'host', model }, init.lora, {
      precision: s.precision,
      checkpointing: s.gradientCheckpointing,
      maxBatchSize: opts.maxBatchSize ?? s.batchSize,
      maxSeqLen: opts.maxSeqLen,
      training: true,
      ...(opts.gpu ? { gpu: opts.gpu } : {}),
      ...(opts.acquire ? { acquire: opts.acquire } : {}),
    });
    try {
      if (init.optimizer.t > 0) {
        const m = zerosLike(init.lora);
        const v = zerosLike(init.lora);
        const mt = loraTensors(m);
        const vt = loraTensors(v);
        if (init.optimizer.m.length !== mt.length) throw new Error(`webgpu: optimizer state has ${init.optimizer.m.length} moments for ${mt.length} LoRA tensors`);
        mt.forEach((t, i) => t.data.set(init.optimizer.m[i]));
        vt.forEach((t, i) => t.data.set(init.optimizer.v[i]));
        session.writeOptimizerState(m, v);
      }
      await session.ctx.sync();
    } catch (e) {
      session.destroy();
      throw e;
    }
    return new WebgpuStepBackend(session, s, padTokenId, init.optimizer.t);
  }

  private fit(batch: Batch): Batch {
    const { batch: rows, seq } = this.session.shape;
    const T = Math.min(seq, Math.ceil(batch.seqLen / SEQ_BUCKET) * SEQ_BUCKET);
    return padBatchTo(batch, rows, T, this.padTokenId);
  }

  async step(plan: StepPlan, dropoutRng: Rng): Promise<StepOutcome> {
    const s = this.settings;
    // Nothing to learn from: the cpu trainer's skipped step (no update, the scaler counts a clean step).
    if (plan.normalizer === 0) return { lossSum: 0, foundInf: false, gradNorm: Number.NaN, skipped: true };
    let lossSum = 0;
    for (const [i, batch] of plan.micro.entries()) {
      const r = await this.session.lossAndGrads(this.fit(batch), { training: true, dropoutRng, lossScale: plan.lossScale, normalizer: plan.normalizer, accumulate: i > 0 });
      lossSum += r.loss * r.tokens;
    }
    const o = await this.session.optimizerStep({
      lr: plan.lr,
      t: this.t + 1,
      beta1: s.beta1,
      beta2: s.beta2,
      eps: s.eps,
      weightDecay: s.weightDecay,
      maxGradNorm: s.maxGradNorm,
      lossScale: plan.lossScale,
    });
    if (o.applied) this.t++;
    return { lossSum, foundInf: o.foundInf, gradNorm: o.foundInf ? Number.NaN : o.gradNorm, skipped: !o.applied };
  }

  async evalLoss(batch: Batch): Promise<{ sumLoss: number; tokens: number }> {
    const r = await this.session.evalLoss(this.fit(batch));
    return { sumLoss: r.sumLoss, tokens: r.tokens };
  }

  async pull(into: { lora: LoraWeights; optimizer: AdamW }): Promise<void> {
    const lora = await this.session.readLora();
    forEachPair(lora, (target, l, pair) => {
      const dst = into.lora.layers[l][target];
      if (!dst) throw new Error(`webgpu: the trainer's adapter has no layers.${l}.${target}`);
      dst.A.set(pair.A);
      dst.B.set(pair.B);
    });
    const { m, v } = await this.session.readOptimizerState();
    into.optimizer.loadState({ t: this.t, m: loraTensors(m).map((t) => Float32Array.from(t.data)), v: loraTensors(v).map((t) => Float32Array.from(t.data)) });
  }

  memory(): { liveBytes: number; peakBytes: number; describe: string } {
    return this.session.memory();
  }

  destroy(): void {
    this.session.destroy();
  }
}

/** The factory Trainer.attachBackend takes, sized for the given data. */
export function webgpuBackend(model: ModelWeights, padTokenId: number, opts: WebgpuBackendOptions): (init: StepBackendInit) => Promise<StepBackend> {
  return (init) => WebgpuStepBackend.create(model, init, padTokenId, opts);
}
