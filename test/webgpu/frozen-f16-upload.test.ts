// A model loaded with frozenF16 (F16Array weights) runs on the GPU exactly as the same model with f32 weights rounded
// to f16: in fp16 precision the f16 bits are uploaded as they are, in fp32 they are decoded first. Same device
// tensors, same kernels, so the losses are equal.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { WebgpuLlama } from '../../engine/backend/webgpu/llama-step.ts';
import { roundToF16InPlace } from '../../engine/io/f16.ts';
import { loadModel } from '../../engine/io/hf-model.ts';
import { tinyHfConfig, writeRandomModel } from '../../engine/io/make-model.ts';
import { F16Array, type Batch, type ModelWeights } from '../../engine/model/types.ts';
import { PackedWeight } from '../../engine/quant/packed-weight.ts';
import { gpuForTest } from './gpu.ts';

const root = mkdtempSync(join(tmpdir(), 'gpu-frozen-f16-'));
let ctx: GpuContext;
before(async () => {
  ctx = (await gpuForTest()).ctx;
});
after(() => {
  ctx.destroy();
  rmSync(root, { recursive: true, force: true });
});

async function loss(model: ModelWeights, batch: Batch, precision: 'fp32' | 'fp16'): Promise<number> {
  const s = await WebgpuLlama.create({ kind: 'host', model }, null, { precision, checkpointing: false, maxBatchSize: batch.batchSize, maxSeqLen: batch.seqLen, training: false, gpu: ctx });
  try {
    return (await s.evalLoss(batch)).loss;
  } finally {
    s.destroy();
  }
}

test('webgpu: an F16Array model gives the loss of the f16-rounded f32 model, in fp16 and fp32', async () => {
  const dir = join(root, 'm');
  writeRandomModel(dir, tinyHfConfig('llama'), { seed: 6, normStd: 0.1 });
  const half = loadModel(dir, { frozenF16: true });
  assert.ok(half.layers[0].q.weight instanceof F16Array);
  const ref = loadModel(dir);
  for (const w of [ref.embedTokens, ref.lmHead, ...ref.layers.flatMap((L) => [L.q, L.k, L.v, L.o, L.gate, L.up, L.down].map((l) => l.weight))]) {
    assert.ok(!(w instanceof F16Array) && !(w instanceof PackedWeight));
    roundToF16InPlace(w);
  }
  const ids = [1, 7, 19, 33, 45, 60, 71, 2];
  const batch: Batch = { batchSize: 1, seqLen: ids.length, inputIds: Int32Array.from(ids), labels: Int32Array.from(ids) };
  for (const p of ['fp16', 'fp32'] as const) {
    const a = await loss(half, batch, p);
    const b = await loss(ref, batch, p);
    assert.ok(Number.isFinite(b), `${p}: finite loss`);
    assert.equal(a, b, p);
  }
});
