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
 */
import type { GpuContext } from './device.ts';
import type { ParamValue, Program } from './runner.ts';
import type { GpuDtype, GpuTensor } from './tensor.ts';
import { DROPOUT_FN, dropoutThreshold, kernelModule, loopBound, type KernelSpec } from './wgsl.ts';

export type LayoutA = 'mk' | 'km';
export type LayoutB = 'nk' | 'kn';
export type FloatDtype = 'f32' | 'f16';

export interface MatmulVariant {
  layoutA: LayoutA;
  layoutB: LayoutB;
  ta: FloatDtype;
  tb: FloatDtype;
  tc: FloatDtype;
  bias: FloatDtype | null;
}

const BM = 64;
const BN = 64;
const BK = 16;

export function matmulKernel(v: MatmulVariant, ctx: GpuContext): KernelSpec {
  const f16 = v.ta === 'f16' || v.tb === 'f16' || v.tc === 'f16' || v.bias === 'f16';
  if (f16 && !ctx.features.f16) throw new Error('matmul: f16 operands need the shader-f16 feature, which this adapter lacks');
  const key = `matmul:${v.layoutA}${v.layoutB}:${v.ta}${v.tb}${v.tc}:bias=${v.bias ?? 'none'}`;
  const bindings = [
    { name: 'a', type: v.ta, access: 'read' as const },
    { name: 'b', type: v.tb, access: 'read' as const },
    { name: 'c', type: v.tc, access: 'read_write' as const },
  ];
  if (v.bias) bindings.push({ name: 'bias', type: v.bias, access: 'read' as const });
  const aIndex = v.layoutA === 'mk' ? 'm * p.lda + k' : 'k * p.lda + m';
  const bIndex = v.layoutB === 'nk' ? 'n * p.ldb + k' : 'k * p.ldb + n';
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
        var val = 0.0;
        if (m < p.M && k < p.K) { let idx = ${aIndex}; val = f32(a[idx]); if (p.drop == 1u) { val = val * dropout_mul(p.seed, idx, p.threshold, p.inv_keep); } }
        As[kk * ${BM}u + mm] = val;
      }
      {
        ${loadB}
        let n = n0 + nn; let k = k0 + kk;
        var val = 0.0;
        if (n < p.N && k < p.K) { let idx = ${bIndex}; val = f32(b[idx]); if (p.drop == 2u) { val = val * dropout_mul(p.seed, idx, p.threshold, p.inv_keep); } }
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
      var v = p.alpha * acc[i * 4u + j];
      if (p.drop == 3u) { v = v * dropout_mul(p.seed, m * p.ldc + n, p.threshold, p.inv_keep); }
      ${v.bias ? 'v = v + f32(bias[n]);' : ''}
      if (p.accumulate != 0u) { v = v + f32(c[m * p.ldc + n]); }
      c[m * p.ldc + n] = ${v.tc}(v);
    }
  }
}`;
  return kernelModule({
    key,
    f16,
    params: [
      ['M', 'u32'],
      ['N', 'u32'],
      ['K', 'u32'],
      ['alpha', 'f32'],
      ['accumulate', 'u32'],
      ['drop', 'u32'],
      ['seed', 'u32'],
      ['threshold', 'u32'],
      ['inv_keep', 'f32'],
      ['lda', 'u32'],
      ['ldb', 'u32'],
      ['ldc', 'u32'],
    ],
    bindings,
    body,
  });
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
  need(x.b, x.layoutB === 'nk' ? (N - 1) * ldb + K : (K - 1) * ldb + N, 'B');
  need(x.out, (M - 1) * ldc + N, 'out');
  if (x.bias) need(x.bias, N, 'bias');
  const drop = x.dropout && x.dropout.p > 0 ? x.dropout : null;
  const v: MatmulVariant = {
    layoutA: x.layoutA,
    layoutB: x.layoutB,
    ta: floatDtype(x.a, 'A'),
    tb: floatDtype(x.b, 'B'),
    tc: floatDtype(x.out, 'out'),
    bias: x.bias ? floatDtype(x.bias, 'bias') : null,
  };
  const spec = matmulKernel(v, prog.runner.ctx);
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
    [Math.ceil(N / BN), Math.ceil(M / BM), 1],
  );
}

/** The dtype a variant reads for the given tensor dtype (exported for callers choosing casts). */
export function isFloat(d: GpuDtype): d is FloatDtype {
  return d === 'f32' || d === 'f16';
}
