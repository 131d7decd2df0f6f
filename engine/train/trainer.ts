/**
 * The training loop: micro-batches → gradients (accumulated, normalised by the step's target tokens) → unscale →
 * clip → AdamW at the scheduled rate → metrics, validation and checkpoints. Everything a step depends on (LoRA,
 * optimizer, scaler, dropout and data RNGs, data position) is in the checkpoint, so a resumed run is bit-identical
 * to one that never stopped. The steps themselves run on a StepBackend: the host CPU (cpu-trainer-backend.ts) unless
 * attachBackend moves them to a GPU (webgpu-trainer-backend.ts); both go through the same loop below.
 */
import { join } from 'node:path';
import type { MetricPoint } from '../../common/protocol.ts';
import type { ModelOps } from '../model/ops.ts';
import type { LoraWeights, ModelWeights, TrainingExample } from '../model/types.ts';
import { loraParameterCount, newLora } from '../model/lora.ts';
import { Rng } from '../util/rng.ts';
import { AdamW } from './adamw.ts';
import { BatchIterator, countTargetTokens, sequentialBatches } from './batching.ts';
import { CpuStepBackend } from './cpu-trainer-backend.ts';
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
  /** The cpu kernels (default: the cpu backend's choice, native when built). */
  cpuOps?: ModelOps;
  /**
   * Awaited at every step boundary of run(): before the first step (at the start or resumed step) and after each
   * step, the last included (evaluation prompts sample the LoRA there; pullFromDevice() brings it to the host).
   */
  onStepBoundary?: (step: number) => Promise<void> | void;
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
  private readonly optimizer: AdamW;
  private readonly scaler: GradScaler;
  private dropoutRng: Rng;
  private readonly batches: BatchIterator;
  private readonly validationBatches: ReturnType<typeof sequentialBatches>;
  private step: number;
  private readonly metrics: MetricPoint[];
  /** performance.now() of the last checkpoint (or of the start), for checkpoints every M minutes. */
  private lastCheckpointAt = performance.now();
  /** Where the steps run: the host CPU unless attachBackend moved them (webgpu). */
  private device: StepBackend;
  /** The device has stepped since the last pullFromDevice: this.lora and the optimizer may be behind it. */
  private hostStale = false;

  constructor(opts: TrainerOptions, totalModelParameters: number) {
    this.opts = opts;
    const s = opts.settings;
    if (opts.train.length === 0) throw new Error('the training split has no examples');
    const resumed = opts.resume && opts.runDir ? loadLatestCheckpoint(opts.runDir, opts.model.config, s.lora, (path, why) => opts.onLog?.('warn', `skipping checkpoint ${path}: ${why}`)) : null;
    this.lora = resumed ? resumed.lora : newLora(opts.model.config, s.lora, new Rng(s.seed + INIT_STREAM), Float32Array);
    // dropout is not part of the tensors' shape: a resumed run uses what it is asked for now
    if (resumed) this.lora.config = { ...this.lora.config, dropout: s.lora.dropout };
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
    this.device = new CpuStepBackend(opts.model, this.lora, this.optimizer, s, opts.cpuOps);
  }

  /** The backend the steps run on: the cpu unless attachBackend moved them. */
  get backend(): StepBackend {
    return this.device;
  }

  /**
   * Moves the steps to another device (webgpu). It starts from this trainer's LoRA and optimizer state (fresh or
   * resumed); the trainer keeps data order, dropout RNG, schedule, scaler, metrics and checkpoints.
   */
  async attachBackend(create: (init: StepBackendInit) => Promise<StepBackend>): Promise<void> {
    if (this.device.id !== 'cpu') throw new Error('Trainer: a backend is already attached');
    if (this.step > this.resumedFromStep) throw new Error('Trainer: attach the backend before the first step');
    const cpu = this.device;
    this.device = await create({ lora: this.lora, optimizer: this.optimizer.state, settings: this.opts.settings });
    cpu.destroy();
  }

  /** Copies the device's LoRA and AdamW state back into this.lora / the optimizer (before checkpoints and the end). */
  async pullFromDevice(): Promise<void> {
    if (this.hostStale) await this.device.pull({ lora: this.lora, optimizer: this.optimizer });
    this.hostStale = false;
  }

  /** Mean loss over every target token of the validation split, or null without one. */
  async validationLoss(): Promise<number | null> {
    const dev = this.device;
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

  /** One optimizer step on the trainer's backend; returns its metric point. */
  async trainStep(): Promise<MetricPoint> {
    const plan = this.planStep();
    this.hostStale = true;
    const point = this.finishStep(plan, await this.device.step(plan, this.dropoutRng));
    if (this.wantsValidation()) {
      const v = await this.validationLoss();
      if (v !== null) point.validationLoss = v;
    }
    // Measured after the validation pass, so a step's figure includes what evaluation made the process hold.
    point.rssBytes = process.memoryUsage.rss();
    if (this.device.id === 'webgpu') point.deviceBytes = this.device.memory().liveBytes;
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
    await this.opts.onStepBoundary?.(this.step);
    while (this.step < s.steps) {
      const stop = this.opts.shouldStop?.();
      if (stop) {
        await this.pullFromDevice();
        const checkpoint = stop.save && this.step > 0 ? this.checkpoint() : null;
        return this.result('stopped', checkpoint);
      }
      const point = await this.trainStep();
      this.opts.onMetric?.(point);
      await this.opts.onStepBoundary?.(this.step);
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
