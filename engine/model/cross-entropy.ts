/**
 * Causal-LM cross-entropy over the lm_head without materialising [rows, vocab] logits: rows with a target are taken a
 * chunk at a time, their logits computed in f64, reduced with logsumexp, and overwritten in place by the gradient
 * (softmax − one-hot)·gradScale, which is multiplied back through lm_head into dHidden (Liger/Unsloth style).
 * Rows whose target is IGNORE_INDEX cost nothing. lm_head is frozen, so it gets no gradient. A packed lm_head (QLoRA) is
 * decoded a panel at a time inside the products (Matmuls), never held whole in floats.
 *
 * `targets[n]` is the token row n must predict (already shifted: the caller maps labels[t+1] to row t).
 */
import { serialMatmuls, type Matmuls } from './matmul.ts';
import { IGNORE_INDEX, type FloatArray, type LinearWeight } from './types.ts';

export interface CrossEntropyShape {
  rows: number;
  hidden: number;
  vocab: number;
  /** Rows per chunk of logits; the chunk holds chunkRows × vocab f64 values. */
  chunkRows: number;
}

/** A chunk size that keeps one chunk of f64 logits near 16 MiB. */
export function defaultChunkRows(vocab: number): number {
  return Math.max(1, Math.floor((1 << 21) / Math.max(1, vocab)));
}

export interface CrossEntropyResult {
  /** Σ over counted rows of −log p(target). */
  sumLoss: number;
  /** Rows with a target other than IGNORE_INDEX. */
  count: number;
}

/** Loss only (evaluation). losses[n] (optional) receives each row's loss, 0 for ignored rows. */
export function forward(losses: Float64Array | null, hidden: FloatArray, lmHead: LinearWeight, targets: Int32Array, s: CrossEntropyShape, mm: Matmuls = serialMatmuls): CrossEntropyResult {
  return run(null, losses, hidden, lmHead, targets, s, 0, mm);
}

/** dHidden += gradScale · ∂(Σ row losses)/∂hidden, recomputing the logits. */
export function backward(dHidden: FloatArray, hidden: FloatArray, lmHead: LinearWeight, targets: Int32Array, s: CrossEntropyShape, gradScale: number, mm: Matmuls = serialMatmuls): void {
  run(dHidden, null, hidden, lmHead, targets, s, gradScale, mm);
}

/** forward and backward in one pass over the logits (training). */
export function forwardBackward(
  dHidden: FloatArray,
  losses: Float64Array | null,
  hidden: FloatArray,
  lmHead: LinearWeight,
  targets: Int32Array,
  s: CrossEntropyShape,
  gradScale: number,
  mm: Matmuls = serialMatmuls,
): CrossEntropyResult {
  return run(dHidden, losses, hidden, lmHead, targets, s, gradScale, mm);
}

function run(
  dHidden: FloatArray | null,
  losses: Float64Array | null,
  hidden: FloatArray,
  lmHead: LinearWeight,
  targets: Int32Array,
  s: CrossEntropyShape,
  gradScale: number,
  mm: Matmuls,
): CrossEntropyResult {
  const { rows, hidden: C, vocab: V } = s;
  if (!(Number.isInteger(s.chunkRows) && s.chunkRows > 0)) throw new Error(`cross-entropy: chunkRows must be a positive integer, got ${s.chunkRows}`);
  if (lmHead.length !== V * C) throw new Error(`cross-entropy: lm_head has ${lmHead.length} values, expected vocab ${V} × hidden ${C}`);
  const active: number[] = [];
  for (let n = 0; n < rows; n++) {
    const t = targets[n];
    if (t === IGNORE_INDEX) continue;
    if (!(t >= 0 && t < V)) throw new Error(`cross-entropy: target ${t} at row ${n} is outside the vocabulary [0, ${V}) and is not ${IGNORE_INDEX}`);
    active.push(n);
  }
  if (losses !== null) losses.fill(0, 0, rows);
  const chunk = Math.min(s.chunkRows, Math.max(1, active.length));
  // mm.f64: memory the products may split over threads (the portable backend's pool).
  const h = mm.f64(chunk * C);
  const logits = mm.f64(chunk * V);
  const dh = dHidden === null ? null : mm.f64(chunk * C);
  let sumLoss = 0;
  for (let c0 = 0; c0 < active.length; c0 += chunk) {
    const cr = Math.min(chunk, active.length - c0);
    for (let i = 0; i < cr; i++) {
      const src = active[c0 + i] * C;
      for (let c = 0; c < C; c++) h[i * C + c] = hidden[src + c];
    }
    mm.matmulABt(logits, h, lmHead, null, cr, C, V);
    for (let i = 0; i < cr; i++) {
      const row = active[c0 + i];
      const o = i * V;
      let max = -Infinity;
      for (let j = 0; j < V; j++) if (logits[o + j] > max) max = logits[o + j];
      const tgt = targets[row];
      const targetLogit = logits[o + tgt];
      // exp once: the shifted exponentials are kept in place and become the softmax below.
      let sum = 0;
      for (let j = 0; j < V; j++) {
        const e = Math.exp(logits[o + j] - max);
        logits[o + j] = e;
        sum += e;
      }
      const loss = max + Math.log(sum) - targetLogit;
      sumLoss += loss;
      if (losses !== null) losses[row] = loss;
      if (dh !== null) {
        const k = gradScale / sum;
        for (let j = 0; j < V; j++) logits[o + j] *= k;
        logits[o + tgt] -= gradScale;
      }
    }
    if (dh !== null && dHidden !== null) {
      mm.matmulAB(dh, logits, lmHead, cr, V, C);
      for (let i = 0; i < cr; i++) {
        const dst = active[c0 + i] * C;
        for (let c = 0; c < C; c++) dHidden[dst + c] += dh[i * C + c];
      }
    }
  }
  return { sumLoss, count: active.length };
}
