/**
 * RMSNorm kernels vs engine/model/rmsnorm.ts (the cpu reference, f64 statistics). Tolerance: f32 1e-5, f16 storage
 * 1e-2 (see assertClose). Covers hidden-size rows (256-thread rows) and head_dim rows (Qwen3 q/k norm), with and
 * without subgroups.
 */
import { after, before, test } from 'node:test';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { rmsnormBackward, rmsnormForward } from '../../engine/backend/webgpu/rmsnorm.ts';
import type { Runner } from '../../engine/backend/webgpu/runner.ts';
import { createTensor, download, tensorFrom, type GpuDtype } from '../../engine/backend/webgpu/tensor.ts';
import * as cpu from '../../engine/model/rmsnorm.ts';
import { Rng } from '../../engine/util/rng.ts';
import { assertClose, gpuForTest, randn } from './gpu.ts';

let ctx: GpuContext;
let runner: Runner;
let ctxNoSg: GpuContext;
let runnerNoSg: Runner;
before(async () => {
  ({ ctx, runner } = await gpuForTest());
  ({ ctx: ctxNoSg, runner: runnerNoSg } = await gpuForTest({ useSubgroups: false }));
});
after(() => {
  ctx.destroy();
  ctxNoSg.destroy();
});

async function check(c: GpuContext, r: Runner, rows: number, C: number, dt: GpuDtype, accumulate: boolean, rtol: number, name: string): Promise<void> {
  const rng = new Rng(rows * 31 + C);
  const x = randn(rng, rows * C, 2);
  const w = randn(rng, C);
  const dy = randn(rng, rows * C);
  const dx0 = randn(rng, rows * C);
  const eps = 1e-6;
  const out = new Float32Array(rows * C);
  const rstd = new Float32Array(rows);
  cpu.forward(out, rstd, x, w, rows, C, eps);
  const dx = accumulate ? Float64Array.from(dx0) : new Float64Array(rows * C);
  cpu.backward(dx, null, dy, x, w, rstd, rows, C);

  const tx = tensorFrom(c, 'x', x, dt);
  const tw = tensorFrom(c, 'w', w, dt);
  const tdy = tensorFrom(c, 'dy', dy, dt);
  const to = createTensor(c, 'out', rows * C, dt);
  const tr = createTensor(c, 'rstd', rows, 'f32');
  const tdx = accumulate ? tensorFrom(c, 'dx', dx0, dt) : createTensor(c, 'dx', rows * C, dt);
  await r.runOnce((p) => {
    rmsnormForward(p, to, tr, tx, tw, rows, C, eps);
    rmsnormBackward(p, tdx, tdy, tx, tw, tr, rows, C, accumulate);
  });
  const [gOut, gR, gDx] = await download(c, [to, tr, tdx]);
  assertClose(`${name} out`, gOut, out, rtol);
  assertClose(`${name} rstd`, gR, rstd, rtol);
  assertClose(`${name} dx`, gDx, dx, rtol);
}

test('rmsnorm forward/backward f32 matches the cpu op (subgroup reduction)', async () => {
  await check(ctx, runner, 5, 300, 'f32', false, 1e-5, 'hidden rows');
  await check(ctx, runner, 24, 16, 'f32', true, 1e-5, 'head rows');
});

test('rmsnorm f32 without subgroups (shared-memory tree reduction)', async () => {
  await check(ctxNoSg, runnerNoSg, 5, 300, 'f32', true, 1e-5, 'hidden rows');
  await check(ctxNoSg, runnerNoSg, 24, 16, 'f32', false, 1e-5, 'head rows');
});

test('rmsnorm with f16 storage', async () => {
  await check(ctx, runner, 7, 96, 'f16', false, 1e-2, 'f16');
});
