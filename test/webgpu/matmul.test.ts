/**
 * WGSL tiled matmul vs the cpu backend's products (engine/backend/cpu/matmul.ts, f64 accumulation).
 * Tolerances (see assertClose): f32 operands 1e-5; f16 operands or output 1e-2 (inputs rounded to 11 bits).
 * Shapes are odd on purpose so every tile edge and bounds check runs.
 */
import { after, before, test } from 'node:test';
import { matmulAB, matmulABt, matmulAtB } from '../../engine/backend/cpu/matmul.ts';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { matmul, type LayoutA, type LayoutB } from '../../engine/backend/webgpu/matmul.ts';
import type { Runner } from '../../engine/backend/webgpu/runner.ts';
import { createTensor, download, tensorFrom, type GpuDtype } from '../../engine/backend/webgpu/tensor.ts';
import { dropoutMul } from '../../engine/backend/webgpu/wgsl.ts';
import { Rng } from '../../engine/util/rng.ts';
import { assertClose, gpuForTest, randn } from './gpu.ts';

let ctx: GpuContext;
let runner: Runner;
before(async () => ({ ctx, runner } = await gpuForTest()));
after(() => ctx.destroy());

interface Case {
  la: LayoutA;
  lb: LayoutB;
  M: number;
  N: number;
  K: number;
  ta?: GpuDtype;
  tb?: GpuDtype;
  tc?: GpuDtype;
  alpha?: number;
  accumulate?: boolean;
  bias?: boolean;
  dropout?: { operand: 'a' | 'b'; p: number; seed: number };
}

function cpuReference(c: Case, a: Float32Array, b: Float32Array, c0: Float32Array, bias: Float32Array | null): Float64Array {
  const { M, N, K } = c;
  const out = Float64Array.from(c0);
  const alpha = c.alpha ?? 1;
  const acc = c.accumulate ?? false;
  if (c.la === 'mk' && c.lb === 'nk') matmulABt(out, a, b, bias, M, K, N, acc, alpha);
  else if (c.la === 'mk' && c.lb === 'kn') matmulAB(out, a, b, M, K, N, acc, alpha);
  else if (c.la === 'km' && c.lb === 'kn') matmulAtB(out, a, b, K, M, N, acc, alpha);
  else throw new Error(`no cpu product for ${c.la}/${c.lb}`);
  if (bias && !(c.la === 'mk' && c.lb === 'nk')) for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) out[m * N + n] += bias[n];
  return out;
}

async function check(name: string, c: Case, rtol: number): Promise<void> {
  const rng = new Rng(c.M * 1000 + c.N * 10 + c.K);
  const a = randn(rng, c.M * c.K);
  const b = randn(rng, c.N * c.K);
  const c0 = randn(rng, c.M * c.N);
  const bias = c.bias ? randn(rng, c.N) : null;
  const ta = tensorFrom(ctx, 'a', a, c.ta ?? 'f32');
  const tb = tensorFrom(ctx, 'b', b, c.tb ?? 'f32');
  const tc = c.accumulate ? tensorFrom(ctx, 'c', c0, c.tc ?? 'f32') : createTensor(ctx, 'c', c.M * c.N, c.tc ?? 'f32');
  const tbias = bias ? tensorFrom(ctx, 'bias', bias, c.tc ?? 'f32') : null;
  await runner.runOnce((p) =>
    matmul(p, { a: ta, b: tb, out: tc, M: c.M, N: c.N, K: c.K, layoutA: c.la, layoutB: c.lb, alpha: c.alpha, accumulate: c.accumulate, bias: tbias, dropout: c.dropout }),
  );
  const [got] = await download(ctx, [tc]);
  // The dropout mask is applied to the reference input with the host copy of the hash (same storage index).
  const d = c.dropout;
  const aRef = d?.operand === 'a' ? a.map((v, i) => v * dropoutMul(d.seed, i, d.p)) : a;
  const bRef = d?.operand === 'b' ? b.map((v, i) => v * dropoutMul(d.seed, i, d.p)) : b;
  const expected = cpuReference(c, aRef, bRef, c.accumulate ? c0 : new Float32Array(c.M * c.N), bias);
  assertClose(name, got, expected, rtol);
  for (const t of [ta, tb, tc, tbias]) if (t) ctx.allocator.destroy(t.buffer);
}

test('x·Wᵀ (mk·nk) f32, odd shapes, bias and alpha', async () => {
  await check('NT', { la: 'mk', lb: 'nk', M: 37, N: 45, K: 70 }, 1e-5);
  await check('NT bias alpha', { la: 'mk', lb: 'nk', M: 70, N: 65, K: 17, bias: true, alpha: 0.5 }, 1e-5);
});

test('dY·W (mk·kn) and dYᵀ·X (km·kn) f32, accumulating', async () => {
  await check('NN', { la: 'mk', lb: 'kn', M: 33, N: 70, K: 29 }, 1e-5);
  await check('NN acc', { la: 'mk', lb: 'kn', M: 65, N: 9, K: 40, accumulate: true, alpha: 2 }, 1e-5);
  await check('TN', { la: 'km', lb: 'kn', M: 8, N: 50, K: 131 }, 1e-5);
  await check('TN acc', { la: 'km', lb: 'kn', M: 66, N: 8, K: 77, accumulate: true, alpha: -0.25 }, 1e-5);
});

test('f16 inputs with f32 accumulation, f16 output', async () => {
  await check('NT f16 in', { la: 'mk', lb: 'nk', M: 40, N: 36, K: 90, ta: 'f16', tb: 'f16' }, 1e-2);
  await check('NT f16 out', { la: 'mk', lb: 'nk', M: 40, N: 36, K: 90, ta: 'f16', tb: 'f16', tc: 'f16', bias: true }, 1e-2);
  await check('NN f16 W', { la: 'mk', lb: 'kn', M: 30, N: 20, K: 44, ta: 'f32', tb: 'f16' }, 1e-2);
  await check('TN f16', { la: 'km', lb: 'kn', M: 8, N: 30, K: 70, ta: 'f32', tb: 'f16' }, 1e-2);
});

test('dropout on either operand regenerates the same mask from the storage index', async () => {
  await check('NT dropout', { la: 'mk', lb: 'nk', M: 21, N: 8, K: 48, dropout: { operand: 'a', p: 0.3, seed: 1234 } }, 1e-5);
  await check('TN dropout', { la: 'km', lb: 'kn', M: 8, N: 48, K: 21, dropout: { operand: 'b', p: 0.3, seed: 1234 } }, 1e-5);
});
