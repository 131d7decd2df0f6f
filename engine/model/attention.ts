/**
 * Causal scaled-dot-product attention with grouped-query heads and an optional sliding window, one query row at a time
 * (a T-long score row in f64, never a T×T matrix). Forward saves each row's logsumexp; backward recomputes the
 * probabilities from it, as FlashAttention does.
 *
 * The (sequence, head) pairs are independent, so engine/backend/cpu/attention-split.ts can split them over threads.
 *
 * Layout: q/out [B, Tq, nHeads·D], k/v [B, Tk, nKvHeads·D]. Query t sits at absolute position Tk − Tq + t, so the
 * same code serves training (Tq = Tk) and incremental decoding against a KV cache (Tq new tokens after Tk − Tq cached).
 * Query head h reads kv head floor(h / (nHeads / nKvHeads)). Key j is visible to a query at position p when
 * j ≤ p and, with a window W, j > p − W (transformers' sliding_window_overlay).
 */
import type { FloatArray } from './types.ts';

export interface AttentionShape {
  batch: number;
  queryLen: number;
  keyLen: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Sliding window (Mistral); null = full causal. */
  window: number | null;
}

/** Throws naming the config field when the shape cannot be computed. */
export function check(s: AttentionShape): void {
  if (s.nKvHeads <= 0 || s.nHeads % s.nKvHeads !== 0) throw new Error(`attention: num_attention_heads ${s.nHeads} is not a multiple of num_key_value_heads ${s.nKvHeads}`);
  if (s.queryLen > s.keyLen) throw new Error(`attention: ${s.queryLen} queries but only ${s.keyLen} keys`);
  if (s.window !== null && !(Number.isInteger(s.window) && s.window > 0)) throw new Error(`attention: sliding_window must be a positive integer, got ${s.window}`);
}

function firstKey(pos: number, window: number | null): number {
  return window === null ? 0 : Math.max(0, pos - window + 1);
}

/** out = softmax(q·kᵀ·D^−½ + mask)·v; lse[B, nHeads, Tq] = logsumexp of each scaled score row (null: not saved). */
export function forward(out: FloatArray, lse: FloatArray | null, q: FloatArray, k: FloatArray, v: FloatArray, s: AttentionShape): void {
  check(s);
  forwardUnits(out, lse, q, k, v, s, 0, s.batch * s.nHeads);
}

/** forward for the (sequence, query head) pairs u ∈ [u0, u1), u = b·nHeads + h: each writes only its own rows. */
export function forwardUnits(out: FloatArray, lse: FloatArray | null, q: FloatArray, k: FloatArray, v: FloatArray, s: AttentionShape, u0: number, u1: number): void {
  const { queryLen: Tq, keyLen: Tk, nHeads: nH, nKvHeads: nKv, headDim: D, window } = s;
  const group = nH / nKv;
  const scale = 1 / Math.sqrt(D);
  const qStride = nH * D;
  const kStride = nKv * D;
  const qOff = Tk - Tq;
  const p = new Float64Array(Tk);
  const acc = new Float64Array(D);
  for (let u = u0; u < u1; u++) {
    const b = Math.floor(u / nH);
    const h = u % nH;
    const kvh = Math.floor(h / group);
    const kBase = b * Tk * kStride + kvh * D;
    for (let t = 0; t < Tq; t++) {
      const pos = qOff + t;
      const lo = firstKey(pos, window);
      const qo = (b * Tq + t) * qStride + h * D;
      let max = -Infinity;
      for (let j = lo; j <= pos; j++) {
        const ko = kBase + j * kStride;
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[qo + d] * k[ko + d];
        const sc = dot * scale;
        p[j] = sc;
        if (sc > max) max = sc;
      }
      let sum = 0;
      for (let j = lo; j <= pos; j++) {
        const e = Math.exp(p[j] - max);
        p[j] = e;
        sum += e;
      }
      acc.fill(0);
      for (let j = lo; j <= pos; j++) {
        const w = p[j];
        const vo = kBase + j * kStride;
        for (let d = 0; d < D; d++) acc[d] += w * v[vo + d];
      }
      const inv = 1 / sum;
      for (let d = 0; d < D; d++) out[qo + d] = acc[d] * inv;
      if (lse !== null) lse[(b * nH + h) * Tq + t] = max + Math.log(sum);
    }
  }
}

/**
 * dq, dk, dv += gradients. With P = softmax row, dP_j = dO·v_j, Δ = Σ_j P_j·dP_j, dS_j = P_j·(dP_j − Δ):
 * dq += scale·Σ_j dS_j·k_j, dk_j += scale·dS_j·q, dv_j += P_j·dO. dk/dv of one kv head are summed in f64 over its
 * query heads and rounded once.
 */
export function backward(
  dq: FloatArray,
  dk: FloatArray,
  dv: FloatArray,
  dOut: FloatArray,
  _out: FloatArray,
  lse: FloatArray,
  q: FloatArray,
  k: FloatArray,
  v: FloatArray,
  s: AttentionShape,
): void {
  check(s);
  backwardUnits(dq, dk, dv, dOut, lse, q, k, v, s, 0, s.batch * s.nKvHeads);
}

/** backward for the (sequence, kv head) pairs u ∈ [u0, u1), u = b·nKvHeads + kvh: each owns its kv head's dk/dv. */
export function backwardUnits(
  dq: FloatArray,
  dk: FloatArray,
  dv: FloatArray,
  dOut: FloatArray,
  lse: FloatArray,
  q: FloatArray,
  k: FloatArray,
  v: FloatArray,
  s: AttentionShape,
  u0: number,
  u1: number,
): void {
  const { queryLen: Tq, keyLen: Tk, nHeads: nH, nKvHeads: nKv, headDim: D, window } = s;
  const group = nH / nKv;
  const scale = 1 / Math.sqrt(D);
  const qStride = nH * D;
  const kStride = nKv * D;
  const qOff = Tk - Tq;
  const p = new Float64Array(Tk);
  const dp = new Float64Array(Tk);
  const dqAcc = new Float64Array(D);
  const dkAcc = new Float64Array(Tk * D);
  const dvAcc = new Float64Array(Tk * D);
  for (let u = u0; u < u1; u++) {
    const b = Math.floor(u / nKv);
    const kvh = u % nKv;
    const kBase = b * Tk * kStride + kvh * D;
    dkAcc.fill(0);
    dvAcc.fill(0);
    for (let h = kvh * group; h < (kvh + 1) * group; h++) {
      for (let t = 0; t < Tq; t++) {
        const pos = qOff + t;
        const lo = firstKey(pos, window);
        const qo = (b * Tq + t) * qStride + h * D;
        const l = lse[(b * nH + h) * Tq + t];
        let delta = 0;
        for (let j = lo; j <= pos; j++) {
          const ko = kBase + j * kStride;
          let dot = 0;
          let dpj = 0;
          for (let d = 0; d < D; d++) {
            dot += q[qo + d] * k[ko + d];
            dpj += dOut[qo + d] * v[ko + d];
          }
          const pj = Math.exp(dot * scale - l);
          p[j] = pj;
          dp[j] = dpj;
          delta += pj * dpj;
        }
        dqAcc.fill(0);
        for (let j = lo; j <= pos; j++) {
          const pj = p[j];
          const ds = pj * (dp[j] - delta) * scale;
          const ko = kBase + j * kStride;
          const a = j * D;
          for (let d = 0; d < D; d++) {
            dqAcc[d] += ds * k[ko + d];
            dkAcc[a + d] += ds * q[qo + d];
            dvAcc[a + d] += pj * dOut[qo + d];
          }
        }
        for (let d = 0; d < D; d++) dq[qo + d] += dqAcc[d];
      }
    }
    for (let j = 0; j < Tk; j++) {
      const ko = kBase + j * kStride;
      const a = j * D;
      for (let d = 0; d < D; d++) {
        dk[ko + d] += dkAcc[a + d];
        dv[ko + d] += dvAcc[a + d];
      }
    }
  }
}
