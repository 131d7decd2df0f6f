/**
 * Chunked cross-entropy kernels vs engine/model/cross-entropy.ts (f64 logits): per-row losses and dHidden, with
 * ignored rows, more active rows than one chunk, and lm_head split into several bindings (forced small limit).
 * Tolerance: f32 1e-5; f16 hidden/lm_head 1e-2.
 */
import { after, before, test } from 'node:test';
import { crossEntropy, lmHeadParts } from '../../engine/backend/webgpu/cross-entropy.ts';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import type { Runner } from '../../engine/backend/webgpu/runner.ts';
import { createTensor, download, tensorFrom, type GpuDtype } from '../../engine/backend/webgpu/tensor.ts';
import * as cpu from '../../engine/model/cross-entropy.ts';
import { IGNORE_INDEX } from '../../engine/model/types.ts';
import { Rng } from '../../engine/util/rng.ts';
import { assertClose, gpuForTest, randn } from './gpu.ts';

let ctx: GpuContext;
let runner: Runner;
before(async () => ({ ctx, runner } = await gpuForTest()));
after(() => ctx.destroy());

async function check(M: number, H: number, V: number, chunk: number, maxBindingBytes: number, dt: GpuDtype, rtol: number): Promise<void> {
  const rng = new Rng(M * 13 + V);
  const hidden = randn(rng, M * H);
  const lmHead = randn(rng, V * H, 0.3);
  const targets = Int32Array.from({ length: M }, (_, i) => (i % 4 === 3 ? IGNORE_INDEX : rng.int(V)));
  const gradScale = 1 / 7;
  const losses = new Float64Array(M);
  const dHidden = new Float64Array(M * H);
  cpu.forwardBackward(dHidden, losses, hidden, lmHead, targets, { rows: M, hidden: H, vocab: V, chunkRows: chunk }, gradScale);

  const active = [...targets.keys()].filter((i) => targets[i] !== IGNORE_INDEX);
  const rowIdx = new Int32Array(M).fill(-1);
  rowIdx.set(active);
  const th = tensorFrom(ctx, 'hidden', hidden, dt);
  const tw = tensorFrom(ctx, 'lm_head', lmHead, dt);
  const head = lmHeadParts(tw, V, H, maxBindingBytes);
  const bufs = {
    rowIdx: tensorFrom(ctx, 'rowIdx', rowIdx, 'i32'),
    targets: tensorFrom(ctx, 'targets', targets, 'i32'),
    losses: createTensor(ctx, 'losses', M, 'f32'),
    gradScale: tensorFrom(ctx, 'gs', [gradScale], 'f32'),
    hChunk: createTensor(ctx, 'hChunk', chunk * H, dt),
    logits: createTensor(ctx, 'logits', chunk * V, 'f32'),
    dhChunk: createTensor(ctx, 'dhChunk', chunk * H, 'f32'),
  };
  const tdh = createTensor(ctx, 'dHidden', M * H, dt);
  await runner.runOnce((p) => crossEntropy(p, th, head, tdh, bufs, { rows: M, hidden: H, vocab: V, chunkRows: chunk }, Math.ceil(active.length / chunk)));
  const [gl, gdh] = await download(ctx, [bufs.losses, tdh]);
  assertClose('losses', gl, losses, rtol);
  assertClose('dHidden', gdh, dHidden, rtol);
}

test('cross-entropy f32: ignored rows, several chunks, one binding', async () => {
  await check(13, 24, 70, 4, 1 << 30, 'f32', 1e-5);
});

test('cross-entropy f32 with lm_head split over three bindings', async () => {
  await check(9, 16, 300, 3, 128 * 16 * 4, 'f32', 1e-5);
});

test('cross-entropy with f16 hidden and lm_head', async () => {
  await check(10, 32, 200, 8, 1 << 30, 'f16', 1e-2);
});
