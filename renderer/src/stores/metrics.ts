import type { MetricPoint } from '../../../common/protocol.ts';

/**
 * Adds new points to a run's series, keeping it sorted by step with each step once. The common case (points that
 * come after the last one) is an append; an overlap (events and a catch-up fetch crossing) is merged.
 * Returns the same array when nothing is new, so subscribers do not re-render.
 */
export function mergeMetrics(existing: readonly MetricPoint[], incoming: readonly MetricPoint[]): readonly MetricPoint[] {
  if (incoming.length === 0) return existing;
  const lastStep = existing.length ? existing[existing.length - 1].step : -Infinity;
  let inOrder = true;
  let prev = lastStep;
  for (const p of incoming) {
    if (!(p.step > prev)) {
      inOrder = false;
      break;
    }
    prev = p.step;
  }
  if (inOrder) return existing.concat(incoming);

  const byStep = new Map<number, MetricPoint>();
  for (const p of existing) byStep.set(p.step, p);
  let added = false;
  for (const p of incoming) {
    if (!byStep.has(p.step)) {
      byStep.set(p.step, p);
      added = true;
    }
  }
  if (!added) return existing;
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}
