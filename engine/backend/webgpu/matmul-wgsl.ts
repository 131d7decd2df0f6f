/**
 * What every matmul kernel variant (plain tiled, subgroup, subgroup-matrix) shares: the operand layouts, the uniform
 * parameters, the bindings and the store epilogue. Keeping them in one place means the variants differ only in how
 * they stage and multiply tiles, so parity between them is a statement about that part alone.
 */
import { isPackedFormat, type PackedFormat } from '../../quant/packed-weight.ts';
import type { GpuContext } from './device.ts';
import { packedDecoder } from './quant-wgsl.ts';
import type { GpuDtype } from './tensor.ts';
import type { BindingDecl, ParamType } from './wgsl.ts';

export type LayoutA = 'mk' | 'km';
export type LayoutB = 'nk' | 'kn';
export type FloatDtype = 'f32' | 'f16';

export interface MatmulVariant {
  layoutA: LayoutA;
  layoutB: LayoutB;
  ta: FloatDtype;
  /** A packed format: B is a frozen weight in its quantized bytes (QLoRA), decoded element by element as it is staged. */
  tb: FloatDtype | PackedFormat;
  tc: FloatDtype;
  bias: FloatDtype | null;
}

export const MATMUL_PARAMS: [string, ParamType][] = [
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
];

export function usesF16(v: MatmulVariant): boolean {
  return v.ta === 'f16' || v.tb === 'f16' || v.tc === 'f16' || v.bias === 'f16';
}

export function checkF16(v: MatmulVariant, ctx: GpuContext): boolean {
  const f16 = usesF16(v);
  if (f16 && !ctx.features.f16) throw new Error('matmul: f16 operands need the shader-f16 feature, which this adapter lacks');
  return f16;
}

export function variantKey(v: MatmulVariant): string {
  return `${v.layoutA}${v.layoutB}:${v.ta}${v.tb}${v.tc}:bias=${v.bias ?? 'none'}`;
}

export function matmulBindings(v: MatmulVariant): BindingDecl[] {
  const bindings: BindingDecl[] = [
    { name: 'a', type: v.ta, access: 'read' },
    { name: 'b', type: isPackedFormat(v.tb) ? 'u32' : v.tb, access: 'read' },
    { name: 'c', type: v.tc, access: 'read_write' },
  ];
  if (v.bias) bindings.push({ name: 'bias', type: v.bias, access: 'read' });
  return bindings;
}

/** Storage index of A(m,k) / B(k,n) for the layout (WGSL expression over `m`, `n`, `k`). */
export function aIndexExpr(l: LayoutA): string {
  return l === 'mk' ? 'm * p.lda + k' : 'k * p.lda + m';
}
export function bIndexExpr(l: LayoutB): string {
  return l === 'nk' ? 'n * p.ldb + k' : 'k * p.ldb + n';
}

/** WGSL statements: `val` = A(m,k) as f32 (0 outside the matrix), dropout applied when it is on operand A. */
export function loadA(v: MatmulVariant): string {
  return `var val = 0.0;
        if (m < p.M && k < p.K) { let idx = ${aIndexExpr(v.layoutA)}; val = f32(a[idx]); if (p.drop == 1u) { val = val * dropout_mul(p.seed, idx, p.threshold, p.inv_keep); } }`;
}
export function loadB(v: MatmulVariant): string {
  if (isPackedFormat(v.tb)) {
    // B(k, n) is W[n][k] for x·Wᵀ ('nk', W is [N, K]) and W[k][n] for dY·W ('kn', W is [K, N]).
    const call = v.layoutB === 'nk' ? 'wq(n, k, p.N, p.K)' : 'wq(k, n, p.K, p.N)';
    return `var val = 0.0;
        if (n < p.N && k < p.K) { val = ${call}; }`;
  }
  return `var val = 0.0;
        if (n < p.N && k < p.K) { let idx = ${bIndexExpr(v.layoutB)}; val = f32(b[idx]); if (p.drop == 2u) { val = val * dropout_mul(p.seed, idx, p.threshold, p.inv_keep); } }`;
}

/** Module-level WGSL a variant's loads call: the packed weight's decoder `wq` (nothing for float operands). */
export function matmulPrelude(v: MatmulVariant): string {
  return isPackedFormat(v.tb) ? packedDecoder(v.tb, 'b', 'wq') : '';
}

/** WGSL statements storing the f32 product `prod` at (m, n), which the caller has bounds-checked. */
export function storeC(v: MatmulVariant, prod: string): string {
  return `var v = p.alpha * ${prod};
      if (p.drop == 3u) { v = v * dropout_mul(p.seed, m * p.ldc + n, p.threshold, p.inv_keep); }
      ${v.bias ? 'v = v + f32(bias[n]);' : ''}
      if (p.accumulate != 0u) { v = v + f32(c[m * p.ldc + n]); }
      c[m * p.ldc + n] = ${v.tc}(v);`;
}

/** The dtype a variant reads for the given tensor dtype (exported for callers choosing casts). */
export function isFloat(d: GpuDtype): d is FloatDtype {
  return d === 'f32' || d === 'f16';
}
