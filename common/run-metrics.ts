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

/** The CSV columns, in order: every MetricPoint field (the optional ones empty where a step has none). */
export const METRICS_CSV_COLUMNS = ['step', 'loss', 'validationLoss', 'learningRate', 'gradNorm', 'lossScale', 'skipped', 'tokens', 'tokensPerSecond', 'elapsedMs', 'rssBytes', 'deviceBytes'] as const satisfies readonly (keyof MetricPoint)[];

// Compile-time proof the columns hold every field of a point: a new field must get a column.
type _MissingColumns = Exclude<keyof MetricPoint, (typeof METRICS_CSV_COLUMNS)[number]>;
const _allColumns: [_MissingColumns] extends [never] ? true : _MissingColumns = true;
void _allColumns;

function csvCell(v: MetricPoint[keyof MetricPoint]): string {
  if (v === undefined) return '';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  // NaN / ±Infinity as spreadsheets and pandas read them (a skipped step's grad norm can be NaN).
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return 'inf';
  if (v === Number.NEGATIVE_INFINITY) return '-inf';
  // String(-0) is "0": keep the sign, so the file reads back the same value.
  if (Object.is(v, -0)) return '-0';
  return String(v);
}

/**
 * A run's metric points as CSV (RFC 4180, `\n` line ends): a header of METRICS_CSV_COLUMNS, one row per step in
 * step order; numbers at full precision (String(x) round-trips a double), so the file reads back the same values.
 */
export function metricsCsv(points: readonly MetricPoint[]): string {
  const rows = [...points].sort((a, b) => a.step - b.step).map((p) => METRICS_CSV_COLUMNS.map((c) => csvCell(p[c])).join(','));
  return `${[METRICS_CSV_COLUMNS.join(','), ...rows].join('\n')}\n`;
}
