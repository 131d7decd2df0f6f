/**
 * The webgpu training benchmark: a model of a real shape with random weights generated on the device (a 7B shape
 * never passes through host memory), LoRA r=8 on all seven projections (as the cpu case), `steps` timed training
 * steps (forward, chunked CE, backward, unscale/clip/AdamW) after one untimed warm-up step that compiles the kernels.
 *
 * MFU counts model FLOPs only (no recompute): per token 4·(linear + lm_head parameters) — forward and the input
 * gradient through the frozen weights; LoRA and weight gradients are negligible — plus 6·L·T·(heads·head_dim) for
 * causal attention (forward 2, backward 4). The peak is the adapter's dense fp16 (tensor-core) or fp32 figure from a
 * short table, or `peakTflops` / LORA_STUDIO_PEAK_TFLOPS; mfu is null when unknown.
 */
import { acquireGpu, type GpuContext } from '../engine/backend/webgpu/device.ts';
import { estimateMemory } from '../engine/backend/webgpu/llama-memory.ts';
import { WebgpuLlama } from '../engine/backend/webgpu/llama-step.ts';
import { parseHfConfig } from '../engine/io/hf-config.ts';
import { newLora } from '../engine/model/lora.ts';
import type { Batch, LoraConfig, ModelConfig } from '../engine/model/types.ts';
import { ADAMW_DEFAULTS } from '../engine/train/adamw.ts';
import { GradScaler } from '../engine/train/grad-scaler.ts';
import { Rng } from '../engine/util/rng.ts';
import { SHAPES, type ShapeName } from './shapes.ts';

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
  flopsPerToken: number;
  mfu: number | null;
  loss: number;
  skippedSteps: number;
}

/** Dense peaks (TFLOPS): fp16 with fp32 accumulation on tensor cores, and plain fp32. */
const PEAKS: { match: RegExp; fp16: number; fp32: number }[] = [
  { match: /H200|H100.*(SXM|HBM3)/i, fp16: 989, fp32: 67 },
  { match: /H100/i, fp16: 756, fp32: 51 },
  { match: /A100/i, fp16: 312, fp32: 19.5 },
  { match: /RTX 4090/i, fp16: 165, fp32: 82.6 },
  { match: /\bL4\b/i, fp16: 121, fp32: 30.3 },
];

export function peakTflopsFor(adapter: string, precision: 'fp32' | 'fp16'): number | null {
  const env = Number(process.env.LORA_STUDIO_PEAK_TFLOPS);
  if (Number.isFinite(env) && env > 0) return env;
  const row = PEAKS.find((p) => p.match.test(adapter));
  return row ? row[precision] : null;
}

export function flopsPerToken(cfg: ModelConfig, seq: number): number {
  const H = cfg.hiddenSize;
  const qDim = cfg.numHeads * cfg.headDim;
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const perLayer = H * qDim + 2 * H * kvDim + qDim * H + 3 * H * cfg.intermediateSize;
  const linear = cfg.numLayers * perLayer + cfg.vocabSize * H;
  return 4 * linear + 6 * cfg.numLayers * seq * qDim;
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
  const loraCfg: LoraConfig = { r: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], rslora: false };
  const lora = newLora(cfg, loraCfg, new Rng(1), Float32Array);
  const gpu = o.gpu ?? (await acquireGpu());
  const shape = { precision: o.precision, checkpointing: o.checkpointing, training: true, batch: B, seq: T, ceChunkBytes: 64 * 1024 * 1024 };
  try {
    gpu.allocator.resetPeak();
    const session = await WebgpuLlama.create({ kind: 'random', config: cfg, seed: 1 }, lora, { ...shape, maxBatchSize: B, maxSeqLen: T, gpu });
    try {
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
      const fpt = flopsPerToken(cfg, T);
      const peak = o.peakTflops ?? peakTflopsFor(gpu.adapterName, o.precision);
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
        estimatedGpuBytes: estimateMemory(cfg, loraCfg, shape).total,
        flopsPerToken: fpt,
        mfu: peak === null ? null : (fpt * tokensPerSecond) / (peak * 1e12),
        loss,
        skippedSteps: skipped,
      };
    } finally {
      session.destroy();
    }
  } finally {
    if (!o.gpu) gpu.destroy();
  }
}
