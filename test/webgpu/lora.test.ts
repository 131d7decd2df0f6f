/**
 * Frozen Linear + LoRA branch on the GPU vs engine/model/linear.ts (the cpu op PEFT parity is proven against):
 * y, dx, dA, dB. With dropout, the cpu op gets the mask the GPU hash generates (same element indices), so the
 * comparison is exact-math, not statistical. Tolerance: f32 1e-5; f16 frozen weights/activations 1e-2.
 */
import { after, before, test } from 'node:test';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { linearBackward, linearForward } from '../../engine/backend/webgpu/lora.ts';
import type { Runner } from '../../engine/backend/webgpu/runner.ts';
import { createTensor, download, tensorFrom, type GpuDtype } from '../../engine/backend/webgpu/tensor.ts';
import { dropoutMul } from '../../engine/backend/webgpu/wgsl.ts';
import * as cpu from '../../engine/model/linear.ts';
import { Rng } from '../../engine/util/rng.ts';
import { assertClose, gpuForTest, randn } from './gpu.ts';

let ctx: GpuContext;
let runner: Runner;
before(async () => ({ ctx, runner } = await gpuForTest()));
after(() => ctx.destroy());

async function check(M: number, inF: number, outF: number, r: number, bias: boolean, dropoutP: number, dt: GpuDtype, rtol: number): Promise<void> {
  const rng = new Rng(M + inF * 3 + outF * 5 + r);
  const x = randn(rng, M * inF);
  const W = randn(rng, outF * inF, 0.2);
  const b = bias ? randn(rng, outF) : null;
  const A = randn(rng, r * inF, 0.3);
  const B = randn(rng, outF * r, 0.3);
  const dY = randn(rng, M * outF);
  const dx0 = randn(rng, M * inF);
  const scaling = 2;
  const seed = 987654;
  let mask: cpu.DropoutMask | null = null;
  if (dropoutP > 0) {
    const keep = new Uint8Array(M * inF);
    for (let i = 0; i < keep.length; i++) keep[i] = dropoutMul(seed, i, dropoutP) === 0 ? 0 : 1;
    mask = { keep, scale: 1 / (1 - dropoutP) };
  }
  const lin = { weight: W, bias: b, outFeatures: outF, inFeatures: inF };
  const y = new Float64Array(M * outF);
  const u = new Float64Array(M * r);
  const xd = mask ? new Float64Array(M * inF) : null;
  cpu.forward(y, u, xd, x, lin, { A, B }, scaling, mask, M);
  const dx = Float64Array.from(dx0);
  const dA = new Float64Array(r * inF);
  const dB = new Float64Array(outF * r);
  cpu.backward(dx, dA, dB, dY, u, xd, x, lin, { A, B }, scaling, mask, M);

  const tx = tensorFrom(ctx, 'x', x, dt);
  const tW = tensorFrom(ctx, 'W', W, dt);
  const tb = b ? tensorFrom(ctx, 'b', b, dt) : null;
  const gl = { weight: tW, bias: tb, outFeatures: outF, inFeatures: inF };
  const branch = {
    A: tensorFrom(ctx, 'A', A, 'f32'),
    B: tensorFrom(ctx, 'B', B, 'f32'),
    dA: createTensor(ctx, 'dA', r * inF, 'f32'),
    dB: createTensor(ctx, 'dB', outF * r, 'f32'),
    u: createTensor(ctx, 'u', M * r, 'f32'),
    g: createTensor(ctx, 'g', M * r, 'f32'),
    r,
    scaling,
    dropout: dropoutP > 0 ? { p: dropoutP, seed } : null,
  };
  const ty = createTensor(ctx, 'y', M * outF, dt);
  const tdY = tensorFrom(ctx, 'dY', dY, dt);
  const tdx = tensorFrom(ctx, 'dx', dx0, dt);
  await runner.runOnce((p) => {
    linearForward(p, ty, tx, gl, branch, M);
    linearBackward(p, tdx, true, tdY, tx, gl, branch, M);
  });
  const [gy, gdx, gdA, gdB] = await download(ctx, [ty, tdx, branch.dA, branch.dB]);
  assertClose('y', gy, y, rtol);
  assertClose('dx', gdx, dx, rtol);
  assertClose('dA', gdA, dA, rtol);
  assertClose('dB', gdB, dB, rtol);
}

test('linear + LoRA forward/backward f32 (with bias)', async () => {
  await check(19, 40, 24, 4, true, 0, 'f32', 1e-5);
});

test('linear + LoRA with dropout: forward mask regenerated in backward', async () => {
  await check(17, 32, 20, 8, false, 0.25, 'f32', 1e-5);
});

test('linear + LoRA with f16 frozen weights and activations, f32 adapter', async () => {
  await check(16, 48, 32, 4, true, 0.1, 'f16', 1e-2);
});
