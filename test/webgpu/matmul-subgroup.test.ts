/**
 * The subgroup matmul kernel and the subgroup-matrix (tensor-core) path.
 * - Subgroup kernel vs the cpu backend's products (f64 accumulation) for x·Wᵀ, dY·W, dYᵀ·X with odd shapes; same
 *   tolerances as matmul.test.ts (f32 1e-5, f16 1e-2), and vs the plain kernel on the same device.
 * - Subgroup-matrix: llvmpipe lacks the feature, so the test checks it is reported absent and 'auto' falls back; the
 *   kernel's tiling is checked by a host emulation against the cpu product. The kernel itself is unverified on GPUs.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { matmulAB, matmulABt, matmulAtB } from '../../engine/backend/cpu/matmul.ts';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { matmul, resolveMatmulPath, type LayoutA, type LayoutB, type MatmulPath } from '../../engine/backend/webgpu/matmul.ts';
import { subgroupMatmulUsable } from '../../engine/backend/webgpu/matmul-subgroup.ts';
import { emulateSubgroupMatrixMatmul, readSubgroupMatrixConfigs, selectSubgroupMatrixConfig, subgroupMatrixWgsl } from '../../engine/backend/webgpu/matmul-subgroup-matrix.ts';
import type { Runner } from '../../engine/backend/webgpu/runner.ts';
import { createTensor, download, f16BitsToF32, f32ToF16Bits, tensorFrom, type GpuDtype } from '../../engine/backend/webgpu/tensor.ts';
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
  t?: GpuDtype;
  alpha?: number;
  accumulate?: boolean;
}

function cpuProduct(la: LayoutA, lb: LayoutB, a: ArrayLike<number>, b: ArrayLike<number>, M: number, N: number, K: number, c0: Float32Array, acc: boolean, alpha: number): Float64Array {
  const out = Float64Array.from(c0);
  const af = Float32Array.from(a);
  const bf = Float32Array.from(b);
  if (la === 'mk' && lb === 'nk') matmulABt(out, af, bf, null, M, K, N, acc, alpha);
  else if (la === 'mk' && lb === 'kn') matmulAB(out, af, bf, M, K, N, acc, alpha);
  else if (la === 'km' && lb === 'kn') matmulAtB(out, af, bf, K, M, N, acc, alpha);
  else throw new Error(`no cpu product for ${la}/${lb}`);
  return out;
}

async function run(c: Case, path: MatmulPath): Promise<{ got: Float32Array; expected: Float64Array }> {
  const rng = new Rng(c.M * 7919 + c.N * 31 + c.K);
  const a = randn(rng, c.M * c.K);
  const b = randn(rng, c.N * c.K);
  const c0 = randn(rng, c.M * c.N);
  const dt = c.t ?? 'f32';
  const ta = tensorFrom(ctx, 'a', a, dt);
  const tb = tensorFrom(ctx, 'b', b, dt);
  const tc = c.accumulate ? tensorFrom(ctx, 'c', c0, 'f32') : createTensor(ctx, 'c', c.M * c.N, 'f32');
  await runner.runOnce((p) => matmul(p, { a: ta, b: tb, out: tc, M: c.M, N: c.N, K: c.K, layoutA: c.la, layoutB: c.lb, alpha: c.alpha, accumulate: c.accumulate, path }));
  const [got] = await download(ctx, [tc]);
  for (const t of [ta, tb, tc]) ctx.allocator.destroy(t.buffer);
  const expected = cpuProduct(c.la, c.lb, a, b, c.M, c.N, c.K, c.accumulate ? c0 : new Float32Array(c.M * c.N), c.accumulate ?? false, c.alpha ?? 1);
  return { got, expected };
}

const CASES: [string, Case, number][] = [
  ['x·Wᵀ f32', { la: 'mk', lb: 'nk', M: 37, N: 45, K: 70 }, 1e-5],
  ['dY·W f32 acc', { la: 'mk', lb: 'kn', M: 65, N: 9, K: 40, accumulate: true, alpha: 2 }, 1e-5],
  ['dYᵀ·X f32', { la: 'km', lb: 'kn', M: 8, N: 50, K: 131, alpha: -0.25 }, 1e-5],
  ['x·Wᵀ f16', { la: 'mk', lb: 'nk', M: 40, N: 36, K: 90, t: 'f16' }, 1e-2],
  ['dY·W f16', { la: 'mk', lb: 'kn', M: 30, N: 20, K: 44, t: 'f16' }, 1e-2],
  ['dYᵀ·X f16', { la: 'km', lb: 'kn', M: 8, N: 30, K: 70, t: 'f16' }, 1e-2],
];

test('this adapter (llvmpipe in CI) has usable subgroups, and auto picks the subgroup kernel', () => {
  assert.ok(ctx.features.subgroups, `${ctx.adapterName} lacks subgroups; the subgroup matmul would go untested`);
  assert.ok(subgroupMatmulUsable(ctx), `subgroup sizes ${ctx.subgroupMinSize}..${ctx.subgroupMaxSize}`);
  const v = { layoutA: 'mk', layoutB: 'nk', ta: 'f32', tb: 'f32', tc: 'f32', bias: null } as const;
  assert.equal(resolveMatmulPath(ctx, v).path, 'subgroup');
  const saved = process.env.LORA_STUDIO_WEBGPU_SUBGROUP_MATMUL;
  process.env.LORA_STUDIO_WEBGPU_SUBGROUP_MATMUL = '0';
  try {
    assert.equal(resolveMatmulPath(ctx, v).path, 'plain');
  } finally {
    if (saved === undefined) delete process.env.LORA_STUDIO_WEBGPU_SUBGROUP_MATMUL;
    else process.env.LORA_STUDIO_WEBGPU_SUBGROUP_MATMUL = saved;
  }
});

test('subgroup kernel matches the cpu products (all three layouts, f32 and f16, odd shapes) and the plain kernel', async () => {
  for (const [name, c, rtol] of CASES) {
    const sg = await run(c, 'subgroup');
    assertClose(`${name} subgroup vs cpu`, sg.got, sg.expected, rtol);
    const plain = await run(c, 'plain');
    assertClose(`${name} plain vs cpu`, plain.got, plain.expected, rtol);
    // Both accumulate the same f32 products in the same k order, so they agree far tighter than either vs f64.
    assertClose(`${name} subgroup vs plain`, sg.got, Float64Array.from(plain.got), 1e-6);
  }
});

test('subgroup-matrix: absent on this adapter, auto falls back, explicit request fails clearly', () => {
  const v = { layoutA: 'mk', layoutB: 'nk', ta: 'f16', tb: 'f16', tc: 'f32', bias: null } as const;
  // llvmpipe never has it; a hardware adapter that does must also report configs.
  if (ctx.software) assert.equal(ctx.features.subgroupMatrix, false);
  if (ctx.features.subgroupMatrix) {
    assert.ok(ctx.subgroupMatrixConfigs.length > 0);
    return;
  }
  assert.deepEqual(ctx.subgroupMatrixConfigs, []);
  assert.notEqual(resolveMatmulPath(ctx, v).path, 'subgroup-matrix');
  assert.throws(() => resolveMatmulPath(ctx, v, 'subgroup-matrix'), /subgroup-matrix path requested but unavailable/);
});

test('subgroup-matrix config selection takes an f16→f32 config and ignores others', () => {
  const configs = readSubgroupMatrixConfigs({
    subgroupMatrixConfigs: [
      { componentType: 'i8', resultComponentType: 'i32', M: 8, N: 8, K: 32 },
      { componentType: 'f16', resultComponentType: 'f16', M: 16, N: 16, K: 16 },
      { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 8, K: 8 },
      { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 },
      { bogus: true },
    ],
  });
  assert.equal(configs.length, 4);
  assert.deepEqual(selectSubgroupMatrixConfig(configs, 32), { tileM: 16, tileN: 16, tileK: 16, workgroup: 32 });
  assert.equal(selectSubgroupMatrixConfig(configs.slice(0, 2), 32), null);
  assert.deepEqual(readSubgroupMatrixConfigs({}), []);
});

test('subgroup-matrix tiling (host emulation of the kernel loops) reproduces the product for odd shapes', () => {
  const rng = new Rng(42);
  const r16 = (x: number): number => f16BitsToF32(f32ToF16Bits(x));
  for (const tiling of [
    { tileM: 8, tileN: 8, tileK: 8, workgroup: 32 },
    { tileM: 16, tileN: 8, tileK: 16, workgroup: 64 },
  ]) {
    for (const [la, lb, M, N, K] of [
      ['mk', 'nk', 19, 13, 37],
      ['mk', 'kn', 9, 21, 17],
      ['km', 'kn', 23, 7, 30],
    ] as const) {
      const a = Array.from(randn(rng, M * K), r16);
      const b = Array.from(randn(rng, N * K), r16);
      const lda = la === 'mk' ? K : M;
      const ldb = lb === 'nk' ? K : N;
      const got = emulateSubgroupMatrixMatmul(tiling, la, lb, a, b, { M, N, K, lda, ldb, ldc: N, alpha: 0.5 });
      const expected = cpuProduct(la, lb, a, b, M, N, K, new Float32Array(M * N), false, 0.5);
      assertClose(`emulated ${la}${lb} ${M}x${N}x${K} tile ${tiling.tileM}x${tiling.tileN}x${tiling.tileK}`, got, expected, 1e-12);
    }
  }
  const { body } = subgroupMatrixWgsl({ layoutA: 'mk', layoutB: 'nk', ta: 'f16', tb: 'f16', tc: 'f32', bias: null }, { tileM: 8, tileN: 8, tileK: 8, workgroup: 32 });
  assert.match(body, /subgroupMatrixLoad<subgroup_matrix_left<f16, 8, 8>>/);
  assert.match(body, /subgroupMatrixMultiplyAccumulate\(left, right, acc\)/);
});
