/**
 * What the Trainer asks of a compute device other than the host CPU (the webgpu backend): run one optimizer step
 * of micro-batches, evaluate a batch, and hand the LoRA weights and AdamW state back for checkpoints and the final
 * adapter. The Trainer keeps everything else (data order, dropout RNG, learning-rate schedule, loss scaler, metrics,
 * checkpoints), so both backends share one loop and one checkpoint format.
 */
import type { Batch, LoraWeights } from '../model/types.ts';
import type { Rng } from '../util/rng.ts';
import type { AdamW, AdamWState } from './adamw.ts';
import type { TrainerSettings } from './run-config.ts';

/** One optimizer step as the Trainer planned it. */
export interface StepPlan {
  micro: Batch[];
  /** Target tokens of all micro-batches (the loss is their mean); 0: nothing to train on, the step is skipped. */
  normalizer: number;
  lr: number;
  /** Factor the loss is multiplied by before backward (1 unless fp16 loss scaling). */
  lossScale: number;
}

export interface StepOutcome {
  /** Σ token losses of the step (the mean is lossSum / normalizer). */
  lossSum: number;
  /** Non-finite gradients after unscaling (the scaler backs off). */
  foundInf: boolean;
  /** Global norm after unscaling, before clipping; NaN when not measured. */
  gradNorm: number;
  /** The optimizer did not update the weights. */
  skipped: boolean;
}

export interface StepBackend {
  readonly id: 'cpu' | 'webgpu';
  /** The device's name (the WebGPU adapter). */
  readonly deviceName: string;
  step(plan: StepPlan, dropoutRng: Rng): Promise<StepOutcome>;
  evalLoss(batch: Batch): Promise<{ sumLoss: number; tokens: number }>;
  /** Copies the device's LoRA weights into `lora` (in place) and its AdamW state into `optimizer`. */
  pull(into: { lora: LoraWeights; optimizer: AdamW }): Promise<void>;
  /** Device memory now and at the peak of the run. */
  memory(): { liveBytes: number; peakBytes: number; describe: string };
  destroy(): void;
}

/** What a backend starts from: the trainer's (fresh or resumed) LoRA, optimizer state and settings. */
export interface StepBackendInit {
  lora: LoraWeights;
  optimizer: AdamWState;
  settings: TrainerSettings;
}
