import { memo, useEffect, useMemo } from 'react';
import { Legend, Line, LineChart, ReferenceLine, ResponsiveContainer } from 'recharts';
import type { MetricPoint } from '../../../common/protocol.ts';
import { useChartOptions } from '../stores/chart-options.ts';
import { EMPTY_ALERTS, useRunAlerts } from '../stores/run-alerts.ts';
import { useStudio } from '../stores/studio.ts';
import { useThrottledMetrics } from '../stores/throttle.ts';
import { LOSS_CHART_MARGIN, LossAxes } from './chart-axes.tsx';
import { lossTicks } from './loss-ticks.ts';
import { MetricCharts } from './MetricCharts.tsx';
import { positiveOrNull } from './metric-series.ts';

/** Above this many points the series is thinned (every k-th, the last always kept): SVG cost stays flat. */
const MAX_PLOTTED = 1500;
/** Dots help on short runs and are noise (and DOM weight) on long ones. */
const MAX_DOTTED = 60;

interface ChartRow {
  step: number;
  loss: number;
  validationLoss?: number;
}

function toRows(points: readonly MetricPoint[]): ChartRow[] {
  const stride = Math.max(1, Math.ceil(points.length / MAX_PLOTTED));
  const rows: ChartRow[] = [];
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    const keep = i % stride === 0 || i === points.length - 1 || p.validationLoss !== undefined;
    if (!keep || p.skipped) continue;
    rows.push(p.validationLoss !== undefined ? { step: p.step, loss: p.loss, validationLoss: p.validationLoss } : { step: p.step, loss: p.loss });
  }
  return rows;
}

export const LossChart = memo(function LossChart({ runId }: { runId: string | null }) {
  const points = useThrottledMetrics(runId);
  // A chart shows the whole run: its history is fetched once, live points go on top (stores/studio.ts).
  useEffect(() => {
    if (runId) void useStudio.getState().ensureMetrics(runId);
  }, [runId]);
  const totalSteps = useStudio((s) => (runId ? (s.runs[runId]?.totalSteps ?? null) : null));
  const log = useChartOptions((s) => s.logScale);
  const linearRows = useMemo(() => toRows(points), [points]);
  // A log axis cannot draw 0 or less: such values become gaps (a loss is positive unless it broke).
  const rows = useMemo(() => (log ? linearRows.map((r) => ({ ...r, loss: positiveOrNull(r.loss) ?? Number.NaN, ...(r.validationLoss !== undefined ? { validationLoss: positiveOrNull(r.validationLoss) ?? Number.NaN } : {}) })) : linearRows), [linearRows, log]);
  const validationPoints = useMemo(() => rows.reduce((n, r) => n + (r.validationLoss !== undefined ? 1 : 0), 0), [rows]);
  const hasValidation = validationPoints > 0;
  const skipped = useMemo(() => points.reduce((n, p) => n + (p.skipped ? 1 : 0), 0), [points]);
  const yTicks = useMemo(() => lossTicks(rows), [rows]);
  const xMax = Math.max(totalSteps ?? 0, rows.length ? rows[rows.length - 1].step : 1);
  const alerts = useRunAlerts((s) => (runId ? (s.alerts[runId] ?? EMPTY_ALERTS) : EMPTY_ALERTS));
  const highlighted = useRunAlerts((s) => (runId ? s.highlighted[runId] : undefined));
  const alertSteps = useMemo(() => [...new Set(alerts.map((a) => a.step))], [alerts]);

  return (
    <>
      <div className="chart" data-testid="loss-chart" data-points={rows.length} data-validation-points={validationPoints} data-alert-steps={alertSteps.join(' ')} data-highlighted-step={highlighted ?? ''} data-scale={log ? 'log' : 'linear'}>
        <div className="chart-head">
          <span className="chart-title">Loss</span>
          <span className="muted">
            <span data-testid="chart-point-count">{points.length}</span> step{points.length === 1 ? '' : 's'}
            {skipped ? ` · ${skipped} skipped (overflow)` : ''}
            <label className="chart-log-toggle">
              <input type="checkbox" data-testid="chart-log-scale" checked={log} onChange={(e) => useChartOptions.getState().setLogScale(e.target.checked)} />
              log scale
            </label>
          </span>
        </div>
        {rows.length === 0 ? (
          <div className="chart-empty">{runId ? 'Waiting for the first step…' : 'Press Train to see the loss here, live.'}</div>
        ) : (
          <ResponsiveContainer width="100%" height={260}>
            <LineChart data={rows} margin={LOSS_CHART_MARGIN}>
              <LossAxes xMax={xMax} yTicks={yTicks} log={log} />
              {/* Alert steps as thin warning lines; the one picked in the alert list stands out, labelled. */}
              {alertSteps.map((step) => (
                <ReferenceLine
                  key={step}
                  x={step}
                  stroke="var(--warn)"
                  strokeDasharray={step === highlighted ? undefined : '2 3'}
                  strokeWidth={step === highlighted ? 2 : 1}
                  label={step === highlighted ? { value: `step ${step}`, position: 'insideTopRight', fill: 'var(--warn)', fontSize: 11 } : undefined}
                  ifOverflow="extendDomain"
                />
              ))}
              <Line
                type="linear"
                dataKey="loss"
                name="train loss"
                stroke="var(--accent)"
                strokeWidth={2}
                dot={rows.length <= MAX_DOTTED ? { r: 2.5 } : false}
                isAnimationActive={false}
              />
              {hasValidation ? <Legend verticalAlign="top" align="right" height={24} iconType="plainline" wrapperStyle={{ fontSize: 12 }} /> : null}
              {hasValidation ? (
                <Line type="linear" dataKey="validationLoss" name="validation loss" stroke="var(--accent-2)" strokeWidth={2} connectNulls dot={{ r: 3 }} isAnimationActive={false} />
              ) : null}
            </LineChart>
          </ResponsiveContainer>
        )}
      </div>
      <MetricCharts runId={runId} />
    </>
  );
});
