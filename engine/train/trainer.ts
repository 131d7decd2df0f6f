/**
 * The training loop: micro-batches → gradients (accumulated, normalised by the step's target tokens) → unscale →
 * clip → AdamW at the scheduled rate → metrics, validation and checkpoints. Everything a step depends on (LoRA,
 * optimizer, scaler, dropout and data RNGs, data position) is in the checkpoint, so a resumed run is bit-identical
 * to one that never stopped.
 */
import { join } from 'node:path';
import type { MetricPoint } from '../../common/protocol.ts';
import type { FloatArray, LoraWeights, ModelWeights, TrainingExample } from '../model/types.ts';
import { evalLoss, lossAndGrads } from '../model/llama.ts';
import { loraParameterCount, newLora, zerosLike } from '../model/lora.ts';
import { Rng } from '../util/rng.ts';
import { AdamW } from './adamw.ts';
import { BatchIterator, countTargetTokens, sequentialBatches } from './batching.ts';
import { clipGradNorm } from './clip.ts';
import { GradScaler } from './grad-scaler.ts';
import { checkpointsDir, listCheckpoints, loadLatestCheckpoint, saveCheckpoint } from './checkpoint.ts';
import type { TrainerState } from './checkpoint.ts';
import { loraTensors } from './lora-params.ts';
import type { TrainerSettings } from './run-config.ts';
import { learningRateAt } from './schedule.ts';
import { DATA_STREAM, DROPOUT_STREAM, INIT_STREAM } from './seed-streams.ts';
import type { StepBackend, StepBackendInit, StepOutcome, StepPlan } from './step-backend.ts';


export interface TrainerOptions {
  model: ModelWeights;
  settings: TrainerSettings;
  train: readonly TrainingExample[];
  validation: readonly TrainingExample[];
  padTokenId: number;
  /** Checkpoints go to runDir/checkpoints; without runDir nothing is written. */
  runDir?: string;
  /** Continue from the newest complete checkpoint in runDir, when there is one. */
  resume?: boolean;
  /** Written into checkpoints' adapter_config.json. */
  baseModelNameOrPath?: string;
  onMetric?: (point: MetricPoint) => void;
  onCheckpoint?: (step: number, path: string) => void;
  onLog?: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** Asked between steps; a non-null answer stops the run (with save: after writing a checkpoint). */
  shouldStop?: () => { save: boolean } | null;
}

export interface TrainResult {
  status: 'done' | 'stopped';
  step: number;
  lora: LoraWeights;
  finalLoss: number | null;
  metrics: MetricPoint[];
  /** Checkpoint written when the run stopped with save. */
  checkpoint: string | null;
}

export class Trainer {
  readonly lora: LoraWeights;
  readonly resumedFromStep: number;
  readonly parameters: { trainable: number; total: number };
  private readonly opts: TrainerOptions;
  private readonly grads: LoraWeights;
  private readonly gradArrays: FloatArray[];
  private readonly optimizer: AdamW;
  private readonly scaler: GradScaler;
  private dropoutRng: Rng;
  private readonly batches: BatchIterator;
  private readonly validationBatches: ReturnType<typeof sequentialBatches>;
  private step: number;
  private readonly metrics: MetricPoint[];
  /** performance.now() of the last checkpoint (or of the start), for checkpoints every M minutes. */
  private lastCheckpointAt = performance.now();
  /** Where the steps run when not on the host CPU (webgpu); see attachBackend. */
  private device: StepBackend | null = null;
  /** The device has stepped since the last pullFromDevice: this.lora and the optimizer are behind it. */
  private hostStale = false;

  constructor(opts: TrainerOptions, totalModelParameters: number) {
    this.opts = opts;
    const s = opts.settings;
    if (opts.train.length === 0) throw new Error('the training split has no examples');
    const resumed = opts.resume && opts.runDir ? loadLatestCheckpoint(opts.runDir, opts.model.config, s.lora, (path, why) => opts.onLog?.('warn', `skipping checkpoint ${path}: ${why}`)) : null;
    this.lora = resumed ? resumed.lora : newLora(opts.model.config, s.lora, new Rng(s.seed + INIT_STREAM), Float32Array);
    // dropout is not part of the tensors' shape: a resumed run uses what it is asked for now
    if (resumed) this.lora.config = { ...this.lora.config, dropout: s.lora.dropout };
    this.grads = zerosLike(this.lora);
    this.gradArrays = loraTensors(this.grads).map((t) => t.data);
    this.optimizer = new AdamW(
      loraTensors(this.lora).map((t) => t.data),
      { beta1: s.beta1, beta2: s.beta2, eps: s.eps, weightDecay: s.weightDecay },
    );
    this.scaler = new GradScaler({ enabled: s.precision === 'fp16', growthInterval: s.lossScaleGrowthInterval });
    const st: TrainerState | null = resumed ? resumed.state : null;
    if (resumed && st) {
      this.optimizer.loadState(resumed.optimizer);
      this.scaler.loadState(st.scaler);
      this.dropoutRng = Rng.fromState(st.dropoutRng);
      this.step = st.step;
      this.metrics = st.metrics;
    } else {
      this.dropoutRng = new Rng(s.seed + DROPOUT_STREAM);
      this.step = 0;
      this.metrics = [];
    }
    this.batches = new BatchIterator(opts.train, { batchSize: s.batchSize, padTokenId: opts.padTokenId, seed: s.seed + DATA_STREAM, position: st?.data });
    this.validationBatches = sequentialBatches(opts.validation, s.batchSize, opts.padTokenId);
    this.resumedFromStep = this.step;
    const trainable = loraParameterCount(this.lora);
    this.parameters = { trainable, total: totalModelParameters + trainable };
  }

  /** Mean loss over every target token of the validation split, or null without one. */
  validationLoss(): number | null {
    if (this.validationBatches.length === 0) return null;
    let sum = 0;
    let tokens = 0;
    for (const b of this.validationBatches) {
      const r = evalLoss(this.opts.model, this.lora, b);
      sum += r.sumLoss;
      tokens += r.tokens;
    }
    return tokens > 0 ? sum / tokens : null;
  }

  /** The backend the steps run on: 'cpu' unless attachBackend moved them. */
  get backend(): StepBackend | null {
    return this.device;
  }

  /**
   * Moves the steps to another device (webgpu). It starts from this trainer's LoRA and optimizer state (fresh or
   * resumed); the trainer keeps data order, dropout RNG, schedule, scaler, metrics and checkpoints.
   */
  async attachBackend(create: (init: StepBackendInit) => Promise<StepBackend>): Promise<void> {
    if (this.device) throw new Error('Trainer: a backend is already attached');
    this.device = await create({ lora: this.lora, optimizer: this.optimizer.state, settings: this.opts.settings });
  }

  /** Copies the device's LoRA and AdamW state back into this.lora / the optimizer (before checkpoints and the end). */
  async pullFromDevice(): Promise<void> {
    if (this.device && this.hostStale) await this.device.pull({ lora: this.lora, optimizer: this.optimizer });
    this.hostStale = false;
  }

  private async validationLossAsync(): Promise<number | null> {
    const dev = this.device;
    if (!dev) return this.validationLoss();
    if (this.validationBatches.length === 0) return null;
    let sum = 0;
    let tokens = 0;
    for (const b of this.validationBatches) {
      const r = await dev.evalLoss(b);
      sum += r.sumLoss;
      tokens += r.tokens;
    }
    return tokens > 0 ? sum / tokens : null;
  }

  private state(): TrainerState {
    return {
      step: this.step,
      scaler: this.scaler.state(),
      dropoutRng: this.dropoutRng.state(),
      data: this.batches.position(),
      metrics: this.metrics,
      settings: this.opts.settings,
    };
  }

  /** Writes a checkpoint of the current step (replacing one of the same step) and prunes old ones. */
  checkpoint(): string | null {
    const { runDir } = this.opts;
    if (!runDir) return null;
    if (this.hostStale) throw new Error('Trainer.checkpoint: the device holds newer weights than the host; await pullFromDevice() first');
    let path: string;
    try {
      path = saveCheckpoint(runDir, {
        lora: this.lora,
        optimizer: this.optimizer.state,
        state: this.state(),
        baseModelNameOrPath: this.opts.baseModelNameOrPath ?? '',
        keep: this.opts.settings.keepCheckpoints,
      });
    } catch (e) {
      throw checkpointWriteError(e, join(checkpointsDir(runDir), `step-${this.step}`), listCheckpoints(runDir)[0]?.path ?? null);
    }
    this.lastCheckpointAt = performance.now();
    this.opts.onCheckpoint?.(this.step, path);
    return path;
  }

  /** One optimizer step on the host CPU; returns its metric point. */
  trainStep(): MetricPoint {
    if (this.device) throw new Error(`Trainer.trainStep runs on the cpu; this trainer is on ${this.device.id}, use trainStepAsync`);
    const plan = this.planStep();
    const point = this.finishStep(plan, this.cpuStep(plan));
    if (this.wantsValidation()) {
      const v = this.validationLoss();
      if (v !== null) point.validationLoss = v;
    }
    this.metrics.push(point);
    return point;
  }

  /** One optimizer step on whichever backend the trainer uses. */
  async trainStepAsync(): Promise<MetricPoint> {
    const dev = this.device;
    if (!dev) return this.trainStep();
    const plan = this.planStep();
    this.hostStale = true;
    const point = this.finishStep(plan, await dev.step(plan, this.dropoutRng));
    if (this.wantsValidation()) {
      const v = await this.validationLossAsync();
      if (v !== null) point.validationLoss = v;
    }
    this.metrics.push(point);
    return point;
  }

  private planStep(): StepPlan & { started: number } {
    const s = this.opts.settings;
    const started = performance.now();
    const micro = Array.from({ length: s.gradAccumulation }, () => this.batches.next());
    const normalizer = micro.reduce((n, b) => n + countTargetTokens(b), 0);
    const lr = learningRateAt({ kind: s.schedule, baseLr: s.learningRate, warmupSteps: s.warmupSteps, totalSteps: s.steps }, this.step);
    return { started, micro, normalizer, lr, lossScale: this.scaler.lossScale() };
  }

  private cpuStep(plan: StepPlan): StepOutcome {
    const s = this.opts.settings;
    const { micro, normalizer, lossScale } = plan;
    for (const g of this.gradArrays) g.fill(0);
    let lossSum = 0;
    if (normalizer > 0) {
      for (const batch of micro) {
        const r = lossAndGrads(this.opts.model, this.lora, batch, {
          training: true,
          dropoutRng: this.dropoutRng,
          checkpointing: s.gradientCheckpointing,
          lossScale,
          normalizer,
          gradsInto: this.grads,
        });
        lossSum += r.loss * r.tokens;
      }
    }
    const foundInf = this.scaler.unscale(this.gradArrays);
    let gradNorm = Number.NaN;
    let skipped = foundInf || normalizer === 0;
    if (!skipped) {
      gradNorm = clipGradNorm(this.gradArrays, s.maxGradNorm);
      skipped = !Number.isFinite(gradNorm);
    }
    if (!skipped) this.optimizer.step(this.gradArrays, plan.lr);
    return { lossSum, foundInf, gradNorm, skipped };
  }

  /** Scaler update, step count and the metric point (validation is added by the caller). */
  private finishStep(plan: StepPlan & { started: number }, out: StepOutcome): MetricPoint {
    const { normalizer, lr, lossScale } = plan;
    const { foundInf, gradNorm, skipped } = out;
    if (normalizer === 0) this.opts.onLog?.('warn', `step ${this.step + 1}: no trained tokens in the batch; the step was skipped`);
    else if (skipped && !this.scaler.enabled) this.opts.onLog?.('warn', `step ${this.step + 1}: gradients were not finite; the step was skipped`);
    this.scaler.update(foundInf);
    this.step++;
    const ms = performance.now() - plan.started;
    const prevElapsed = this.metrics.length ? this.metrics[this.metrics.length - 1].elapsedMs : 0;
    const point: MetricPoint = {
      step: this.step,
      loss: normalizer > 0 ? out.lossSum / normalizer : Number.NaN,
      learningRate: lr,
      tokens: normalizer,
      tokensPerSecond: ms > 0 ? (normalizer * 1000) / ms : 0,
      elapsedMs: prevElapsed + ms,
      // JSON has no NaN/inf: a skipped step reports 0 and says it was skipped
      gradNorm: Number.isFinite(gradNorm) ? gradNorm : 0,
    };
    if (this.scaler.enabled) point.lossScale = lossScale;
    if (skipped) point.skipped = true;
    return point;
  }

  private wantsValidation(): boolean {
    const s = this.opts.settings;
    return (s.evalEverySteps > 0 && this.step % s.evalEverySteps === 0) || this.step === s.steps;
  }

  /** Runs to settings.steps (or until shouldStop says so). Yields to the event loop between steps. */
  async run(): Promise<TrainResult> {
    const s = this.opts.settings;
    while (this.step < s.steps) {
      const stop = this.opts.shouldStop?.();
      if (stop) {
        await this.pullFromDevice();
        const checkpoint = stop.save && this.step > 0 ? this.checkpoint() : null;
        return this.result('stopped', checkpoint);
      }
      const point = await this.trainStepAsync();
      this.opts.onMetric?.(point);
      const byMinutes = s.checkpointEveryMinutes > 0 && performance.now() - this.lastCheckpointAt >= s.checkpointEveryMinutes * 60_000;
      if (((s.checkpointEverySteps > 0 && this.step % s.checkpointEverySteps === 0) || byMinutes) && this.step < s.steps) {
        await this.pullFromDevice();
        this.checkpoint();
      }
      await new Promise<void>((r) => setImmediate(r));
    }
    await this.pullFromDevice();
    return this.result('done', null);
  }

  private result(status: TrainResult['status'], checkpoint: string | null): TrainResult {
    const last = this.metrics.length ? this.metrics[this.metrics.length - 1] : null;
    return { status, step: this.step, lora: this.lora, finalLoss: last && Number.isFinite(last.loss) ? last.loss : null, metrics: this.metrics, checkpoint };
  }
}

const WRITE_ERRORS: Record<string, string> = {
  ENOSPC: 'the disk is full (ENOSPC: no space left on device)',
  EDQUOT: 'the disk quota is used up (EDQUOT)',
  EACCES: 'permission denied (EACCES)',
  EPERM: 'the operation is not permitted (EPERM)',
  EROFS: 'the file system is read-only (EROFS)',
  ENOENT: 'the folder disappeared (ENOENT)',
  EIO: 'an input/output error (EIO)',
};

/** A failed checkpoint write, saying where, why, and that the previous checkpoint is untouched (writes are atomic). */
function checkpointWriteError(e: unknown, path: string, previous: string | null): Error {
  const code = (e as { code?: unknown }).code;
  const why = typeof code === 'string' && WRITE_ERRORS[code] ? WRITE_ERRORS[code] : e instanceof Error ? e.message : String(e);
  const kept = previous ? `the previous checkpoint ${previous} is intact` : 'there is no earlier checkpoint';
  return Object.assign(new Error(`cannot write the checkpoint ${path}: ${why}; ${kept}`, { cause: e }), { file: path });
}
