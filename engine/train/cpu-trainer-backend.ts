/**
 * The Trainer's steps on the host CPU, beside webgpu-trainer-backend.ts: micro-batches through the cpu backend's
 * kernels (native when built, else the portable TypeScript ops: engine/backend/cpu/cpu-ops.ts) with gradients
 * accumulated into one set of arrays, then unscale + inf/NaN check, global norm, clip and AdamW. It works in place on
 * the trainer's own LoRA weights and optimizer, so pull() has nothing to copy. Activations live in one Workspace and
 * are reused from step to step.
 */
import { cpuOps } from '../backend/cpu/cpu-ops.ts';
import { nativeStatus } from '../backend/cpu/native.ts';
import { evalLoss, lossAndGrads, Workspace } from '../model/llama.ts';
import type { ModelOps } from '../model/ops.ts';
import { zerosLike } from '../model/lora.ts';
import type { Batch, FloatArray, LoraWeights, ModelWeights } from '../model/types.ts';
import type { Rng } from '../util/rng.ts';
import { adamwUpdate, type AdamW, type AdamWKernel } from './adamw.ts';
import { clipGradNorm } from './clip.ts';
import { unscaleGrads } from './grad-scaler.ts';
import { loraTensors } from './lora-params.ts';
import type { TrainerSettings } from './run-config.ts';
import type { StepBackend, StepOutcome, StepPlan } from './step-backend.ts';

/** The native AdamW update when the kernels are built and the tensor is f32 (bit-identical to adamwUpdate). */
function adamwKernel(): AdamWKernel {
  const n = nativeStatus().native;
  if (n === null) return adamwUpdate;
  return (p, g, m, v, ...rest) => {
    if (p instanceof Float32Array && g instanceof Float32Array) n.adamw(p, g, m, v, ...rest);
    else adamwUpdate(p, g, m, v, ...rest);
  };
}

export class CpuStepBackend implements StepBackend {
  readonly id = 'cpu' as const;
  readonly ops: ModelOps;
  private readonly workspace = new Workspace();
  private readonly grads: LoraWeights;
  private readonly gradArrays: FloatArray[];
  private readonly adamw: AdamWKernel;
  private peak = 0;

  /** Steps `lora` and `optimizer` (the trainer's own) in place. `ops`: the kernels (default: the cpu backend's). */
  constructor(
    private readonly model: ModelWeights,
    private readonly lora: LoraWeights,
    private readonly optimizer: AdamW,
    private readonly settings: TrainerSettings,
    ops?: ModelOps,
  ) {
    this.ops = ops ?? cpuOps(model);
    this.grads = zerosLike(lora);
    this.gradArrays = loraTensors(this.grads).map((t) => t.data);
    this.adamw = adamwKernel();
  }

  get deviceName(): string {
    return this.ops.name;
  }

  async step(plan: StepPlan, dropoutRng: Rng): Promise<StepOutcome> {
    const s = this.settings;
    const { micro, normalizer, lossScale } = plan;
    for (const g of this.gradArrays) g.fill(0);
    let lossSum = 0;
    if (normalizer > 0) {
      for (const batch of micro) {
        const r = lossAndGrads(this.model, this.lora, batch, {
          training: true,
          dropoutRng,
          checkpointing: s.gradientCheckpointing,
          lossScale,
          normalizer,
          gradsInto: this.grads,
          ops: this.ops,
          workspace: this.workspace,
        });
        lossSum += r.loss * r.tokens;
      }
    }
    this.peak = Math.max(this.peak, this.workspace.size());
    const foundInf = unscaleGrads(this.gradArrays, lossScale);
    let gradNorm = Number.NaN;
    let skipped = foundInf || normalizer === 0;
    if (!skipped) {
      gradNorm = clipGradNorm(this.gradArrays, s.maxGradNorm);
      skipped = !Number.isFinite(gradNorm);
    }
    if (!skipped) this.optimizer.step(this.gradArrays, plan.lr, this.adamw);
    return { lossSum, foundInf, gradNorm, skipped };
  }

  async evalLoss(batch: Batch): Promise<{ sumLoss: number; tokens: number }> {
    const r = evalLoss(this.model, this.lora, batch, { ops: this.ops, workspace: this.workspace });
    return { sumLoss: r.sumLoss, tokens: r.tokens };
  }

  /** The steps ran on the trainer's own arrays: nothing to copy. */
  async pull(into: { lora: LoraWeights; optimizer: AdamW }): Promise<void> {
    if (into.lora !== this.lora || into.optimizer !== this.optimizer) throw new Error('cpu backend: pull() into another trainer than the one it steps');
  }

  /** The activations kept between steps (weights are the model's). */
  memory(): { liveBytes: number; peakBytes: number; describe: string } {
    const live = this.workspace.size();
    return { liveBytes: live, peakBytes: Math.max(this.peak, live), describe: `${(live / 2 ** 20).toFixed(1)} MiB of activations kept between steps` };
  }

  destroy(): void {}
}
