/**
 * The series the charts beside the loss draw (MetricCharts.tsx): gradient norm, learning rate, the fp16 loss scale,
 * the memory the training held, and tokens/s, smoothed with an exponential moving average (tokens/s jumps from step to step with the batch's
 * length; the raw value stays in the row for the tooltip). Pure, so tests check them on known numbers.
 */
import type { MetricPoint } from '../../../common/protocol.ts';

/** Weight of the newest value in the tokens/s average (about the last 10 steps). */
export const TOKENS_PER_SECOND_EMA = 0.2;

export interface MetricRow {
  step: number;
  gradNorm?: number;
  learningRate: number;
  lossScale?: number;
  /** Tokens/s, smoothed. */
  tokensPerSecond: number;
  /** Tokens/s as the step measured it. */
  tokensPerSecondRaw: number;
  /** Bytes the training held after the step: the device's allocated buffers on webgpu, else the process's resident set. */
  memoryBytes?: number;
}

/** What the memory series measures: 'device' when any point has a webgpu figure, 'process' when only resident sets, null when none. */
export function memoryMeasure(points: readonly MetricPoint[]): 'device' | 'process' | null {
  let process = false;
  for (const p of points) {
    if (p.deviceBytes !== undefined) return 'device';
    if (p.rssBytes !== undefined) process = true;
  }
  return process ? 'process' : null;
}

/**
 * The unit a byte axis counts in: GiB once the largest value reaches 1 GiB, else MiB. The chart plots values in
 * that unit so the axis's round ticks are round numbers of it (1.5 GiB, not 1610612736 bytes).
 */
export function byteAxisUnit(maxBytes: number): { unit: 'MiB' | 'GiB'; bytes: number } {
  return maxBytes >= 2 ** 30 ? { unit: 'GiB', bytes: 2 ** 30 } : { unit: 'MiB', bytes: 2 ** 20 };
}

/**
 * Exponential moving average seeded with the first value: e₁ = x₁, eₜ = a·xₜ + (1 − a)·eₜ₋₁. Non-finite values are
 * skipped (they keep the average where it was) so one broken step does not poison the rest.
 */
export function ema(values: readonly number[], a: number): number[] {
  const out: number[] = [];
  let e: number | null = null;
  for (const x of values) {
    if (Number.isFinite(x)) e = e === null ? x : a * x + (1 - a) * e;
    out.push(e ?? Number.NaN);
  }
  return out;
}

/** Rows for the side charts: skipped fp16 steps have no gradient norm to show (it overflowed). */
export function metricRows(points: readonly MetricPoint[], a = TOKENS_PER_SECOND_EMA): MetricRow[] {
  const smooth = ema(
    points.map((p) => p.tokensPerSecond),
    a,
  );
  return points.map((p, i) => {
    const row: MetricRow = { step: p.step, learningRate: p.learningRate, tokensPerSecond: smooth[i], tokensPerSecondRaw: p.tokensPerSecond };
    if (!p.skipped && Number.isFinite(p.gradNorm)) row.gradNorm = p.gradNorm;
    if (p.lossScale !== undefined) row.lossScale = p.lossScale;
    // One figure per chart: on webgpu the device's (what limits the batch there), else the process's.
    const memory = p.deviceBytes ?? p.rssBytes;
    if (memory !== undefined) row.memoryBytes = memory;
    return row;
  });
}

/** The latest smoothed tokens/s of a run's points, or null before the first. */
export function smoothedTokensPerSecond(points: readonly MetricPoint[], a = TOKENS_PER_SECOND_EMA): number | null {
  if (points.length === 0) return null;
  const v = ema(
    points.map((p) => p.tokensPerSecond),
    a,
  ).at(-1);
  return v !== undefined && Number.isFinite(v) ? v : null;
}

/** A log axis cannot show zero or less: those values become gaps. */
export function positiveOrNull(v: number | undefined): number | null {
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : null;
}

/** Thins a series to at most `max` rows (every k-th, the last kept): SVG cost stays flat on long runs. */
export function thin<T>(rows: readonly T[], max: number): T[] {
  const stride = Math.max(1, Math.ceil(rows.length / max));
  return rows.filter((_, i) => i % stride === 0 || i === rows.length - 1);
}
