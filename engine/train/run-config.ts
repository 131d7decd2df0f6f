/**
 * RunConfig (common/protocol.ts, what the user chose) → the settings the trainer runs with.
 */
import type { RunConfig } from '../../common/protocol.ts';
import type { LoraConfig } from '../model/types.ts';
import type { ScheduleKind } from './schedule.ts';
import { ADAMW_DEFAULTS } from './adamw.ts';

export interface TrainerSettings {
  lora: LoraConfig;
  learningRate: number;
  steps: number;
  batchSize: number;
  gradAccumulation: number;
  maxSeqLen: number;
  warmupSteps: number;
  schedule: ScheduleKind;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** ≤ 0: no clipping (the norm is still measured). */
  maxGradNorm: number;
  seed: number;
  gradientCheckpointing: boolean;
  precision: 'fp32' | 'fp16';
  /** fp16: clean steps before the loss scale doubles (PyTorch's GradScaler growth_interval). */
  lossScaleGrowthInterval: number;
  /** 0: only when stopped with save. */
  checkpointEverySteps: number;
  /** Also checkpoint when this many minutes passed since the last checkpoint (or the start); 0: off. */
  checkpointEveryMinutes: number;
  /** Checkpoints kept in runDir/checkpoints (the newest ones). */
  keepCheckpoints: number;
  /** 0: validation loss only after the last step (when there is a validation split). */
  evalEverySteps: number;
}

export function trainerSettings(config: RunConfig): TrainerSettings {
  const t = config.train;
  return {
    lora: { r: config.lora.r, alpha: config.lora.alpha, dropout: config.lora.dropout, targets: [...config.lora.targets], rslora: config.lora.rslora },
    learningRate: t.learningRate,
    steps: t.steps,
    batchSize: t.batchSize,
    gradAccumulation: t.gradAccumulation,
    maxSeqLen: t.maxSeqLen,
    warmupSteps: t.warmupSteps,
    schedule: t.schedule,
    weightDecay: t.weightDecay,
    beta1: ADAMW_DEFAULTS.beta1,
    beta2: ADAMW_DEFAULTS.beta2,
    eps: ADAMW_DEFAULTS.eps,
    maxGradNorm: t.maxGradNorm,
    seed: t.seed,
    gradientCheckpointing: t.gradientCheckpointing,
    precision: t.precision,
    lossScaleGrowthInterval: 2000,
    checkpointEverySteps: t.checkpointEverySteps,
    checkpointEveryMinutes: t.checkpointEveryMinutes ?? 0,
    keepCheckpoints: 2,
    evalEverySteps: t.evalEverySteps,
  };
}
