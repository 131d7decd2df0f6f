/**
 * Fused causal attention with grouped-query heads (and Mistral's sliding window), FlashAttention-2 style:
 * no T×T matrix is ever stored. Layout as the cpu op: q/out [B·T, nH·D], k/v [B·T, nKv·D], lse/delta [B, nH, T] f32.
 *
 * forward:   one thread per query row; K/V tiles staged in workgroup memory; online softmax per tile; saves
 *            lse = max + log(sum) of each scaled score row.
 * backward:  delta = rowsum(dO∘O); dQ with one thread per query row, dK/dV with one thread per key row summing over
 *            the query heads of its kv group (so no atomics); both recompute P = exp(s − lse).
 * cached:    generation — new queries at a position offset against a KV cache (attentionCached).
 * Math is f32 whatever the storage dtype.
 */
import type { GpuContext } from './device.ts';
import { FLAT_INDEX, grid, WG as EW_WG } from './elementwise.ts';
import type { ParamValue, Program } from './runner.ts';
import type { GpuTensor } from './tensor.ts';
import { kernelModule, loopBound, WG_BUILTINS } from './wgsl.ts';

export interface AttentionDims {
  batch: number;
  T: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Sliding window (keys j with pos − W < j ≤ pos); null = full causal. */
  window: number | null;
}

/** Query (or key) rows per workgroup: one thread each. */
const ROWS = 64;

/** Rows of the other operand staged per tile, so two tiles of D floats stay within 16 KiB of workgroup memory. */
function tileRows(D: number): number {
  return Math.max(1, Math.min(32, Math.floor(2048 / D)));
}

function check(d: AttentionDims, ctx: GpuContext): void {
  if (d.nHeads % d.nKvHeads !== 0) throw new Error(`attention: num_attention_heads ${d.nHeads} is not a multiple of num_key_value_heads ${d.nKvHeads}`);
  if (d.headDim > 256) throw new Error(`attention: head_dim ${d.headDim} > 256 is not supported by the webgpu kernels`);
  if (d.nHeads > ctx.limits.maxComputeWorkgroupsPerDimension || d.batch > ctx.limits.maxComputeWorkgroupsPerDimension) {
    throw new Error(`attention: ${d.nHeads} heads × batch ${d.batch} exceed the dispatch grid`);
  }
}

const COMMON_PARAMS: [string, 'u32' | 'f32'][] = [
  ['T', 'u32'],
  ['nH', 'u32'],
  ['nKv', 'u32'],
  ['window', 'u32'],
  ['scale', 'f32'],
];

function commonParams(d: AttentionDims): Record<string, number> {
  return { T: d.T, nH: d.nHeads, nKv: d.nKvHeads, window: d.window ?? 0, scale: 1 / Math.sqrt(d.headDim) };
}

/** WGSL: first key visible from position `pos` (window 0 = none). */
const FIRST_KEY = `fn first_key(pos: u32) -> u32 { if (p.window == 0u || pos + 1u < p.window) { return 0u; } return pos + 1u - p.window; }`;

export function attentionForward(prog: Program, out: GpuTensor, lse: GpuTensor, q: GpuTensor, k: GpuTensor, v: GpuTensor, d: AttentionDims): void {
  check(d, prog.runner.ctx);
  const D = d.headDim;
  const BK = tileRows(D);
  const soft = prog.runner.ctx.software;
  const LD = loopBound(D, soft);
  const LK = loopBound(BK, soft);
  const spec = kernelModule({
    key: `attention.fwd:${q.dtype}${k.dtype}${v.dtype}${out.dtype}:D=${D}`,
    params: COMMON_PARAMS,
    bindings: [
      { name: 'q', type: q.dtype, access: 'read' },
      { name: 'k', type: k.dtype, access: 'read' },
      { name: 'v', type: v.dtype, access: 'read' },
      { name: 'o', type: out.dtype, access: 'read_write' },
      { name: 'lse', type: 'f32', access: 'read_write' },
    ],
    body: `
${FIRST_KEY}
var<workgroup> Ks: array<f32, ${BK * D}>;
var<workgroup> Vs: array<f32, ${BK * D}>;
@compute @workgroup_size(${ROWS}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let b = wid.z;
  let h = wid.y;
  let kvh = h / (p.nH / p.nKv);
  let q0 = wid.x * ${ROWS}u;
  let t = q0 + lid;
  let valid = t < p.T;
  let qStride = p.nH * ${D}u;
  let kStride = p.nKv * ${D}u;
  let qo = (b * p.T + t) * qStride + h * ${D}u;
  var qv: array<f32, ${D}>;
  var acc: array<f32, ${D}>;
  for (var c = 0u; c < ${LD}; c++) {
    acc[c] = 0.0;
    qv[c] = select(0.0, f32(q[qo + c]) * p.scale, valid);
  }
  var m = -3.0e38;
  var l = 0.0;
  let lo = first_key(q0);
  let hi = min(q0 + ${ROWS}u, p.T);
  let myLo = first_key(t);
  let kBase = b * p.T * kStride + kvh * ${D}u;
  for (var j0 = (lo / ${BK}u) * ${BK}u; j0 < hi; j0 = j0 + ${BK}u) {
    for (var e = lid; e < ${BK * D}u; e = e + ${ROWS}u) {
      let jj = e / ${D}u;
      let c = e % ${D}u;
      let j = j0 + jj;
      var kk = 0.0;
      var vv = 0.0;
      if (j < p.T) { kk = f32(k[kBase + j * kStride + c]); vv = f32(v[kBase + j * kStride + c]); }
      Ks[e] = kk;
      Vs[e] = vv;
    }
    workgroupBarrier();
    if (valid) {
      var sc: array<f32, ${BK}>;
      var bmax = -3.0e38;
      for (var jj = 0u; jj < ${LK}; jj++) {
        let j = j0 + jj;
        var s = -3.0e38;
        if (j <= t && j >= myLo) {
          var dot = 0.0;
          for (var c = 0u; c < ${LD}; c++) { dot = fma(qv[c], Ks[jj * ${D}u + c], dot); }
          s = dot;
          bmax = max(bmax, s);
        }
        sc[jj] = s;
      }
      if (bmax > -1.0e38) {
        let mNew = max(m, bmax);
        let corr = exp(m - mNew);
        l = l * corr;
        for (var c = 0u; c < ${LD}; c++) { acc[c] = acc[c] * corr; }
        for (var jj = 0u; jj < ${LK}; jj++) {
          if (sc[jj] > -1.0e38) {
            let pj = exp(sc[jj] - mNew);
            l = l + pj;
            for (var c = 0u; c < ${LD}; c++) { acc[c] = fma(pj, Vs[jj * ${D}u + c], acc[c]); }
          }
        }
        m = mNew;
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    let inv = 1.0 / l;
    for (var c = 0u; c < ${LD}; c++) { o[qo + c] = ${out.dtype}(acc[c] * inv); }
    lse[(b * p.nH + h) * p.T + t] = m + log(l);
  }
}`,
  });
  prog.dispatch(spec, [q, k, v, out, lse], commonParams(d), [Math.ceil(d.T / ROWS), d.nHeads, d.batch]);
}

/** delta[b,h,t] = Σ_c dO·O over the head's D values. */
export function attentionDelta(prog: Program, delta: GpuTensor, dOut: GpuTensor, out: GpuTensor, d: AttentionDims): void {
  const n = d.batch * d.T * d.nHeads;
  const LD = loopBound(d.headDim, prog.runner.ctx.software);
  const spec = kernelModule({
    key: `attention.delta:${dOut.dtype}${out.dtype}:D=${d.headDim}`,
    params: [
      ['n', 'u32'],
      ['T', 'u32'],
      ['nH', 'u32'],
    ],
    bindings: [
      { name: 'dO', type: dOut.dtype, access: 'read' },
      { name: 'O', type: out.dtype, access: 'read' },
      { name: 'delta', type: 'f32', access: 'read_write' },
    ],
    body: `@compute @workgroup_size(${EW_WG}) fn main(${WG_BUILTINS}) {
  ${FLAT_INDEX}
  let h = i % p.nH;
  let token = i / p.nH;
  let b = token / p.T;
  let t = token % p.T;
  let base = i * ${d.headDim}u;
  var s = 0.0;
  for (var c = 0u; c < ${LD}; c++) { s = fma(f32(dO[base + c]), f32(O[base + c]), s); }
  delta[(b * p.nH + h) * p.T + t] = s;
}`,
  });
  prog.dispatch(spec, [dOut, out, delta], { n, T: d.T, nH: d.nHeads }, grid(prog, n));
}

/**
 * dq, dk, dv (=, not +=) of out = attention(q, k, v). `delta` is scratch [B, nH, T] f32.
 */
export function attentionBackward(
  prog: Program,
  dq: GpuTensor,
  dk: GpuTensor,
  dv: GpuTensor,
  delta: GpuTensor,
  dOut: GpuTensor,
  out: GpuTensor,
  lse: GpuTensor,
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  d: AttentionDims,
): void {
  check(d, prog.runner.ctx);
  attentionDelta(prog, delta, dOut, out, d);
  const D = d.headDim;
  const BK = tileRows(D);
  const soft = prog.runner.ctx.software;
  const LD = loopBound(D, soft);
  const LK = loopBound(BK, soft);
  const dqSpec = kernelModule({
    key: `attention.dq:${q.dtype}${k.dtype}${v.dtype}${dOut.dtype}${dq.dtype}:D=${D}`,
    params: COMMON_PARAMS,
    bindings: [
      { name: 'q', type: q.dtype, access: 'read' },
      { name: 'k', type: k.dtype, access: 'read' },
      { name: 'v', type: v.dtype, access: 'read' },
      { name: 'dO', type: dOut.dtype, access: 'read' },
      { name: 'lse', type: 'f32', access: 'read' },
      { name: 'delta', type: 'f32', access: 'read' },
      { name: 'dq', type: dq.dtype, access: 'read_write' },
    ],
    body: `
${FIRST_KEY}
var<workgroup> Ks: array<f32, ${BK * D}>;
var<workgroup> Vs: array<f32, ${BK * D}>;
@compute @workgroup_size(${ROWS}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let b = wid.z;
  let h = wid.y;
  let kvh = h / (p.nH / p.nKv);
  let q0 = wid.x * ${ROWS}u;
  let t = q0 + lid;
  let valid = t < p.T;
  let qStride = p.nH * ${D}u;
  let kStride = p.nKv * ${D}u;
  let qo = (b * p.T + t) * qStride + h * ${D}u;
  var qv: array<f32, ${D}>;
  var dov: array<f32, ${D}>;
  var acc: array<f32, ${D}>;
  for (var c = 0u; c < ${LD}; c++) {
    acc[c] = 0.0;
    qv[c] = select(0.0, f32(q[qo + c]), valid);
    dov[c] = select(0.0, f32(dO[qo + c]), valid);
  }
  let row = (b * p.nH + h) * p.T + min(t, p.T - 1u);
  let L = lse[row];
  let Dl = delta[row];
  let hi = min(q0 + ${ROWS}u, p.T);
  let myLo = first_key(t);
  let kBase = b * p.T * kStride + kvh * ${D}u;
  for (var j0 = (first_key(q0) / ${BK}u) * ${BK}u; j0 < hi; j0 = j0 + ${BK}u) {
    for (var e = lid; e < ${BK * D}u; e = e + ${ROWS}u) {
      let j = j0 + e / ${D}u;
      let c = e % ${D}u;
      var kk = 0.0;
      var vv = 0.0;
      if (j < p.T) { kk = f32(k[kBase + j * kStride + c]); vv = f32(v[kBase + j * kStride + c]); }
      Ks[e] = kk;
      Vs[e] = vv;
    }
    workgroupBarrier();
    if (valid) {
      for (var jj = 0u; jj < ${LK}; jj++) {
        let j = j0 + jj;
        if (j <= t && j >= myLo) {
          var dot = 0.0;
          var dp = 0.0;
          for (var c = 0u; c < ${LD}; c++) {
            dot = fma(qv[c], Ks[jj * ${D}u + c], dot);
            dp = fma(dov[c], Vs[jj * ${D}u + c], dp);
          }
          let pj = exp(dot * p.scale - L);
          let ds = pj * (dp - Dl) * p.scale;
          for (var c = 0u; c < ${LD}; c++) { acc[c] = fma(ds, Ks[jj * ${D}u + c], acc[c]); }
        }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    for (var c = 0u; c < ${LD}; c++) { dq[qo + c] = ${dq.dtype}(acc[c]); }
  }
}`,
  });
  prog.dispatch(dqSpec, [q, k, v, dOut, lse, delta, dq], commonParams(d), [Math.ceil(d.T / ROWS), d.nHeads, d.batch]);

  const BQ = tileRows(D);
  const LQ = loopBound(BQ, soft);
  const dkvSpec = kernelModule({
    key: `attention.dkv:${q.dtype}${k.dtype}${v.dtype}${dOut.dtype}${dk.dtype}${dv.dtype}:D=${D}`,
    params: COMMON_PARAMS,
    bindings: [
      { name: 'q', type: q.dtype, access: 'read' },
      { name: 'k', type: k.dtype, access: 'read' },
      { name: 'v', type: v.dtype, access: 'read' },
      { name: 'dO', type: dOut.dtype, access: 'read' },
      { name: 'lse', type: 'f32', access: 'read' },
      { name: 'delta', type: 'f32', access: 'read' },
      { name: 'dk', type: dk.dtype, access: 'read_write' },
      { name: 'dv', type: dv.dtype, access: 'read_write' },
    ],
    body: `
var<workgroup> Qs: array<f32, ${BQ * D}>;
var<workgroup> Gs: array<f32, ${BQ * D}>;
var<workgroup> Ls: array<f32, ${BQ}>;
var<workgroup> Ds: array<f32, ${BQ}>;
@compute @workgroup_size(${ROWS}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let b = wid.z;
  let kvh = wid.y;
  let group = p.nH / p.nKv;
  let k0 = wid.x * ${ROWS}u;
  let j = k0 + lid;
  let valid = j < p.T;
  let qStride = p.nH * ${D}u;
  let kStride = p.nKv * ${D}u;
  let ko = (b * p.T + j) * kStride + kvh * ${D}u;
  var kv: array<f32, ${D}>;
  var vv: array<f32, ${D}>;
  var dkA: array<f32, ${D}>;
  var dvA: array<f32, ${D}>;
  for (var c = 0u; c < ${LD}; c++) {
    kv[c] = select(0.0, f32(k[ko + c]), valid);
    vv[c] = select(0.0, f32(v[ko + c]), valid);
    dkA[c] = 0.0;
    dvA[c] = 0.0;
  }
  // Queries that can see any key of this block: positions [k0, last key + window).
  var qEnd = p.T;
  if (p.window != 0u) { qEnd = min(p.T, k0 + ${ROWS}u - 1u + p.window); }
  for (var h = kvh * group; h < (kvh + 1u) * group; h++) {
    for (var i0 = (k0 / ${BQ}u) * ${BQ}u; i0 < qEnd; i0 = i0 + ${BQ}u) {
      for (var e = lid; e < ${BQ * D}u; e = e + ${ROWS}u) {
        let i = i0 + e / ${D}u;
        let c = e % ${D}u;
        var qq = 0.0;
        var gg = 0.0;
        if (i < p.T) {
          let qo = (b * p.T + i) * qStride + h * ${D}u + c;
          qq = f32(q[qo]);
          gg = f32(dO[qo]);
        }
        Qs[e] = qq;
        Gs[e] = gg;
      }
      for (var e = lid; e < ${BQ}u; e = e + ${ROWS}u) {
        let i = min(i0 + e, p.T - 1u);
        Ls[e] = lse[(b * p.nH + h) * p.T + i];
        Ds[e] = delta[(b * p.nH + h) * p.T + i];
      }
      workgroupBarrier();
      if (valid) {
        for (var ii = 0u; ii < ${LQ}; ii++) {
          let i = i0 + ii;
          if (i < p.T && j <= i && j >= first_key(i)) {
            var dot = 0.0;
            var dp = 0.0;
            for (var c = 0u; c < ${LD}; c++) {
              dot = fma(Qs[ii * ${D}u + c], kv[c], dot);
              dp = fma(Gs[ii * ${D}u + c], vv[c], dp);
            }
            let pj = exp(dot * p.scale - Ls[ii]);
            let ds = pj * (dp - Ds[ii]) * p.scale;
            for (var c = 0u; c < ${LD}; c++) {
              dvA[c] = fma(pj, Gs[ii * ${D}u + c], dvA[c]);
              dkA[c] = fma(ds, Qs[ii * ${D}u + c], dkA[c]);
            }
          }
        }
      }
      workgroupBarrier();
    }
  }
  if (valid) {
    for (var c = 0u; c < ${LD}; c++) {
      dk[ko + c] = ${dk.dtype}(dkA[c]);
      dv[ko + c] = ${dv.dtype}(dvA[c]);
    }
  }
}
${FIRST_KEY}`,
  });
  prog.dispatch(dkvSpec, [q, k, v, dOut, lse, delta, dk, dv], commonParams(d), [Math.ceil(d.T / ROWS), d.nKvHeads, d.batch]);
}

export interface CachedAttentionDims {
  /** New query rows (one sequence): positions pos .. pos + queries − 1. */
  queries: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  window: number | null;
}

/** Threads of the cached kernel: one per key of a tile when scoring, one per channel when accumulating P·V. */
const CACHED_WG = 64;

/**
 * Attention of `queries` new rows against a KV cache (generation; no lse, no backward). q/out [queries, nH·D]; k/v
 * are the cache [capacity, nKv·D] whose rows 0 .. pos + queries − 1 are filled (the new tokens' keys already
 * appended). Query t sits at position P = pos + t and sees keys [first_key(P), P]: causal with an offset, so one
 * kernel serves a prefill (pos 0 or a later chunk) and single-token decode. `pos` may be a thunk.
 *
 * One workgroup per (query, head): a tile of 64 keys is scored one key per thread, the online-softmax update is
 * shared through workgroup memory, and each thread accumulates P·V for its own channels. With one query per step
 * the parallelism has to come from the keys and channels, not from query rows as in attentionForward.
 */
export function attentionCached(prog: Program, out: GpuTensor, q: GpuTensor, k: GpuTensor, v: GpuTensor, d: CachedAttentionDims, pos: ParamValue): void {
  const ctx = prog.runner.ctx;
  if (d.nHeads % d.nKvHeads !== 0) throw new Error(`attention: num_attention_heads ${d.nHeads} is not a multiple of num_key_value_heads ${d.nKvHeads}`);
  if (d.headDim > 256) throw new Error(`attention: head_dim ${d.headDim} > 256 is not supported by the webgpu kernels`);
  const maxGroups = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (d.queries > maxGroups || d.nHeads > maxGroups) throw new Error(`attention: ${d.queries} queries × ${d.nHeads} heads exceed the dispatch grid (${maxGroups} per dimension)`);
  const D = d.headDim;
  const W = CACHED_WG;
  const CPT = Math.ceil(D / W);
  const soft = ctx.software;
  const LD = loopBound(D, soft);
  const LW = loopBound(W, soft);
  const LC = loopBound(CPT, soft);
  const spec = kernelModule({
    key: `attention.cached:${q.dtype}${k.dtype}${v.dtype}${out.dtype}:D=${D}`,
    params: [
      ['nH', 'u32'],
      ['nKv', 'u32'],
      ['window', 'u32'],
      ['scale', 'f32'],
      ['pos', 'u32'],
    ],
    bindings: [
      { name: 'q', type: q.dtype, access: 'read' },
      { name: 'k', type: k.dtype, access: 'read' },
      { name: 'v', type: v.dtype, access: 'read' },
      { name: 'o', type: out.dtype, access: 'read_write' },
    ],
    body: `
${FIRST_KEY}
var<workgroup> Qs: array<f32, ${D}>;
var<workgroup> S: array<f32, ${W}>;
@compute @workgroup_size(${W}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wid.x;
  let h = wid.y;
  let kvh = h / (p.nH / p.nKv);
  let P = p.pos + t;
  let qo = (t * p.nH + h) * ${D}u;
  let kStride = p.nKv * ${D}u;
  let kOff = kvh * ${D}u;
  for (var c = lid; c < ${D}u; c = c + ${W}u) { Qs[c] = f32(q[qo + c]) * p.scale; }
  workgroupBarrier();
  var acc: array<f32, ${CPT}>;
  for (var i = 0u; i < ${LC}; i++) { acc[i] = 0.0; }
  var m = -3.0e38;
  var l = 0.0;
  for (var j0 = first_key(P); j0 <= P; j0 = j0 + ${W}u) {
    let j = j0 + lid;
    var s = -3.0e38;
    if (j <= P) {
      var dot = 0.0;
      let ko = j * kStride + kOff;
      for (var c = 0u; c < ${LD}; c++) { dot = fma(Qs[c], f32(k[ko + c]), dot); }
      s = dot;
    }
    S[lid] = s;
    workgroupBarrier();
    var bmax = -3.0e38;
    for (var jj = 0u; jj < ${LW}; jj++) { bmax = max(bmax, S[jj]); }
    // The tile's first key is always visible, so mNew is a real score and masked keys get exp(−3e38 − mNew) = 0.
    let mNew = max(m, bmax);
    let corr = exp(m - mNew);
    workgroupBarrier();
    S[lid] = exp(s - mNew);
    workgroupBarrier();
    l = l * corr;
    for (var i = 0u; i < ${LC}; i++) { acc[i] = acc[i] * corr; }
    let n = min(${W}u, P + 1u - j0);
    for (var jj = 0u; jj < n; jj++) {
      let pj = S[jj];
      l = l + pj;
      let vo = (j0 + jj) * kStride + kOff;
      for (var i = 0u; i < ${LC}; i++) {
        let c = lid + i * ${W}u;
        if (c < ${D}u) { acc[i] = fma(pj, f32(v[vo + c]), acc[i]); }
      }
    }
    m = mNew;
    workgroupBarrier();
  }
  let inv = 1.0 / l;
  for (var i = 0u; i < ${LC}; i++) {
    let c = lid + i * ${W}u;
    if (c < ${D}u) { o[qo + c] = ${out.dtype}(acc[i] * inv); }
  }
}`,
  });
  prog.dispatch(spec, [q, k, v, out], { nH: d.nHeads, nKv: d.nKvHeads, window: d.window ?? 0, scale: 1 / Math.sqrt(D), pos }, [d.queries, d.nHeads, 1]);
}
