/**
 * Keeping a run's metric points in a window: the history fetched with 'runs.metrics' and the live 'run.metrics'
 * events overlap (a window subscribes first, then fetches), and a run that went back to a checkpoint sends steps
 * again. Merging by step — the newest point of a step wins, `truncatedAfter` drops later steps first — gives every
 * step exactly once, in order, whatever arrives in which order.
 */
import type { MetricPoint } from './protocol.ts';

export function mergeMetricPoints(existing: readonly MetricPoint[], incoming: readonly MetricPoint[], truncatedAfter?: number): MetricPoint[] {
  const base = truncatedAfter === undefined ? existing : existing.filter((p) => p.step <= truncatedAfter);
  if (incoming.length === 0) return base === existing ? existing.slice() : (base as MetricPoint[]);
  const lastStep = base.length > 0 ? base[base.length - 1].step : -Infinity;
  // The common case, live points after the history: append without rebuilding.
  let ordered = incoming[0].step > lastStep;
  for (let i = 1; ordered && i < incoming.length; i++) ordered = incoming[i].step > incoming[i - 1].step;
  if (ordered) return [...base, ...incoming];
  const byStep = new Map<number, MetricPoint>();
  for (const p of base) byStep.set(p.step, p);
  for (const p of incoming) byStep.set(p.step, p);
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}
