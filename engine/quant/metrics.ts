/**
 * Weight-only error of a quantized matrix against the float one (DESIGN.md §7), accumulated in f64:
 *   MSE = Σ(W−Ŵ)²/n,  relative error = ‖W−Ŵ‖_F/‖W‖_F,  SNR dB = 10·log10(ΣW²/Σ(W−Ŵ)²),  max |W−Ŵ|.
 */
import type { FloatArray } from '../model/types.ts';

export interface ErrorStats {
  n: number;
  mse: number;
  /** ‖W−Ŵ‖/‖W‖; 0 when both are zero. */
  relErr: number;
  /** null when the error is exactly zero (infinite SNR), so the value survives JSON. */
  snrDb: number | null;
  maxAbsErr: number;
  /** ΣW² and Σ(W−Ŵ)², kept so errors of several matrices can be pooled exactly. */
  signalEnergy: number;
  errorEnergy: number;
}

/** Equal-width bins over [lo, hi]; values outside land in the end bins. */
export interface Histogram {
  lo: number;
  hi: number;
  counts: number[];
}

export function errorStats(w: FloatArray, wq: FloatArray): ErrorStats {
  if (w.length !== wq.length) throw new Error(`errorStats: lengths differ (${w.length} vs ${wq.length})`);
  let sig = 0;
  let err = 0;
  let maxAbs = 0;
  for (let i = 0; i < w.length; i++) {
    const x = w[i];
    const e = x - wq[i];
    sig += x * x;
    err += e * e;
    const a = Math.abs(e);
    if (a > maxAbs) maxAbs = a;
  }
  return statsFromEnergies(w.length, sig, err, maxAbs);
}

/** Pools energies of several matrices (or a whole model) into one set of statistics. */
export function statsFromEnergies(n: number, signalEnergy: number, errorEnergy: number, maxAbsErr: number): ErrorStats {
  return {
    n,
    mse: n > 0 ? errorEnergy / n : 0,
    relErr: signalEnergy > 0 ? Math.sqrt(errorEnergy / signalEnergy) : errorEnergy > 0 ? Infinity : 0,
    snrDb: snrDb(signalEnergy, errorEnergy),
    maxAbsErr,
    signalEnergy,
    errorEnergy,
  };
}

export function snrDb(signalEnergy: number, errorEnergy: number): number | null {
  if (errorEnergy === 0) return null;
  return 10 * Math.log10(signalEnergy / errorEnergy);
}

export function histogram(values: ArrayLike<number>, bins: number, lo: number, hi: number): Histogram {
  if (!Number.isInteger(bins) || bins < 1) throw new Error(`histogram: bins must be a positive integer, got ${bins}`);
  const counts = new Array<number>(bins).fill(0);
  const width = hi - lo;
  if (!(width > 0)) {
    counts[Math.floor(bins / 2)] = values.length;
    return { lo, hi, counts };
  }
  const scale = bins / width;
  for (let i = 0; i < values.length; i++) {
    let k = Math.floor((values[i] - lo) * scale);
    if (k < 0) k = 0;
    else if (k >= bins) k = bins - 1;
    counts[k]++;
  }
  return { lo, hi, counts };
}

export function minMax(values: ArrayLike<number>): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

/** Histogram of W − Ŵ over the symmetric range [−maxAbs, maxAbs] (one pass, no temporary array). */
export function errorHistogram(w: FloatArray, wq: FloatArray, bins: number, maxAbs: number): Histogram {
  if (!Number.isInteger(bins) || bins < 1) throw new Error(`histogram: bins must be a positive integer, got ${bins}`);
  const r = maxAbs > 0 ? maxAbs : 1;
  const counts = new Array<number>(bins).fill(0);
  const scale = bins / (2 * r);
  for (let i = 0; i < w.length; i++) {
    let k = Math.floor((w[i] - wq[i] + r) * scale);
    if (k < 0) k = 0;
    else if (k >= bins) k = bins - 1;
    counts[k]++;
  }
  return { lo: -r, hi: r, counts };
}
