/**
 * The backend part of a training run (run-training.ts): resolve RunConfig.backend before anything is loaded, say
 * which cpu kernels run (native, or "cpu (portable, slow)" where the addon is not built), move the Trainer onto the
 * GPU when webgpu was chosen (the session is sized for the data and refuses to start when it cannot fit), and report
 * and release the device at the end, whatever the outcome.
 */
import type { RunConfig } from '../../common/protocol.ts';
import { cpuBackendInfo } from '../backend/cpu/cpu-ops.ts';
import { formatGiB, GpuDeviceLostError } from '../backend/webgpu/device.ts';
import type { ModelWeights, TrainingExample } from '../model/types.ts';
import { selectBackend, type ResolvedBackend } from './backend-select.ts';
import type { Trainer } from './trainer.ts';
import { longestExample, webgpuBackend } from './webgpu-trainer-backend.ts';

type Log = (level: 'info' | 'warn' | 'error', message: string) => void;

export async function chooseBackend(config: RunConfig, log: Log): Promise<ResolvedBackend> {
  const chosen = await selectBackend(config.backend);
  log('info', chosen.reason);
  // The thread count and which kernels run (main's separate thread line folded in here: one line, not two).
  if (chosen.backend === 'cpu') {
    const cpu = cpuBackendInfo();
    const on = `cpu backend on ${cpu.threads} thread${cpu.threads === 1 ? '' : 's'} (Settings → CPU, or LORA_STUDIO_CPU_THREADS)`;
    if (cpu.native) log('info', `${on}: native ${cpu.isa} kernels`);
    else log('warn', `${on}: ${cpu.label}, because ${cpu.reason}`);
  }
  if (chosen.backend === 'webgpu' && config.train.precision === 'fp16') log('info', 'fp16 mixed precision: dynamic loss scaling (scale and skipped steps are reported per step)');
  return chosen;
}

/** On webgpu: creates the device session from the trainer's (fresh or resumed) state. */
export async function attachBackend(
  trainer: Trainer,
  chosen: ResolvedBackend,
  model: ModelWeights,
  padTokenId: number,
  data: { train: readonly TrainingExample[]; validation: readonly TrainingExample[] },
  log: Log,
): Promise<void> {
  if (chosen.backend !== 'webgpu') return;
  await trainer.attachBackend(webgpuBackend(model, padTokenId, { maxSeqLen: longestExample(data.train, data.validation) }));
  const dev = trainer.backend;
  if (dev) log('info', `webgpu session on ${dev.deviceName}: ${formatGiB(dev.memory().liveBytes)} allocated`);
}

/** Logs the peak device memory, releases the device; returns the peak for the 'done' event (GPU only). */
export function releaseBackend(trainer: Trainer, log: Log): { peakGpuBytes?: number } {
  const dev = trainer.backend;
  if (dev.id !== 'webgpu') {
    dev.destroy();
    return {};
  }
  const { peakBytes, describe } = dev.memory();
  log('info', `GPU memory: ${describe}`);
  dev.destroy();
  return { peakGpuBytes: peakBytes };
}

/** A lost device gets a message that says what to do next. */
export function explainDeviceLoss(e: unknown): unknown {
  if (e instanceof GpuDeviceLostError) return new Error(`${e.message}. The run stopped; its last checkpoint (if any) can be resumed, on webgpu or cpu`, { cause: e });
  return e;
}
