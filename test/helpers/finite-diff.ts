/** Central finite differences and gradient comparison for float64 gradient checks. */
import assert from 'node:assert/strict';
import type { FloatArray } from '../../engine/model/types.ts';

/** ∂f/∂x[i] by central differences, restoring x[i] afterwards. */
export function numericGrad(f: () => number, x: FloatArray, indices: Iterable<number>, h = 1e-5): number[] {
  const out: number[] = [];
  for (const i of indices) {
    const x0 = x[i];
    x[i] = x0 + h;
    const fp = f();
    x[i] = x0 - h;
    const fm = f();
    x[i] = x0;
    out.push((fp - fm) / (2 * h));
  }
  return out;
}

export function allIndices(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * Asserts |a − n| ≤ tol · max(|a|, |n|, floor) per entry, with floor = 1e-3 · max |n| so entries that are
 * numerically zero are judged against the size of the gradient, not against themselves.
 */
export function assertGradClose(label: string, analytic: ArrayLike<number>, numeric: ArrayLike<number>, tol = 1e-6): number {
  assert.equal(analytic.length, numeric.length, `${label}: length`);
  let maxAbs = 0;
  for (let i = 0; i < numeric.length; i++) maxAbs = Math.max(maxAbs, Math.abs(numeric[i]));
  assert.ok(maxAbs > 0, `${label}: numeric gradient is all zero — the check would prove nothing`);
  const floor = 1e-3 * maxAbs;
  let worst = 0;
  for (let i = 0; i < numeric.length; i++) {
    const a = analytic[i];
    const n = numeric[i];
    const rel = Math.abs(a - n) / Math.max(Math.abs(a), Math.abs(n), floor);
    if (!(rel <= tol)) assert.fail(`${label}[${i}]: analytic ${a} vs numeric ${n} (relative error ${rel.toExponential(2)} > ${tol})`);
    worst = Math.max(worst, rel);
  }
  return worst;
}

/** Σ c_i · y_i: a random linear functional of an op's output, so one scalar checks the whole backward. */
export function dot(c: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < c.length; i++) s += c[i] * y[i];
  return s;
}
