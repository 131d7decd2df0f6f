/**
 * SwiGLU and embedding kernels vs engine/model/swiglu.ts and engine/model/embedding.ts. Tolerance: f32 1e-5,
 * f16 1e-2. (The embedding is frozen, so it has a forward kernel only.)
 */
import { after, before, test } from 'node:test';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { embeddingForward } from '../../engine/backend/webgpu/embedding.ts';
import type { Runner } from '../../engine/backend/webgpu/runner.ts';
import { swigluBackwardInPlace, swigluForward } from '../../engine/backend/webgpu/swiglu.ts';
import { createTensor, download, tensorFrom, type GpuDtype } from '../../engine/backend/webgpu/tensor.ts';
import * as cpuEmb from '../../engine/model/embedding.ts';
import * as cpuSwiglu from '../../engine/model/swiglu.ts';
import { Rng } from '../../engine/util/rng.ts';
import { assertClose, gpuForTest, randn } from './gpu.ts';

let ctx: GpuContext;
let runner: Runner;
before(async () => ({ ctx, runner } = await gpuForTest()));
after(() => ctx.destroy());

async function checkSwiglu(n: number, dt: GpuDtype, rtol: number): Promise<void> {
  const rng = new Rng(n);
  const g = randn(rng, n, 3);
  const u = randn(rng, n);
  const d = randn(rng, n);
  const out = new Float64Array(n);
  cpuSwiglu.forward(out, g, u, n);
  const dg = new Float64Array(n);
  const du = new Float64Array(n);
  cpuSwiglu.backward(dg, du, d, g, u, n);
  const [tg, tu, td] = [tensorFrom(ctx, 'g', g, dt), tensorFrom(ctx, 'u', u, dt), tensorFrom(ctx, 'd', d, dt)];
  const to = createTensor(ctx, 'o', n, dt);
  await runner.runOnce((p) => {
    swigluForward(p, to, tg, tu, n);
    // In place: d becomes dgate, u becomes dup (after the forward has read u).
    swigluBackwardInPlace(p, td, tg, tu, n);
  });
  const [go, gdg, gdu] = await download(ctx, [to, td, tu]);
  assertClose('swiglu out', go, out, rtol);
  assertClose('swiglu dgate', gdg, dg, rtol);
  assertClose('swiglu dup', gdu, du, rtol);
}

test('swiglu forward/backward f32 and f16', async () => {
  await checkSwiglu(1000, 'f32', 1e-5);
  await checkSwiglu(777, 'f16', 1e-2);
});

test('embedding lookup f32 and f16', async () => {
  const rng = new Rng(5);
  const V = 50;
  const C = 24;
  const N = 13;
  const table = randn(rng, V * C);
  const ids = Int32Array.from({ length: N }, () => rng.int(V));
  const expected = new Float32Array(N * C);
  cpuEmb.forward(expected, ids, table, N, C);
  for (const dt of ['f32', 'f16'] as const) {
    const tt = tensorFrom(ctx, 'table', table, dt);
    const ti = tensorFrom(ctx, 'ids', ids, 'i32');
    const to = createTensor(ctx, 'out', N * C, dt);
    await runner.runOnce((p) => embeddingForward(p, to, ti, tt, N, C));
    const [got] = await download(ctx, [to]);
    assertClose(`embedding ${dt}`, got, expected, dt === 'f32' ? 0 : 1e-3);
  }
});
