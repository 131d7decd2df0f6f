/**
 * One-row products for KV-cached decoding: matvec and linearRow. The tiled matmul computes 64-row tiles, so a single
 * row through it does 64× the arithmetic; a decode step's linears and lm_head are all single rows.
 */
import { grid1D, type Program } from './runner.ts';
import type { GpuLinear, GpuLoraBranch } from './lora.ts';
import { packedDecoder } from './quant-wgsl.ts';
import type { GpuTensor } from './tensor.ts';
import { FLAT_WG, kernelModule, loopBound, WG_BUILTINS } from './wgsl.ts';

export interface MatvecArgs {
  /** [N] out. */
  y: GpuTensor;
  /** [K] in. */
  x: GpuTensor;
  /** [N, K] row-major (a Linear's weight, a LoRA A or B). */
  w: GpuTensor;
  N: number;
  K: number;
  alpha?: number;
  bias?: GpuTensor | null;
  accumulate?: boolean;
  /** Threads per row (a power of two ≤ 256); default by adapter and K. Tests pin it to cover every variant. */
  lanes?: number;
}

/** Threads of a matvec workgroup: ROWS rows × `lanes` threads that split each row's k. */
const MATVEC_WG = 256;

/**
 * y[n] (=|+=) alpha·Σ_k x[k]·w[n, k] (+ bias[n]), f32 accumulation. A workgroup covers 256/lanes rows; the lanes of
 * a row stride over k (neighbouring threads read neighbouring weights) and their partial sums meet in workgroup
 * memory. Many rows per workgroup keeps the workgroup count low, which is what a software adapter pays for. The
 * epilogue is the tiled matmul's (alpha, then bias, then the old y), so a row comes out as matmul would give it up
 * to the order of the f32 sum.
 */
export function matvec(prog: Program, a: MatvecArgs): void {
  const { y, x, w, N, K } = a;
  if (x.size < K) throw new Error(`matvec: x '${x.name}' has ${x.size} elements, needs ${K}`);
  const packed = w.packed ?? null;
  if (packed && (packed.rows !== N || packed.cols !== K)) throw new Error(`matvec: packed w '${w.name}' is [${packed.rows}, ${packed.cols}], needs [${N}, ${K}]`);
  if (!packed && w.size < N * K) throw new Error(`matvec: w '${w.name}' has ${w.size} elements, needs ${N}×${K}`);
  if (y.size < N) throw new Error(`matvec: y '${y.name}' has ${y.size} elements, needs ${N}`);
  if (a.bias && a.bias.size < N) throw new Error(`matvec: bias '${a.bias.name}' has ${a.bias.size} elements, needs ${N}`);
  // A software adapter pays per invocation (one thread per row is fastest there); a GPU wants coalesced reads.
  const lanes = a.lanes ?? (prog.runner.ctx.software ? 1 : K >= 512 ? 32 : 8);
  if (!(Number.isInteger(lanes) && lanes >= 1 && lanes <= MATVEC_WG && MATVEC_WG % lanes === 0)) throw new Error(`matvec: lanes must divide ${MATVEC_WG}, got ${lanes}`);
  const rows = MATVEC_WG / lanes;
  const bias = a.bias ?? null;
  const bindings = [
    { name: 'x', type: x.dtype, access: 'read' as const },
    { name: 'w', type: w.dtype, access: 'read' as const },
    { name: 'y', type: y.dtype, access: 'read_write' as const },
  ];
  if (bias) bindings.push({ name: 'bias', type: bias.dtype, access: 'read' as const });
  const spec = kernelModule({
    key: `matvec:${x.dtype}${packed ? packed.format : w.dtype}${y.dtype}:bias=${bias?.dtype ?? 'none'}:lanes=${lanes}`,
    params: [
      ['N', 'u32'],
      ['K', 'u32'],
      ['alpha', 'f32'],
      ['accumulate', 'u32'],
    ],
    bindings,
    body: `
${packed ? packedDecoder(packed.format, 'w', 'wq') : ''}
var<workgroup> part: array<f32, ${MATVEC_WG}>;
@compute @workgroup_size(${MATVEC_WG}) fn main(${WG_BUILTINS}) {
  let lane = lid % ${lanes}u;
  let n = (${FLAT_WG}) * ${rows}u + lid / ${lanes}u;
  let valid = n < p.N;
  var s = 0.0;
  if (valid) {
    let base = n * p.K;
    for (var k = lane; k < p.K; k = k + ${lanes}u) { s = fma(f32(x[k]), ${packed ? 'wq(n, k, p.N, p.K)' : 'f32(w[base + k])'}, s); }
  }
  part[lid] = s;
  workgroupBarrier();
  if (valid && lane == 0u) {
    var total = 0.0;
    for (var i = 0u; i < ${loopBound(lanes, prog.runner.ctx.software)}; i++) { total = total + part[lid + i]; }
    var v = p.alpha * total;
    ${bias ? 'v = v + f32(bias[n]);' : ''}
    if (p.accumulate != 0u) { v = v + f32(y[n]); }
    y[n] = ${y.dtype}(v);
  }
}`,
  });
  const tensors = bias ? [x, w, y, bias] : [x, w, y];
  prog.dispatch(spec, tensors, { N, K, alpha: a.alpha ?? 1, accumulate: a.accumulate ? 1 : 0 }, grid1D(Math.ceil(N / rows), prog.runner.ctx.limits.maxComputeWorkgroupsPerDimension));
}

/**
 * linearForward (lora.ts) for a single row without dropout: y = W·x + b, u = A·x, y += s·B·u, with the same
 * intermediate roundings (u in f32, y stored after the base product and again after the LoRA term).
 */
export function linearRow(prog: Program, y: GpuTensor, x: GpuTensor, lin: GpuLinear, lora: GpuLoraBranch | null): void {
  const { inFeatures: K, outFeatures: N } = lin;
  matvec(prog, { y, x, w: lin.weight, N, K, bias: lin.bias });
  if (lora === null) return;
  matvec(prog, { y: lora.u, x, w: lora.A, N: lora.r, K });
  matvec(prog, { y, x: lora.u, w: lora.B, N, K: lora.r, alpha: lora.scaling, accumulate: true });
}
