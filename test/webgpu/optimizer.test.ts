/**
 * Optimizer-side kernels vs the cpu trainer's code: unscale + inf/NaN flag vs engine/train/grad-scaler.ts,
 * global grad norm vs engine/train/clip.ts, AdamW (several steps, weight decay, clipping coefficient) vs
 * engine/train/adamw.ts. Tolerance 1e-5 (f32 everywhere; the cpu sums in f64).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { adamwScalars, adamwStep, ADAMW_HP_SIZE } from '../../engine/backend/webgpu/adamw.ts';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { fill } from '../../engine/backend/webgpu/elementwise.ts';
import { gradNormSquared, NORM_PARTIALS } from '../../engine/backend/webgpu/grad-norm.ts';
import type { Runner } from '../../engine/backend/webgpu/runner.ts';
import { createTensor, download, tensorFrom, upload } from '../../engine/backend/webgpu/tensor.ts';
import { unscaleGrads } from '../../engine/backend/webgpu/unscale.ts';
import { AdamW } from '../../engine/train/adamw.ts';
import { clipGradNorm, globalGradNorm } from '../../engine/train/clip.ts';
import { GradScaler } from '../../engine/train/grad-scaler.ts';
import { Rng } from '../../engine/util/rng.ts';
import { assertClose, gpuForTest, randn } from './gpu.ts';

let ctx: GpuContext;
let runner: Runner;
before(async () => ({ ctx, runner } = await gpuForTest()));
after(() => ctx.destroy());

async function gpuUnscale(g: Float32Array, scale: number): Promise<{ out: Float32Array; found: boolean }> {
  const tg = tensorFrom(ctx, 'g', g, 'f32');
  const flag = createTensor(ctx, 'found', 1, 'u32');
  await runner.runOnce((p) => {
    fill(p, flag, 1, 0);
    unscaleGrads(p, tg, flag, g.length, 1 / scale);
  });
  const [out, f] = await download(ctx, [tg, flag]);
  return { out, found: f[0] !== 0 };
}

test('unscale matches GradScaler.unscale and flags inf/NaN', async () => {
  const rng = new Rng(1);
  const g = randn(rng, 3000, 1000);
  const scaler = new GradScaler({ initScale: 65536 });
  const ref = Float32Array.from(g);
  const refFound = scaler.unscale([ref]);
  const { out, found } = await gpuUnscale(g, 65536);
  assert.equal(found, refFound);
  assert.equal(found, false);
  assertClose('unscaled', out, ref, 1e-6);
  for (const bad of [Infinity, -Infinity, NaN]) {
    const g2 = Float32Array.from(g);
    g2[1234] = bad;
    const r2 = Float32Array.from(g2);
    assert.equal(scaler.unscale([r2]), true);
    assert.equal((await gpuUnscale(g2, 65536)).found, true, `flag for ${bad}`);
  }
  // Overflow produced by the multiplication itself (finite in, inf out) is caught too.
  const big = new Float32Array([3e38, 1]);
  assert.equal((await gpuUnscale(big, 1 / 4)).found, true);
});

test('global grad norm matches clip.ts (over 256 partial sums)', async () => {
  const rng = new Rng(2);
  for (const n of [5, 100_003]) {
    const g = randn(rng, n, 0.01);
    const tg = tensorFrom(ctx, 'g', g, 'f32');
    const out = createTensor(ctx, 'norm2', 1, 'f32');
    const partials = createTensor(ctx, 'partials', NORM_PARTIALS, 'f32');
    await runner.runOnce((p) => gradNormSquared(p, out, partials, tg, n));
    const [sq] = await download(ctx, [out]);
    assertClose(`norm n=${n}`, [Math.sqrt(sq[0])], [globalGradNorm([g])], 1e-5);
  }
});

test('AdamW steps match engine/train/adamw.ts, with weight decay and clipping', async () => {
  const rng = new Rng(3);
  const n = 1000;
  const p0 = randn(rng, n, 0.1);
  const opts = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
  const cpuP = Float32Array.from(p0);
  const adam = new AdamW([cpuP], opts);
  const tp = tensorFrom(ctx, 'p', p0, 'f32');
  const tg = createTensor(ctx, 'g', n, 'f32');
  const tm = createTensor(ctx, 'm', n, 'f32');
  const tv = createTensor(ctx, 'v', n, 'f32');
  const hp = createTensor(ctx, 'hp', ADAMW_HP_SIZE, 'f32');
  await runner.runOnce((p) => {
    fill(p, tm, n, 0);
    fill(p, tv, n, 0);
  });
  const maxNorm = 1;
  for (let t = 1; t <= 4; t++) {
    const g = randn(rng, n, t === 2 ? 0.5 : 0.01);
    const norm = globalGradNorm([g]);
    const coef = Math.min(1, maxNorm / (norm + 1e-6));
    const cpuG = Float32Array.from(g);
    clipGradNorm([cpuG], maxNorm);
    const lr = 1e-3 * t;
    adam.step([cpuG], lr);
    upload(ctx, tg, g);
    upload(ctx, hp, adamwScalars({ lr, ...opts, t, gradMul: coef }));
    await runner.runOnce((p) => adamwStep(p, tp, tg, tm, tv, hp, n));
  }
  const [gp, gm, gv] = await download(ctx, [tp, tm, tv]);
  assertClose('params', gp, cpuP, 1e-5);
  assertClose('m', gm, adam.state.m[0], 1e-5);
  assertClose('v', gv, adam.state.v[0], 1e-5);
});
