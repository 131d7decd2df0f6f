/**
 * The webgpu training benchmark: a model of a real shape with random weights generated on the device (a 7B shape
 * never passes through host memory), LoRA r=8 on all seven projections (as the cpu case), `steps` timed training
 * steps (forward, chunked CE, backward, unscale/clip/AdamW) after one untimed warm-up step that compiles the kernels.
 * FLOPs and MFU are flops.ts's (the count peft_reference.py mirrors): the peak is `peakTflops`, else
 * LORA_STUDIO_PEAK_TFLOPS, else flops.ts's table by adapter name; mfu is null when none is known.
 */
import { acquireGpu, type GpuContext } from '../engine/backend/webgpu/device.ts';
import { estimateMemory } from '../engine/backend/webgpu/llama-memory.ts';
import { WebgpuLlama } from '../engine/backend/webgpu/llama-step.ts';
import { parseHfConfig } from '../engine/io/hf-config.ts';
import { newLora } from '../engine/model/lora.ts';
import type { Batch, LoraConfig, ModelConfig } from '../engine/model/types.ts';
import { ADAMW_DEFAULTS } from '../engine/train/adamw.ts';
import { GradScaler } from '../engine/train/grad-scaler.ts';
import type { PackedFormat } from '../engine/quant/packed-weight.ts';
import { Rng } from '../engine/util/rng.ts';
import { mfu, peakTflopsFor, trainingFlops } from './flops.ts';
import { SHAPES, type ShapeName } from './shapes.ts';
import { LORA_TARGETS } from '../common/lora-targets.ts';

export interface WebgpuBenchOptions {
  shape: ShapeName;
  seq: number;
  batch?: number;
  steps?: number;
  precision: 'fp32' | 'fp16';
  checkpointing: boolean;
  /** Ignored: weights are generated on the device from the shape (accepted so the harness can pass it). */
  modelDir?: string;
  /** Dense peak of the adapter in TFLOPS for the chosen precision (overrides the table). */
  peakTflops?: number;
  gpu?: GpuContext;
  /** QLoRA: the seven linear weights stay packed in this format on the device (embedding, norms, lm_head in 16/32 bits). */
  base?: PackedFormat;
  /** Only create the session and report its memory (no steps): a 7B shape's footprint on an adapter too slow to train it. */
  allocOnly?: boolean;
}

export interface WebgpuBenchResult {
  adapter: string;
  params: number;
  batch: number;
  seq: number;
  precision: 'fp32' | 'fp16';
  checkpointing: boolean;
  steps: number;
  stepMs: number;
  tokensPerSecond: number;
  peakGpuBytes: number;
  peakGpuGiB: number;
  estimatedGpuBytes: number;
  flopsPerStep: number;
  /** TFLOP/s the MFU is relative to; null when unknown. */
  peakTflops: number | null;
  mfu: number | null;
  loss: number;
  skippedSteps: number;
  /** Packed format of the linear weights, or the activation dtype when unpacked. */
  base: string;
}

function parameterCount(cfg: ModelConfig): number {
  const H = cfg.hiddenSize;
  const qDim = cfg.numHeads * cfg.headDim;
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const perLayer = H * qDim + 2 * H * kvDim + qDim * H + 3 * H * cfg.intermediateSize + 2 * H;
  return cfg.numLayers * perLayer + cfg.vocabSize * H * (cfg.tieWordEmbeddings ? 1 : 2) + H;
}

export async function benchWebgpu(o: WebgpuBenchOptions): Promise<WebgpuBenchResult> {
  const spec = SHAPES[o.shape];
  if (!spec) throw new Error(`bench: unknown shape ${o.shape} (expected one of ${Object.keys(SHAPES).join(', ')})`);
  const cfg = parseHfConfig(spec.hf, `bench shape ${o.shape}`);
  const B = o.batch ?? 1;
  const T = o.seq;
  const steps = Math.max(1, o.steps ?? 3);
  const loraCfg: LoraConfig = { r: 8, alpha: 16, dropout: 0, targets: [...LORA_TARGETS], rslora: false };
  const lora = newLora(cfg, loraCfg, new Rng(1), Float32Array);
  const gpu = o.gpu ?? (await acquireGpu());
  const packing = o.base ? (): PackedFormat => o.base as PackedFormat : null;
  const shape = { precision: o.precision, checkpointing: o.checkpointing, training: true, batch: B, seq: T, ceChunkBytes: 64 * 1024 * 1024, packing };
  const base = o.base ?? (o.precision === 'fp16' ? 'f16' : 'f32');
  try {
    gpu.allocator.resetPeak();
    const session = await WebgpuLlama.create({ kind: 'random', config: cfg, seed: 1, packing }, lora, { ...shape, maxBatchSize: B, maxSeqLen: T, gpu });
    try {
      const flops = trainingFlops(cfg, loraCfg, B, T).total;
      const estimatedGpuBytes = estimateMemory(cfg, loraCfg, shape).total;
      if (o.allocOnly) {
        const peakGpuBytes = session.memory().peakBytes;
        const nan = Number.NaN;
        return { adapter: gpu.adapterName, params: parameterCount(cfg), batch: B, seq: T, precision: o.precision, checkpointing: o.checkpointing, steps: 0, stepMs: nan, tokensPerSecond: nan, peakGpuBytes, peakGpuGiB: peakGpuBytes / 1024 ** 3, estimatedGpuBytes, flopsPerStep: flops, peakTflops: null, mfu: null, loss: nan, skippedSteps: 0, base };
      }
      const rng = new Rng(2);
      const inputIds = new Int32Array(B * T).map(() => rng.int(cfg.vocabSize));
      const batch: Batch = { batchSize: B, seqLen: T, inputIds, labels: inputIds.slice() };
      const scaler = new GradScaler({ enabled: o.precision === 'fp16' });
      let t = 0;
      let loss = 0;
      let skipped = 0;
      const step = async (): Promise<void> => {
        const r = await session.lossAndGrads(batch, { training: true, lossScale: scaler.lossScale() });
        const s = await session.optimizerStep({ lr: 1e-4, t: t + 1, ...ADAMW_DEFAULTS, maxGradNorm: 1, lossScale: scaler.lossScale() });
        scaler.update(s.foundInf);
        if (s.applied) t++;
        else skipped++;
        loss = r.loss;
      };
      await step();
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) await step();
      const stepMs = (performance.now() - t0) / steps;
      const tokensPerSecond = (B * T * 1000) / stepMs;
      const env = Number(process.env.LORA_STUDIO_PEAK_TFLOPS);
      const peak = o.peakTflops ?? (Number.isFinite(env) && env > 0 ? env : peakTflopsFor(gpu.adapterName, o.precision));
      const peakGpuBytes = session.memory().peakBytes;
      return {
        adapter: gpu.adapterName,
        params: parameterCount(cfg),
        batch: B,
        seq: T,
        precision: o.precision,
        checkpointing: o.checkpointing,
        steps,
        stepMs,
        tokensPerSecond,
        peakGpuBytes,
        peakGpuGiB: peakGpuBytes / 1024 ** 3,
        estimatedGpuBytes,
        flopsPerStep: flops,
        peakTflops: peak,
        mfu: mfu(flops, stepMs, peak === null ? null : peak * 1e12),
        loss,
        skippedSteps: skipped,
        base,
      };
    } finally {
      session.destroy();
    }
  } finally {
    if (!o.gpu) gpu.destroy();
  }
}
