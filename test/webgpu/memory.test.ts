/**
 * Memory accounting of the webgpu backend: the pre-flight estimate is exactly what a session allocates; gradient
 * checkpointing lowers the peak; a run that cannot fit fails before allocating with "needs X GiB, adapter allows
 * Y"; a lost device fails the next call with a clear error instead of hanging.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GpuDeviceLostError, GpuOutOfMemoryError } from '../../engine/backend/webgpu/device.ts';
import { estimateMemory } from '../../engine/backend/webgpu/llama-memory.ts';
import { WebgpuLlama } from '../../engine/backend/webgpu/llama-step.ts';
import { gpuForTest } from './gpu.ts';
import { randomBatch, randomLora, randomModel, tinyConfig } from './model.ts';

const cfg = tinyConfig({ numLayers: 4, hiddenSize: 64, intermediateSize: 96 });
const loraCfg = { r: 4, alpha: 8, dropout: 0, targets: ['q_proj' as const, 'v_proj' as const], rslora: false };

test('the estimate equals the bytes a session allocates; checkpointing lowers the peak', async () => {
  const { ctx } = await gpuForTest();
  try {
    const model = randomModel(cfg, 1);
    const lora = randomLora(cfg, loraCfg, 2);
    const batch = randomBatch(cfg, 2, 32, 3);
    const peaks: number[] = [];
    for (const checkpointing of [false, true]) {
      ctx.allocator.resetPeak();
      const before = ctx.allocator.liveBytes;
      const shape = { precision: 'fp32' as const, checkpointing, training: true, batch: 2, seq: 32, ceChunkBytes: 64 * 1024 * 1024 };
      const s = await WebgpuLlama.create({ kind: 'host', model }, lora, { ...shape, maxBatchSize: 2, maxSeqLen: 32, gpu: ctx });
      assert.equal(ctx.allocator.liveBytes - before, estimateMemory(cfg, loraCfg, shape).total, `estimate (checkpointing ${checkpointing})`);
      await s.lossAndGrads(batch, { training: true });
      peaks.push(s.memory().peakBytes);
      s.destroy();
      assert.equal(ctx.allocator.liveBytes, before, 'destroy releases every buffer');
    }
    assert.ok(peaks[1] < peaks[0] * 0.8, `checkpointing peak ${peaks[1]} vs ${peaks[0]}`);
  } finally {
    ctx.destroy();
  }
});

test('a run that cannot fit fails up front with needs/allows, and the device stays usable', async () => {
  const { ctx } = await gpuForTest({ memoryBudgetBytes: 256 * 1024 });
  try {
    const model = randomModel(cfg, 1);
    const lora = randomLora(cfg, loraCfg, 2);
    await assert.rejects(
      WebgpuLlama.create({ kind: 'host', model }, lora, { precision: 'fp32', checkpointing: false, maxBatchSize: 4, maxSeqLen: 64, gpu: ctx }),
      (e: unknown) => e instanceof GpuOutOfMemoryError && /needs [\d.]+ GiB, adapter allows 0\.00024 GiB/.test(e.message) && e.neededBytes > 256 * 1024,
    );
    assert.equal(ctx.allocator.liveBytes, 0, 'nothing was allocated');
    const small = tinyConfig({ numLayers: 1, hiddenSize: 16, intermediateSize: 16, numHeads: 2, numKvHeads: 1, vocabSize: 20 });
    const s = await WebgpuLlama.create({ kind: 'host', model: randomModel(small, 1) }, randomLora(small, loraCfg, 2), { precision: 'fp32', checkpointing: false, maxBatchSize: 1, maxSeqLen: 4, gpu: ctx });
    s.destroy();
  } finally {
    ctx.destroy();
  }
});

test('a lost device fails the next step with GpuDeviceLostError', async () => {
  const { ctx } = await gpuForTest();
  const small = tinyConfig({ numLayers: 1 });
  const s = await WebgpuLlama.create({ kind: 'host', model: randomModel(small, 1) }, randomLora(small, loraCfg, 2), { precision: 'fp32', checkpointing: false, maxBatchSize: 1, maxSeqLen: 6, gpu: ctx });
  ctx.device.destroy();
  await ctx.device.lost;
  await new Promise((r) => setImmediate(r));
  await assert.rejects(s.lossAndGrads(randomBatch(small, 1, 6, 3), { training: true }), (e: unknown) => e instanceof GpuDeviceLostError && /GPU device lost: destroyed/.test(e.message));
  s.destroy();
});
