/**
 * RoPE kernel vs engine/model/rope.ts, with the cpu backend's own fp32 tables (default and llama3 scaling).
 * Tolerance: f32 1e-5, f16 1e-2.
 */
import { after, before, test } from 'node:test';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { rope } from '../../engine/backend/webgpu/rope.ts';
import type { Runner } from '../../engine/backend/webgpu/runner.ts';
import { download, tensorFrom, type GpuDtype } from '../../engine/backend/webgpu/tensor.ts';
import * as cpu from '../../engine/model/rope.ts';
import type { RopeScaling } from '../../engine/model/types.ts';
import { Rng } from '../../engine/util/rng.ts';
import { assertClose, gpuForTest, randn } from './gpu.ts';

let ctx: GpuContext;
let runner: Runner;
before(async () => ({ ctx, runner } = await gpuForTest()));
after(() => ctx.destroy());

async function check(B: number, T: number, heads: number, D: number, scaling: RopeScaling | null, dt: GpuDtype, rtol: number): Promise<void> {
  const rng = new Rng(B * 100 + T);
  const tables = cpu.ropeTables({ headDim: D, ropeTheta: 10000, ropeScaling: scaling }, T, true);
  const n = B * T * heads * D;
  const x = randn(rng, n);
  const dOut = randn(rng, n);
  const fwd = new Float32Array(n);
  cpu.forward(fwd, x, tables, B, T, heads, D);
  const bwd = new Float64Array(n);
  cpu.backward(bwd, dOut, tables, B, T, heads, D);
  const tcos = tensorFrom(ctx, 'cos', tables.cos, 'f32');
  const tsin = tensorFrom(ctx, 'sin', tables.sin, 'f32');
  const tx = tensorFrom(ctx, 'x', x, dt);
  const td = tensorFrom(ctx, 'd', dOut, dt);
  const dims = { tokens: B * T, T, nHeads: heads, headDim: D };
  await runner.runOnce((p) => {
    rope(p, tx, tcos, tsin, dims, 'forward');
    rope(p, td, tcos, tsin, dims, 'backward');
  });
  const [gx, gd] = await download(ctx, [tx, td]);
  assertClose('rope forward', gx, fwd, rtol);
  assertClose('rope backward', gd, bwd, rtol);
}

test('rope forward and backward (f32, default frequencies)', async () => {
  await check(2, 9, 3, 16, null, 'f32', 1e-5);
});

test('rope with llama3 rope_scaling tables', async () => {
  await check(1, 40, 2, 32, { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 }, 'f32', 1e-5);
});

test('rope f16 storage', async () => {
  await check(2, 5, 2, 8, null, 'f16', 1e-2);
});
