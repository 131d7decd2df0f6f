/**
 * Y ticks at round numbers that hug the data (not stretched to 0), so late loss changes stay visible: the step is
 * 1, 2 or 5 × a power of ten giving about five intervals.
 */
export function lossTicks(rows: readonly { loss: number; validationLoss?: number }[]): number[] {
  let min = Infinity;
  let max = -Infinity;
  for (const r of rows) {
    for (const v of [r.loss, r.validationLoss]) {
      if (v === undefined || !Number.isFinite(v)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (!Number.isFinite(min)) return [0, 1];
  if (max - min <= Math.abs(max) * 1e-6) {
    // A flat series (or one point; differences under a millionth count as flat): a band at its own scale.
    const pad = Math.abs(max) * 0.1 || 0.5;
    min -= pad;
    max += pad;
  }
  const rough = (max - min) / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((k) => k * power).find((s) => s >= rough) ?? 10 * power;
  const lo = Math.floor(min / step) * step;
  const ticks: number[] = [];
  // Stop at the first tick at or above the maximum: a maximum a hair above a round value (30.00000000003) still gets
  // the next tick, so the ticks always cover the data. Multiples of the step, not a running sum, avoid drift.
  for (let i = 0; i < 1000; i++) {
    const t = Number((lo + i * step).toPrecision(12));
    ticks.push(t);
    if (t >= max && ticks.length >= 2) break;
  }
  return ticks;
}

/** Decimals that tell neighbouring ticks apart at their spacing (0 to 4): a step of 0.05 shows two, of 2 none. */
export function tickDecimals(ticks: readonly number[]): number {
  // The step is a round value computed in floats (0.14 − 0.13 = 0.00999…): nudge it before flooring its log.
  return Math.max(0, Math.min(4, -Math.floor(Math.log10(Math.max(1e-9, (ticks[1] ?? 1) - ticks[0])) + 1e-9)));
}
