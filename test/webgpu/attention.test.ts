/**
 * Fused flash-style attention kernels vs engine/model/attention.ts (exact softmax rows in f64): forward output and
 * logsumexp, and dq/dk/dv, with GQA (2 query heads per kv head), T crossing the 64-row block, and Mistral's sliding
 * window. Tolerance: f32 1e-5 (see assertClose); f16 storage 1e-2 forward, 2e-2 gradients.
 */
import { after, before, test } from 'node:test';
import { attentionBackward, attentionForward, type AttentionDims } from '../../engine/backend/webgpu/attention.ts';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import type { Runner } from '../../engine/backend/webgpu/runner.ts';
import { createTensor, download, tensorFrom, type GpuDtype } from '../../engine/backend/webgpu/tensor.ts';
import * as cpu from '../../engine/model/attention.ts';
import { Rng } from '../../engine/util/rng.ts';
import { assertClose, gpuForTest, randn } from './gpu.ts';

let ctx: GpuContext;
let runner: Runner;
before(async () => ({ ctx, runner } = await gpuForTest()));
after(() => ctx.destroy());

async function check(d: AttentionDims, dt: GpuDtype, rtolF: number, rtolB: number): Promise<void> {
  const rng = new Rng(d.T * 7 + d.headDim);
  const M = d.batch * d.T;
  const qn = M * d.nHeads * d.headDim;
  const kn = M * d.nKvHeads * d.headDim;
  const q = randn(rng, qn);
  const k = randn(rng, kn);
  const v = randn(rng, kn);
  const dO = randn(rng, qn);
  const shape: cpu.AttentionShape = { batch: d.batch, queryLen: d.T, keyLen: d.T, nHeads: d.nHeads, nKvHeads: d.nKvHeads, headDim: d.headDim, window: d.window };
  const out = new Float64Array(qn);
  const lse = new Float64Array(d.batch * d.nHeads * d.T);
  cpu.forward(out, lse, q, k, v, shape);
  const dq = new Float64Array(qn);
  const dk = new Float64Array(kn);
  const dv = new Float64Array(kn);
  cpu.backward(dq, dk, dv, dO, out, lse, q, k, v, shape);

  const [tq, tk, tv, tdO] = [tensorFrom(ctx, 'q', q, dt), tensorFrom(ctx, 'k', k, dt), tensorFrom(ctx, 'v', v, dt), tensorFrom(ctx, 'dO', dO, dt)];
  const to = createTensor(ctx, 'out', qn, dt);
  const tl = createTensor(ctx, 'lse', lse.length, 'f32');
  const tdelta = createTensor(ctx, 'delta', lse.length, 'f32');
  const [tdq, tdk, tdv] = [createTensor(ctx, 'dq', qn, dt), createTensor(ctx, 'dk', kn, dt), createTensor(ctx, 'dv', kn, dt)];
  await runner.runOnce((p) => {
    attentionForward(p, to, tl, tq, tk, tv, d);
    attentionBackward(p, tdq, tdk, tdv, tdelta, tdO, to, tl, tq, tk, tv, d);
  });
  const [gOut, gL, gdq, gdk, gdv] = await download(ctx, [to, tl, tdq, tdk, tdv]);
  assertClose('attention out', gOut, out, rtolF);
  assertClose('attention lse', gL, lse, rtolF);
  assertClose('attention dq', gdq, dq, rtolB);
  assertClose('attention dk', gdk, dk, rtolB);
  assertClose('attention dv', gdv, dv, rtolB);
}

test('causal GQA attention f32, T across the 64-row block', async () => {
  await check({ batch: 2, T: 70, nHeads: 4, nKvHeads: 2, headDim: 16, window: null }, 'f32', 1e-5, 1e-5);
});

test('sliding window attention f32', async () => {
  await check({ batch: 1, T: 75, nHeads: 2, nKvHeads: 1, headDim: 8, window: 7 }, 'f32', 1e-5, 1e-5);
});

test('attention with f16 storage', async () => {
  await check({ batch: 1, T: 20, nHeads: 2, nKvHeads: 2, headDim: 32, window: null }, 'f16', 1e-2, 2e-2);
});

// The head sizes real models use: 64 (SmolLM, TinyLlama, Llama-3.2-1B) and 128 (Llama 2/3 7–8B, Mistral, Qwen),
// where the kernels stage fewer key rows per tile and each thread holds a whole 128-wide row.
test('attention at head_dim 64 and 128, f32, T across the 64-row block', async () => {
  await check({ batch: 1, T: 70, nHeads: 2, nKvHeads: 1, headDim: 64, window: null }, 'f32', 1e-5, 1e-5);
  await check({ batch: 1, T: 70, nHeads: 2, nKvHeads: 2, headDim: 128, window: null }, 'f32', 1e-5, 1e-5);
});

test('attention at head_dim 128 with f16 storage and a sliding window', async () => {
  await check({ batch: 2, T: 40, nHeads: 4, nKvHeads: 2, headDim: 128, window: 17 }, 'f16', 1e-2, 2e-2);
});
