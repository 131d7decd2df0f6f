/**
 * Tensor-core matmul through Dawn's experimental subgroup matrices (`chromium-experimental-subgroup-matrix`, WGSL
 * `enable chromium_experimental_subgroup_matrix;`). Used for f16×f16 products when the adapter lists an
 * f16→f32 config (adapter.info.subgroupMatrixConfigs); Dawn exposes the feature only with
 * `enable-dawn-features=allow_unsafe_apis`.
 *
 * One workgroup of `subgroupMaxSize` threads computes one cfg.M×cfg.N output block: per cfg.K-deep step the threads
 * stage A and B (any layout, bounds zero-padded, dropout applied, rounded to f16) into workgroup memory row-major,
 * the subgroup multiplies them with subgroupMatrixMultiplyAccumulate into an f32 result matrix, which is stored to
 * workgroup memory and then written out through the same epilogue as the other kernels (alpha, bias, accumulate).
 * Staging through workgroup memory is what makes odd shapes and the 'km'/'nk' layouts work: the matrix loads need
 * whole in-bounds blocks. If the subgroup is smaller than the workgroup, every subgroup computes the same block and
 * stores identical values; that costs throughput, not correctness.
 *
 * UNVERIFIED ON HARDWARE: no adapter available to this project's CI exposes the feature (Mesa llvmpipe does not), so
 * this WGSL has never been compiled by Dawn. The tile and index arithmetic is checked on the host by
 * emulateSubgroupMatrixMatmul(), which mirrors the kernel loop for loop.
 */
import type { GpuContext, SubgroupMatrixConfig } from './device.ts';

export { readSubgroupMatrixConfigs, SUBGROUP_MATRIX_FEATURE, type SubgroupMatrixConfig } from './device.ts';
import { checkF16, loadA, loadB, MATMUL_PARAMS, matmulBindings, storeC, variantKey, type LayoutA, type LayoutB, type MatmulVariant } from './matmul-wgsl.ts';
import { f16BitsToF32, f32ToF16Bits } from './tensor.ts';
import { DROPOUT_FN, kernelModule, type KernelSpec } from './wgsl.ts';

export interface SubgroupMatrixTiling {
  tileM: number;
  tileN: number;
  tileK: number;
  /** Threads per workgroup: the adapter's subgroupMaxSize (the extension requires a multiple of it). */
  workgroup: number;
}

/** The f16-input, f32-result config with the largest block, or null (feature absent or no such config). */
export function selectSubgroupMatrixConfig(configs: SubgroupMatrixConfig[], subgroupMaxSize: number): SubgroupMatrixTiling | null {
  const ok = configs.filter((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M > 0 && c.N > 0 && c.K > 0);
  if (ok.length === 0 || subgroupMaxSize <= 0) return null;
  ok.sort((x, y) => y.M * y.N * y.K - x.M * x.N * x.K);
  const c = ok[0];
  return { tileM: c.M, tileN: c.N, tileK: c.K, workgroup: subgroupMaxSize };
}

export function pickSubgroupMatrixConfig(ctx: GpuContext): SubgroupMatrixTiling | null {
  if (!ctx.features.subgroupMatrix || !ctx.features.subgroups || !ctx.features.f16) return null;
  return selectSubgroupMatrixConfig(ctx.subgroupMatrixConfigs, ctx.subgroupMaxSize);
}

/** The WGSL source, separate from the device so tests can inspect it where no adapter has the feature. */
export function subgroupMatrixWgsl(v: MatmulVariant, t: SubgroupMatrixTiling): { key: string; body: string } {
  const { tileM: TM, tileN: TN, tileK: TK, workgroup: WG } = t;
  const body = `
${DROPOUT_FN}
var<workgroup> As: array<f16, ${TM * TK}>;
var<workgroup> Bs: array<f16, ${TK * TN}>;
var<workgroup> Cs: array<f32, ${TM * TN}>;

@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let m0 = wid.y * ${TM}u;
  let n0 = wid.x * ${TN}u;
  var acc = subgroup_matrix_result<f32, ${TN}, ${TM}>();
  for (var k0 = 0u; k0 < p.K; k0 = k0 + ${TK}u) {
    for (var e = lid; e < ${TM * TK}u; e = e + ${WG}u) {
      let m = m0 + e / ${TK}u; let k = k0 + e % ${TK}u;
      ${loadA(v)}
      As[e] = f16(val);
    }
    for (var e = lid; e < ${TK * TN}u; e = e + ${WG}u) {
      let k = k0 + e / ${TN}u; let n = n0 + e % ${TN}u;
      ${loadB(v)}
      Bs[e] = f16(val);
    }
    workgroupBarrier();
    let left = subgroupMatrixLoad<subgroup_matrix_left<f16, ${TK}, ${TM}>>(&As, 0u, false, ${TK}u);
    let right = subgroupMatrixLoad<subgroup_matrix_right<f16, ${TN}, ${TK}>>(&Bs, 0u, false, ${TN}u);
    acc = subgroupMatrixMultiplyAccumulate(left, right, acc);
    workgroupBarrier();
  }
  subgroupMatrixStore(&Cs, 0u, acc, false, ${TN}u);
  workgroupBarrier();
  for (var e = lid; e < ${TM * TN}u; e = e + ${WG}u) {
    let m = m0 + e / ${TN}u; let n = n0 + e % ${TN}u;
    if (m < p.M && n < p.N) {
      ${storeC(v, 'Cs[e]')}
    }
  }
}`;
  return { key: `matmul.sgmat:${variantKey(v)}:${TM}x${TN}x${TK}:wg=${WG}`, body };
}

export function matmulSubgroupMatrixKernel(v: MatmulVariant, ctx: GpuContext, t: SubgroupMatrixTiling): KernelSpec {
  const f16 = checkF16(v, ctx);
  const { key, body } = subgroupMatrixWgsl(v, t);
  const spec = kernelModule({ key, f16, subgroups: true, params: MATMUL_PARAMS, bindings: matmulBindings(v), body });
  return { ...spec, code: spec.code.replace('enable subgroups;', 'enable subgroups;\nenable chromium_experimental_subgroup_matrix;') };
}

function roundF16(x: number): number {
  return f16BitsToF32(f32ToF16Bits(x));
}

/**
 * Host mirror of the kernel's loops (grid, staging index arithmetic, zero padding, f16 rounding of staged values,
 * block multiply-accumulate, epilogue bounds) for out = alpha·op(A)·op(B), no bias/dropout/accumulate. It exists so a
 * test can check the tiling against an independent product for shapes that are not multiples of the block.
 */
export function emulateSubgroupMatrixMatmul(
  t: SubgroupMatrixTiling,
  layoutA: LayoutA,
  layoutB: LayoutB,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dims: { M: number; N: number; K: number; lda: number; ldb: number; ldc: number; alpha: number },
): Float64Array {
  const { tileM: TM, tileN: TN, tileK: TK, workgroup: WG } = t;
  const { M, N, K, lda, ldb, ldc, alpha } = dims;
  const c = new Float64Array((M - 1) * ldc + N);
  const aAt = (m: number, k: number): number => (m < M && k < K ? a[layoutA === 'mk' ? m * lda + k : k * lda + m] : 0);
  const bAt = (k: number, n: number): number => (n < N && k < K ? b[layoutB === 'nk' ? n * ldb + k : k * ldb + n] : 0);
  const gridX = Math.ceil(N / TN);
  const gridY = Math.ceil(M / TM);
  for (let wy = 0; wy < gridY; wy++) {
    for (let wx = 0; wx < gridX; wx++) {
      const m0 = wy * TM;
      const n0 = wx * TN;
      const acc = new Float64Array(TM * TN);
      for (let k0 = 0; k0 < K; k0 += TK) {
        const As = new Float64Array(TM * TK);
        const Bs = new Float64Array(TK * TN);
        for (let lid = 0; lid < WG; lid++) {
          for (let e = lid; e < TM * TK; e += WG) As[e] = roundF16(aAt(m0 + Math.floor(e / TK), k0 + (e % TK)));
          for (let e = lid; e < TK * TN; e += WG) Bs[e] = roundF16(bAt(k0 + Math.floor(e / TN), n0 + (e % TN)));
        }
        // subgroupMatrixLoad(row-major, stride TK / TN) then multiply-accumulate: acc[r][c] += Σ_k L[r][k]·R[k][c].
        for (let r = 0; r < TM; r++) {
          for (let col = 0; col < TN; col++) {
            let s = 0;
            for (let k = 0; k < TK; k++) s += As[r * TK + k] * Bs[k * TN + col];
            acc[r * TN + col] += s;
          }
        }
      }
      for (let lid = 0; lid < WG; lid++) {
        for (let e = lid; e < TM * TN; e += WG) {
          const m = m0 + Math.floor(e / TN);
          const n = n0 + (e % TN);
          if (m < M && n < N) c[m * ldc + n] = alpha * acc[e];
        }
      }
    }
  }
  return c;
}
