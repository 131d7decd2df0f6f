/**
 * The Train form's webgpu estimate (engine/train/memory-estimate.ts estimateTrainingMemory, backend 'webgpu') against
 * what a training session really allocates on the adapter (Mesa llvmpipe in CI): the model loaded from disk with the
 * run's base weights as run-training.ts loads it, the plan the services pass (model-source.ts basePlanOf), the
 * session created and stepped as the trainer does (webgpu-trainer-backend.ts), and the allocator's peak read after
 * an optimizer step and a validation batch.
 *
 * Every buffer of the session is allocated when it starts, so the estimate must equal the bytes live after creation
 * exactly. Beyond it the peak holds only what running allocates: each recorded program's uniform parameters (256
 * bytes a dispatch, kept while the program is cached: about 25 KiB a layer for a forward and backward pair) and
 * the few bytes of a read-back's staging buffer. The test names both: what is live after the step beside the
 * estimate must be program parameters only, and the rest of the peak at most READBACK_SLACK.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BaseWeights, BaseWeightsKeep, LoraTarget } from '../../common/protocol.ts';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { writeRandomModel, tinyHfConfig } from '../../engine/io/make-model.ts';
import { basePlanOf, loadModel, readModelConfig } from '../../engine/io/model-source.ts';
import { newLora } from '../../engine/model/lora.ts';
import { estimateTrainingMemory, formatBytes } from '../../engine/train/memory-estimate.ts';
import { WebgpuStepBackend } from '../../engine/train/webgpu-trainer-backend.ts';
import { trainerSettings } from '../../engine/train/run-config.ts';
import { DEFAULT_RUN_CONFIG, type RunConfig } from '../../common/protocol.ts';
import { countTargetTokens } from '../../engine/train/batching.ts';
import { Rng } from '../../engine/util/rng.ts';
import { gpuForTest } from './gpu.ts';
import { randomBatch } from './model.ts';

/** Bytes of read-back staging (loss, found-inf and norm scalars) the peak may hold beside the session and its programs. */
const READBACK_SLACK = 4 * 1024;

const ALL: LoraTarget[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

interface Shape {
  family: 'llama' | 'qwen2' | 'qwen3';
  precision: 'fp32' | 'fp16';
  checkpointing: boolean;
  baseWeights: BaseWeights;
  keep?: BaseWeightsKeep;
  targets: LoraTarget[];
  dropout: number;
  batchSize: number;
  seq: number;
}

// Hidden and intermediate sizes are whole NF4 blocks (64), so every linear and the embedding can be packed.
const shapes: Record<string, Shape> = {
  'fp32, no checkpointing, f32 base, dropout': { family: 'llama', precision: 'fp32', checkpointing: false, baseWeights: 'f32', targets: ['q_proj', 'v_proj'], dropout: 0.1, batchSize: 2, seq: 24 },
  'fp32, checkpointing, NF4 base (QLoRA), every target': { family: 'llama', precision: 'fp32', checkpointing: true, baseWeights: 'nf4', targets: ALL, dropout: 0, batchSize: 2, seq: 32 },
  'fp16, checkpointing, Q4_0 base with layer 1 kept as q8_0': { family: 'llama', precision: 'fp16', checkpointing: true, baseWeights: 'q4_0', keep: { layers: [1], as: 'q8_0' }, targets: ALL, dropout: 0.05, batchSize: 1, seq: 40 },
  'fp16, no checkpointing, f16 base, q/k/v biases (Qwen2)': { family: 'qwen2', precision: 'fp16', checkpointing: false, baseWeights: 'f16', targets: ['q_proj', 'k_proj', 'o_proj', 'up_proj'], dropout: 0, batchSize: 3, seq: 16 },
  'fp16, no checkpointing, Q4_0 base, q/k norms (Qwen3)': { family: 'qwen3', precision: 'fp16', checkpointing: false, baseWeights: 'q4_0', targets: ALL, dropout: 0, batchSize: 2, seq: 20 },
};

describe('the Train form’s webgpu estimate is what a training session allocates', () => {
  let ctx: GpuContext;
  const dir = mkdtempSync(join(tmpdir(), 'train-estimate-'));
  const modelDirs = new Map<string, string>();
  before(async () => {
    ({ ctx } = await gpuForTest());
  });
  after(() => {
    ctx.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  function modelDir(family: Shape['family']): string {
    let d = modelDirs.get(family);
    if (!d) {
      d = join(dir, family);
      const tie = family === 'qwen2';
      writeRandomModel(d, tinyHfConfig(family, { vocab_size: 200, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, tie_word_embeddings: tie }), { seed: 7 });
      modelDirs.set(family, d);
    }
    return d;
  }

  for (const [name, s] of Object.entries(shapes)) {
    test(name, async (t) => {
      if (s.precision === 'fp16') assert.ok(ctx.features.f16, `${ctx.adapterName} lacks shader-f16, which the fp16 shapes need`);
      const path = modelDir(s.family);
      const config: RunConfig = {
        ...DEFAULT_RUN_CONFIG,
        backend: 'webgpu',
        modelPath: path,
        datasetPath: join(dir, 'unused.jsonl'),
        lora: { ...DEFAULT_RUN_CONFIG.lora, r: 4, alpha: 8, dropout: s.dropout, targets: s.targets },
        train: { ...DEFAULT_RUN_CONFIG.train, batchSize: s.batchSize, gradAccumulation: 2, maxSeqLen: s.seq, precision: s.precision, gradientCheckpointing: s.checkpointing, baseWeights: s.baseWeights, ...(s.keep ? { baseWeightsKeep: s.keep } : {}) },
      };
      // What the services compute for the Train form ('runs.estimateMemory').
      const estimate = estimateTrainingMemory(readModelConfig(path), { lora: config.lora, train: config.train }, { backend: 'webgpu', basePlan: basePlanOf(path, s.baseWeights, s.keep ?? null) });
      assert.equal(estimate.total, estimate.weights + estimate.lora + estimate.gradients + estimate.optimizer + estimate.data + estimate.activations);
      assert.equal(estimate.total, s.checkpointing ? estimate.totalWithCheckpointing : estimate.totalWithoutCheckpointing);

      // What run-training.ts and the trainer do with the same config.
      const model = loadModel(path, { dtype: Float32Array, baseWeights: s.baseWeights, baseWeightsKeep: s.keep ?? null });
      const settings = trainerSettings(config);
      const lora = newLora(model.config, settings.lora, new Rng(1), Float32Array);
      ctx.allocator.resetPeak();
      const liveBefore = ctx.allocator.liveBytes;
      const backend = await WebgpuStepBackend.create(model, { lora, optimizer: { t: 0, m: [], v: [] }, settings }, 0, { maxSeqLen: s.seq, gpu: ctx });
      try {
        const allocated = ctx.allocator.liveBytes - liveBefore;
        const micro = [randomBatch(model.config, s.batchSize, s.seq, 11), randomBatch(model.config, s.batchSize, s.seq, 12)];
        const out = await backend.step({ micro, normalizer: micro.reduce((a, b) => a + countTargetTokens(b), 0), lr: 1e-3, lossScale: s.precision === 'fp16' ? 1024 : 1 }, new Rng(2));
        assert.ok(Number.isFinite(out.lossSum), `the step ran: loss sum ${out.lossSum}`);
        const ev = await backend.evalLoss(micro[0]);
        assert.ok(ev.tokens > 0);
        const peak = backend.memory().peakBytes - liveBefore;
        const programs = ctx.allocator.records().filter((r) => r.name.endsWith(':params')).reduce((a, r) => a + r.bytes, 0);
        const residue = peak - estimate.total - programs;
        t.diagnostic(
          `estimate ${formatBytes(estimate.total)} (${estimate.total} B: weights ${estimate.weights}, LoRA state ${estimate.lora * 4}, activations ${estimate.activations}); ` +
            `allocated at start ${allocated} B; peak ${peak} B = estimate + ${programs} B program parameters (${((100 * programs) / estimate.total).toFixed(1)} %) + ${residue} B read-back`,
        );
        assert.equal(allocated, estimate.total, 'the session allocates exactly the estimate when it starts');
        assert.equal(ctx.allocator.liveBytes - liveBefore, estimate.total + programs, 'after the step, only program parameters are live beside the estimate');
        assert.ok(programs > 0 && programs % 256 === 0, `program parameters ${programs} B`);
        assert.ok(residue >= 0 && residue <= READBACK_SLACK, `peak ${peak} B vs estimate ${estimate.total} B + programs ${programs} B (read-back slack ${READBACK_SLACK} B)`);
      } finally {
        backend.destroy();
      }
      assert.equal(ctx.allocator.liveBytes, liveBefore, 'destroy releases every buffer');
    });
  }
});
