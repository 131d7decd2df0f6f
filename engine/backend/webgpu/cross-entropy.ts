/**
 * Causal-LM cross-entropy through the lm_head without the full fp32 logits (Liger/Unsloth style), on the GPU:
 * rows with a target are gathered a chunk at a time, their f32 logits computed, reduced with logsumexp, overwritten
 * in place by the gradient (softmax − one-hot)·gradScale, and multiplied back through lm_head into dHidden.
 *
 * Which rows count changes every batch, so the host uploads `rowIdx` (active rows first, −1 after) and the number of
 * chunks picks one of a few recorded programs. When lm_head is bigger than the adapter's storage-binding limit
 * (Llama's 32000×4096 f16 is 250 MiB; llvmpipe binds 128 MiB), it is bound as several row blocks ("parts") and the
 * chunk's logits are laid out part after part.
 */
import { fill } from './elementwise.ts';
import { grid, WG } from './elementwise.ts';
import { matmul } from './matmul.ts';
import { rowWorkgroup, useSubgroups } from './rmsnorm.ts';
import { grid1D, type Program } from './runner.ts';
import { dtypeBytes, view, type GpuTensor } from './tensor.ts';
import { FLAT_WG, kernelModule, reduceMaxFn, reduceSumFn, sgBuiltins, sgFallback, WG_BUILTINS } from './wgsl.ts';

export interface LmHeadParts {
  /** Row blocks of lm_head [vp_i, H], each within the binding limit. */
  parts: GpuTensor[];
  /** Rows per part (all but the last). */
  vp: number;
}

/** Splits lm_head [V, H] into row blocks of at most `maxBindingBytes`, 128-row multiples (keeps views aligned). */
export function lmHeadParts(lmHead: GpuTensor, V: number, H: number, maxBindingBytes: number): LmHeadParts {
  const rowBytes = H * dtypeBytes(lmHead.dtype);
  if (V * rowBytes <= maxBindingBytes) return { parts: [lmHead], vp: V };
  const vp = Math.max(128, Math.floor(maxBindingBytes / rowBytes / 128) * 128);
  const parts: GpuTensor[] = [];
  for (let v0 = 0; v0 < V; v0 += vp) parts.push(view(lmHead, `${lmHead.name}[${v0}:]`, v0 * H, Math.min(vp, V - v0) * H));
  return { parts, vp };
}

export interface CrossEntropyBuffers {
  /** [M] i32: active rows first, −1 after (uploaded per batch). */
  rowIdx: GpuTensor;
  /** [M] i32: row n's target (labels shifted on the host), −100 = ignored. */
  targets: GpuTensor;
  /** [M] f32: each row's loss (0 for ignored rows), summed on the host in f64. */
  losses: GpuTensor;
  /** [1] f32: lossScale / normalizer (uploaded per batch). */
  gradScale: GpuTensor;
  /** [chunk, H] gathered hidden rows; dtype of hidden. */
  hChunk: GpuTensor;
  /** [chunk·V] f32, part-major. */
  logits: GpuTensor;
  /** [chunk, H] gradient of the gathered rows; dtype of dHidden. */
  dhChunk: GpuTensor | null;
}

export interface CrossEntropyDims {
  rows: number;
  hidden: number;
  vocab: number;
  chunkRows: number;
}

/**
 * Records losses (and dHidden = ∂(gradScale·Σ losses)/∂hidden when dHidden is given) for `nChunks` chunks of
 * active rows. dHidden is overwritten (rows without a target get 0).
 */
export function crossEntropy(prog: Program, hidden: GpuTensor, head: LmHeadParts, dHidden: GpuTensor | null, b: CrossEntropyBuffers, d: CrossEntropyDims, nChunks: number): void {
  const { rows: M, hidden: H, vocab: V, chunkRows: C } = d;
  if (b.logits.size < C * V) throw new Error(`cross-entropy: logits scratch holds ${b.logits.size} values, needs ${C}×${V}`);
  const maxGroups = prog.runner.ctx.limits.maxComputeWorkgroupsPerDimension;
  fill(prog, b.losses, M, 0);
  if (dHidden) fill(prog, dHidden, M * H, 0);
  const nParts = head.parts.length;
  const vpOf = (i: number): number => (i === nParts - 1 ? V - i * head.vp : head.vp);
  const logitPart = (i: number): GpuTensor => view(b.logits, `logits.part${i}`, i * C * head.vp, C * vpOf(i));

  const gather = kernelModule({
    key: `ce.gather:${hidden.dtype}${b.hChunk.dtype}`,
    params: [
      ['n', 'u32'],
      ['H', 'u32'],
      ['c0', 'u32'],
      ['M', 'u32'],
    ],
    bindings: [
      { name: 'idx', type: 'i32', access: 'read' },
      { name: 'h', type: hidden.dtype, access: 'read' },
      { name: 'o', type: b.hChunk.dtype, access: 'read_write' },
    ],
    body: `@compute @workgroup_size(${WG}) fn main(${WG_BUILTINS}) {
  let e = (${FLAT_WG}) * ${WG}u + lid;
  if (e >= p.n) { return; }
  let i = e / p.H;
  let c = e % p.H;
  var row = -1;
  if (p.c0 + i < p.M) { row = idx[p.c0 + i]; }
  var val = 0.0;
  if (row >= 0) { val = f32(h[u32(row) * p.H + c]); }
  o[e] = ${b.hChunk.dtype}(val);
}`,
  });
  const wg = rowWorkgroup(V);
  const sg = useSubgroups(prog, wg);
  const rowsKernel = kernelModule({
    key: `ce.rows:grad=${dHidden !== null}:sg=${sg}`,
    subgroups: sg,
    params: [
      ['c0', 'u32'],
      ['M', 'u32'],
      ['V', 'u32'],
      ['vp', 'u32'],
      ['C', 'u32'],
      ['nParts', 'u32'],
    ],
    bindings: [
      { name: 'idx', type: 'i32', access: 'read' },
      { name: 'targets', type: 'i32', access: 'read' },
      { name: 'gs', type: 'f32', access: 'read' },
      { name: 'logits', type: 'f32', access: 'read_write' },
      { name: 'losses', type: 'f32', access: 'read_write' },
    ],
    body: `${reduceMaxFn('rmax', wg, sg)}
${reduceSumFn('rsum', wg, sg)}
fn li(i: u32, j: u32) -> u32 {
  let part = j / p.vp;
  var w = p.vp;
  if (part == p.nParts - 1u) { w = p.V - part * p.vp; }
  return part * p.C * p.vp + i * w + (j - part * p.vp);
}
@compute @workgroup_size(${wg}) fn main(${WG_BUILTINS}${sgBuiltins(sg)}) {
  ${sgFallback(sg)}
  let i = ${FLAT_WG};
  if (i >= p.C || p.c0 + i >= p.M) { return; }
  // A storage load is not uniform to WGSL, so an inactive row runs the reductions (on row 0) but writes nothing.
  let rowi = idx[p.c0 + i];
  let live = rowi >= 0;
  let row = u32(max(rowi, 0));
  let tgt = u32(max(targets[row], 0));
  var mx = -3.0e38;
  for (var j = lid; j < p.V; j = j + ${wg}u) { mx = max(mx, logits[li(i, j)]); }
  let m = rmax(mx, lid, sg_id, sg_size);
  var s = 0.0;
  for (var j = lid; j < p.V; j = j + ${wg}u) { s = s + exp(logits[li(i, j)] - m); }
  let lse = m + log(rsum(s, lid, sg_id, sg_size));
  if (lid == 0u && live) { losses[row] = lse - logits[li(i, tgt)]; }
  ${
    dHidden !== null
      ? `workgroupBarrier();
  let g = gs[0];
  for (var j = lid; j < p.V; j = j + ${wg}u) {
    let k = li(i, j);
    logits[k] = exp(logits[k] - lse) * g - select(0.0, g, j == tgt);
  }`
      : '_ = gs[0];'
  }
}`,
  });
  const scatter =
    dHidden && b.dhChunk
      ? kernelModule({
          key: `ce.scatter:${b.dhChunk.dtype}${dHidden.dtype}`,
          params: [
            ['n', 'u32'],
            ['H', 'u32'],
            ['c0', 'u32'],
            ['M', 'u32'],
          ],
          bindings: [
            { name: 'idx', type: 'i32', access: 'read' },
            { name: 'dh', type: b.dhChunk.dtype, access: 'read' },
            { name: 'o', type: dHidden.dtype, access: 'read_write' },
          ],
          body: `@compute @workgroup_size(${WG}) fn main(${WG_BUILTINS}) {
  let e = (${FLAT_WG}) * ${WG}u + lid;
  if (e >= p.n) { return; }
  let i = e / p.H;
  if (p.c0 + i >= p.M) { return; }
  let row = idx[p.c0 + i];
  if (row < 0) { return; }
  o[u32(row) * p.H + e % p.H] = ${dHidden.dtype}(f32(dh[e]));
}`,
        })
      : null;

  for (let c = 0; c < nChunks; c++) {
    const c0 = c * C;
    prog.dispatch(gather, [b.rowIdx, hidden, b.hChunk], { n: C * H, H, c0, M }, grid(prog, C * H));
    head.parts.forEach((w, i) => matmul(prog, { a: b.hChunk, b: w, out: logitPart(i), M: C, N: vpOf(i), K: H, layoutA: 'mk', layoutB: 'nk' }));
    prog.dispatch(rowsKernel, [b.rowIdx, b.targets, b.gradScale, b.logits, b.losses], { c0, M, V, vp: head.vp, C, nParts }, grid1D(C, maxGroups));
    if (dHidden && b.dhChunk && scatter) {
      const dh = b.dhChunk;
      head.parts.forEach((w, i) => matmul(prog, { a: logitPart(i), b: w, out: dh, M: C, N: H, K: vpOf(i), layoutA: 'mk', layoutB: 'kn', accumulate: i > 0 }));
      prog.dispatch(scatter, [b.rowIdx, dh, dHidden], { n: C * H, H, c0, M }, grid(prog, C * H));
    }
  }
}
