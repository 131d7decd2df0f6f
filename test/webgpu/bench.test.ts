/**
 * The webgpu benchmark entry on the tiny shape (llvmpipe is slow; the real shapes run on a GPU machine): the random
 * on-device weights give the closed-form loss of near-uniform logits, ln(vocab); figures are consistent; the peak
 * covers the pre-flight estimate; checkpointing lowers the peak.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ALL_TARGETS, trainingFlops } from '../../bench/flops.ts';
import { benchWebgpu } from '../../bench/webgpu-bench.ts';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { parseHfConfig } from '../../engine/io/hf-config.ts';
import { SHAPES } from '../../bench/shapes.ts';
import { gpuForTest } from './gpu.ts';

let ctx: GpuContext;
before(async () => ({ ctx } = await gpuForTest()));
after(() => ctx.destroy());

test('benchWebgpu on the tiny shape (fp16, with and without checkpointing)', async () => {
  const cfg = parseHfConfig(SHAPES.tiny.hf);
  const runs = [];
  for (const checkpointing of [false, true]) {
    const r = await benchWebgpu({ shape: 'tiny', seq: 32, batch: 2, steps: 1, precision: 'fp16', checkpointing, peakTflops: 1, gpu: ctx });
    assert.ok(Math.abs(r.loss - Math.log(cfg.vocabSize)) < 0.05, `loss ${r.loss} vs ln(V) ${Math.log(cfg.vocabSize)}`);
    assert.ok(r.stepMs > 0 && Number.isFinite(r.stepMs));
    assert.ok(Math.abs(r.tokensPerSecond - (2 * 32 * 1000) / r.stepMs) < 1e-6 * r.tokensPerSecond);
    // The bench's LoRA: r 8 on all seven projections.
    assert.equal(r.flopsPerStep, trainingFlops(cfg, { r: 8, targets: ALL_TARGETS }, 2, 32).total);
    assert.equal(r.peakTflops, 1);
    assert.ok(r.mfu !== null && Math.abs(r.mfu - r.flopsPerStep / (r.stepMs / 1000) / 1e12) < 1e-12 * Math.max(1, r.mfu));
    assert.ok(r.peakGpuBytes >= r.estimatedGpuBytes, `peak ${r.peakGpuBytes} < estimate ${r.estimatedGpuBytes}`);
    assert.equal(r.skippedSteps, 0);
    runs.push(r);
  }
  assert.ok(runs[1].peakGpuBytes < runs[0].peakGpuBytes, 'checkpointing lowers the peak');
});
