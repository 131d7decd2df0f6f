/**
 * Tiled matrix product in WGSL: out[M,N] (=|+=) alpha · Σ_k A(m,k)·B(k,n) (+ bias[n]), f32 accumulation whatever the
 * operand dtypes (f16 inputs for the frozen weights and activations in mixed precision, f32 for LoRA).
 *
 * The three products of a Linear are layouts of the same kernel:
 *   x·Wᵀ   A = x  [M,K] ('mk'),  B = W  [N,K] ('nk')
 *   dY·W   A = dY [M,K] ('mk'),  B = W  [K,N] ('kn')
 *   dYᵀ·X  A = dY [K,M] ('km'),  B = X  [K,N] ('kn')
 * Each workgroup computes a 64×64 tile (16×16 threads, 4×4 per thread) staging 16-deep slices of A and B in
 * workgroup memory. Accumulate and dropout are uniform runtime switches rather than compile-time variants: every
 * variant is one more pipeline to compile, which on a software adapter costs seconds. Dropout (LoRA branch input) is applied while loading, from a stateless hash of the element's
 * storage index, so the backward product regenerates the forward mask.
 *
 * Two faster families share the tile shape, parameters and epilogue (matmul-wgsl.ts) and are picked by
 * resolveMatmulPath(): a subgroup kernel (A fragments shared in registers by subgroupShuffle, matmul-subgroup.ts) when
 * the device has `subgroups`, and a tensor-core kernel (matmul-subgroup-matrix.ts) for f16 inputs when Dawn exposes
 * `chromium-experimental-subgroup-matrix` with an f16→f32 config.
 */
import type { GpuContext } from './device.ts';
import { matmulSubgroupKernel, subgroupMatmulUsable } from './matmul-subgroup.ts';
import { matmulSubgroupMatrixKernel, pickSubgroupMatrixConfig, type SubgroupMatrixTiling } from './matmul-subgroup-matrix.ts';
import { checkF16, loadA as loadAExpr, loadB as loadBExpr, MATMUL_PARAMS, matmulBindings, matmulPrelude, storeC, variantKey, type FloatDtype, type LayoutA, type LayoutB, type MatmulVariant } from './matmul-wgsl.ts';
import type { ParamValue, Program } from './runner.ts';
import type { GpuTensor } from './tensor.ts';
import { DROPOUT_FN, dropoutThreshold, kernelModule, loopBound, type KernelSpec } from './wgsl.ts';

export type { FloatDtype, LayoutA, LayoutB, MatmulVariant } from './matmul-wgsl.ts';
export { isFloat } from './matmul-wgsl.ts';

const BM = 64;
const BN = 64;
const BK = 16;

export function matmulKernel(v: MatmulVariant, ctx: GpuContext): KernelSpec {
  const f16 = checkF16(v, ctx);
  const key = `matmul:${variantKey(v)}`;
  // Thread e of 256 loads 4 elements of each 64×16 slice; consecutive threads read consecutive addresses of the
  // operand's contiguous dimension so global loads coalesce.
  const loadA =
    v.layoutA === 'mk'
      ? `let mm = e / ${BK}u; let kk = e % ${BK}u;`
      : `let kk = e / ${BM}u; let mm = e % ${BM}u;`;
  const loadB =
    v.layoutB === 'nk'
      ? `let nn = e / ${BK}u; let kk = e % ${BK}u;`
      : `let kk = e / ${BN}u; let nn = e % ${BN}u;`;
  const L4 = loopBound(4, ctx.software);
  const body = `
${DROPOUT_FN}
${matmulPrelude(v)}
var<workgroup> As: array<f32, ${BK * BM}>;
var<workgroup> Bs: array<f32, ${BK * BN}>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let m0 = wid.y * ${BM}u;
  let n0 = wid.x * ${BN}u;
  var acc: array<f32, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }
  for (var k0 = 0u; k0 < p.K; k0 = k0 + ${BK}u) {
    for (var r = 0u; r < ${loopBound(4, ctx.software)}; r++) {
      let e = lid + r * 256u;
      {
        ${loadA}
        let m = m0 + mm; let k = k0 + kk;
        ${loadAExpr(v)}
        As[kk * ${BM}u + mm] = val;
      }
      {
        ${loadB}
        let n = n0 + nn; let k = k0 + kk;
        ${loadBExpr(v)}
        Bs[kk * ${BN}u + nn] = val;
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${loopBound(BK, ctx.software)}; kk++) {
      var av: array<f32, 4>;
      var bv: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { av[i] = As[kk * ${BM}u + l.y + i * 16u]; }
      for (var j = 0u; j < 4u; j++) { bv[j] = Bs[kk * ${BN}u + l.x + j * 16u]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] = fma(av[i], bv[j], acc[i * 4u + j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < ${L4}; i++) {
    let m = m0 + l.y + i * 16u;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < ${L4}; j++) {
      let n = n0 + l.x + j * 16u;
      if (n >= p.N) { continue; }
      ${storeC(v, 'acc[i * 4u + j]')}
    }
  }
}`;
  return kernelModule({ key, f16, params: MATMUL_PARAMS, bindings: matmulBindings(v), body });
}

/** Which kernel family runs a product; 'auto' takes the fastest the device supports. */
export type MatmulPath = 'auto' | 'plain' | 'subgroup' | 'subgroup-matrix';

/**
 * The path 'auto' resolves to on this device. LORA_STUDIO_WEBGPU_SUBGROUP_MATMUL=0 forces the plain tiled kernel
 * (a switch for bisecting a driver bug without rebuilding).
 */
export function resolveMatmulPath(ctx: GpuContext, v: MatmulVariant, want: MatmulPath = 'auto'): { path: Exclude<MatmulPath, 'auto'>; tiling: SubgroupMatrixTiling | null } {
  if (want === 'plain') return { path: 'plain', tiling: null };
  if (want === 'auto' && process.env.LORA_STUDIO_WEBGPU_SUBGROUP_MATMUL === '0') return { path: 'plain', tiling: null };
  if (want === 'auto' || want === 'subgroup-matrix') {
    // Tensor cores multiply f16 tiles; only products whose inputs are already f16 keep their precision there.
    const tiling = v.ta === 'f16' && v.tb === 'f16' ? pickSubgroupMatrixConfig(ctx) : null;
    if (tiling) return { path: 'subgroup-matrix', tiling };
    if (want === 'subgroup-matrix') throw new Error(`matmul: subgroup-matrix path requested but unavailable on ${ctx.adapterName} for ${variantKey(v)}`);
  }
  if (subgroupMatmulUsable(ctx)) return { path: 'subgroup', tiling: null };
  if (want === 'subgroup') throw new Error(`matmul: subgroup path requested but ${ctx.adapterName} lacks usable subgroups (sizes ${ctx.subgroupMinSize}..${ctx.subgroupMaxSize})`);
  return { path: 'plain', tiling: null };
}

export interface MatmulArgs {
  a: GpuTensor;
  b: GpuTensor;
  out: GpuTensor;
  M: number;
  N: number;
  K: number;
  layoutA: LayoutA;
  layoutB: LayoutB;
  alpha?: number;
  accumulate?: boolean;
  bias?: GpuTensor | null;
  /** Row strides (elements) when an operand is a column block of a wider matrix; default dense. */
  lda?: number;
  ldb?: number;
  ldc?: number;
  /** Dropout on operand A or B (the LoRA input x), or on the product C, with this seed and probability. */
  dropout?: { operand: 'a' | 'b' | 'c'; p: number; seed: ParamValue } | null;
  /** Kernel family; default 'auto' (see resolveMatmulPath). */
  path?: MatmulPath;
}

function floatDtype(t: GpuTensor, what: string): FloatDtype {
  if (t.dtype !== 'f32' && t.dtype !== 'f16') throw new Error(`matmul: ${what} '${t.name}' must be f32 or f16, got ${t.dtype}`);
  return t.dtype;
}

/** Records out = alpha·op(A)·op(B) (+bias) (+out). */
export function matmul(prog: Program, x: MatmulArgs): void {
  const { M, N, K } = x;
  const need = (t: GpuTensor, n: number, what: string): void => {
    if (t.size < n) throw new Error(`matmul: ${what} '${t.name}' has ${t.size} elements, needs ${n} (M=${M} N=${N} K=${K})`);
  };
  const lda = x.lda ?? (x.layoutA === 'mk' ? K : M);
  const ldb = x.ldb ?? (x.layoutB === 'nk' ? K : N);
  const ldc = x.ldc ?? N;
  need(x.a, x.layoutA === 'mk' ? (M - 1) * lda + K : (K - 1) * lda + M, 'A');
  const packed = x.b.packed;
  if (packed) {
    // A packed weight is always a whole [rows, cols] matrix: its blocks run along cols, so no strided views.
    const [rows, cols] = x.layoutB === 'nk' ? [N, K] : [K, N];
    if (packed.rows !== rows || packed.cols !== cols) throw new Error(`matmul: packed B '${x.b.name}' is [${packed.rows}, ${packed.cols}], the product needs [${rows}, ${cols}] (layout ${x.layoutB})`);
    if (x.ldb !== undefined && x.ldb !== cols) throw new Error(`matmul: packed B '${x.b.name}' cannot be read with a row stride`);
    if (x.dropout?.operand === 'b') throw new Error(`matmul: dropout cannot apply to the packed weight '${x.b.name}'`);
  } else {
    need(x.b, x.layoutB === 'nk' ? (N - 1) * ldb + K : (K - 1) * ldb + N, 'B');
  }
  need(x.out, (M - 1) * ldc + N, 'out');
  if (x.bias) need(x.bias, N, 'bias');
  const drop = x.dropout && x.dropout.p > 0 ? x.dropout : null;
  const v: MatmulVariant = {
    layoutA: x.layoutA,
    layoutB: x.layoutB,
    ta: floatDtype(x.a, 'A'),
    tb: packed ? packed.format : floatDtype(x.b, 'B'),
    tc: floatDtype(x.out, 'out'),
    bias: x.bias ? floatDtype(x.bias, 'bias') : null,
  };
  const ctx = prog.runner.ctx;
  const chosen = resolveMatmulPath(ctx, v, x.path);
  let spec: KernelSpec;
  let tile: [number, number] = [BN, BM];
  if (chosen.path === 'subgroup-matrix' && chosen.tiling) {
    spec = matmulSubgroupMatrixKernel(v, ctx, chosen.tiling);
    tile = [chosen.tiling.tileN, chosen.tiling.tileM];
  } else {
    spec = chosen.path === 'subgroup' ? matmulSubgroupKernel(v, ctx) : matmulKernel(v, ctx);
  }
  const tensors = [x.a, x.b, x.out];
  if (x.bias) tensors.push(x.bias);
  prog.dispatch(
    spec,
    tensors,
    {
      M,
      N,
      K,
      alpha: x.alpha ?? 1,
      accumulate: x.accumulate ? 1 : 0,
      drop: drop === null ? 0 : { a: 1, b: 2, c: 3 }[drop.operand],
      seed: drop ? drop.seed : 0,
      threshold: drop ? dropoutThreshold(drop.p) : 0,
      inv_keep: drop ? 1 / (1 - drop.p) : 1,
      lda,
      ldb,
      ldc,
    },
    [Math.ceil(N / tile[0]), Math.ceil(M / tile[1]), 1],
  );
}
