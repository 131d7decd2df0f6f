/**
 * The charts beside the loss: gradient norm, learning rate, the fp16 loss scale (when the run reports one), the
 * memory the training held (GPU bytes on webgpu, the studio's resident set on cpu; in MiB or GiB) and tokens/s
 * smoothed (EMA; the tooltip also gives the step's raw value). They share the loss chart's step axis and
 * its log-scale toggle, and mark the run's alert steps as the loss chart does.
 */
import { memo, useMemo } from 'react';
import { CartesianGrid, Line, LineChart, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { useChartOptions } from '../stores/chart-options.ts';
import { EMPTY_ALERTS, useRunAlerts } from '../stores/run-alerts.ts';
import { useStudio } from '../stores/studio.ts';
import { useThrottledMetrics } from '../stores/throttle.ts';
import { LOSS_CHART_MARGIN } from './chart-axes.tsx';
import { formatBytes } from './format.ts';
import { byteAxisUnit, memoryMeasure, metricRows, positiveOrNull, thin, type MetricRow } from './metric-series.ts';
import './metric-charts.css';

const MAX_PLOTTED = 600;

type SeriesKey = 'gradNorm' | 'learningRate' | 'lossScale' | 'memoryBytes' | 'tokensPerSecond';

/**
 * A byte series is plotted in this unit (so the axis ticks are round MiB or GiB) and read out as bytes. Its ticks
 * join number and unit with a no-break space (recharts wraps a tick at a space near the axis's width), on a wider axis.
 */
interface ByteScale {
  unit: string;
  bytes: number;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-2 || a >= 1e6) ? v.toExponential(2) : String(Number(v.toPrecision(6)));
}

export const MetricCharts = memo(function MetricCharts({ runId }: { runId: string | null }) {
  const points = useThrottledMetrics(runId);
  const log = useChartOptions((s) => s.logScale);
  const totalSteps = useStudio((s) => (runId ? (s.runs[runId]?.totalSteps ?? null) : null));
  const alerts = useRunAlerts((s) => (runId ? (s.alerts[runId] ?? EMPTY_ALERTS) : EMPTY_ALERTS));
  const highlighted = useRunAlerts((s) => (runId ? s.highlighted[runId] : undefined));
  const rows = useMemo(() => thin(metricRows(points), MAX_PLOTTED), [points]);
  const hasScale = useMemo(() => rows.some((r) => r.lossScale !== undefined), [rows]);
  const measure = useMemo(() => memoryMeasure(points), [points]);
  const memoryScale = useMemo(() => byteAxisUnit(rows.reduce((m, r) => Math.max(m, r.memoryBytes ?? 0), 0)), [rows]);
  const alertSteps = useMemo(() => [...new Set(alerts.map((a) => a.step))], [alerts]);
  if (rows.length === 0) return null;
  const xMax = Math.max(totalSteps ?? 0, rows[rows.length - 1].step);
  const charts: [SeriesKey, string][] = [
    ['gradNorm', 'Gradient norm'],
    ['learningRate', 'Learning rate'],
    ...(hasScale ? [['lossScale', 'Loss scale (fp16)'] as [SeriesKey, string]] : []),
    // Points from before memory was measured have none: no chart rather than an empty one.
    ...(measure ? [['memoryBytes', measure === 'device' ? 'Memory (GPU, allocated)' : 'Memory (process RSS)'] as [SeriesKey, string]] : []),
    ['tokensPerSecond', 'Tokens/s (smoothed)'],
  ];
  return (
    <div className="metric-charts" data-testid="metric-charts">
      {charts.map(([key, title]) => (
        <SmallChart key={key} series={key} title={title} rows={rows} xMax={xMax} log={log} alertSteps={alertSteps} highlighted={highlighted} byteScale={key === 'memoryBytes' ? memoryScale : undefined} />
      ))}
    </div>
  );
});

function SmallChart({ series, title, rows, xMax, log, alertSteps, highlighted, byteScale }: { series: SeriesKey; title: string; rows: MetricRow[]; xMax: number; log: boolean; alertSteps: number[]; highlighted?: number; byteScale?: ByteScale }) {
  const data = useMemo(() => {
    if (!log && !byteScale) return rows;
    return rows.map((r) => {
      const v = r[series];
      const scaled = v !== undefined && byteScale ? v / byteScale.bytes : v;
      return { ...r, [series]: log ? positiveOrNull(scaled) : scaled };
    });
  }, [rows, series, log, byteScale]);
  const last = rows.at(-1);
  const lastValue = last?.[series];
  const readout = (v: number): string => (byteScale ? formatBytes(v) : series === 'tokensPerSecond' ? String(Math.round(v)) : fmt(v));
  return (
    <div className="chart metric-chart" data-testid={`metric-chart-${series}`} data-points={rows.filter((r) => r[series] !== undefined).length} data-scale={log ? 'log' : 'linear'}>
      <div className="chart-head">
        <span className="chart-title">{title}</span>
        <span className="muted" data-testid={`metric-last-${series}`} title={series === 'tokensPerSecond' && last ? `raw ${fmt(last.tokensPerSecondRaw)} tokens/s at step ${last.step}` : undefined}>
          {lastValue === undefined ? '—' : readout(lastValue)}
        </span>
      </div>
      <ResponsiveContainer width="100%" height={140}>
        <LineChart data={data} margin={LOSS_CHART_MARGIN}>
          <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" />
          <XAxis dataKey="step" type="number" domain={[0, xMax]} allowDecimals={false} stroke="var(--muted)" tick={{ fontSize: 11 }} />
          <YAxis scale={log ? 'log' : 'auto'} domain={log ? ['dataMin', 'dataMax'] : ['auto', 'auto']} allowDataOverflow={log} stroke="var(--muted)" tick={{ fontSize: 11 }} width={byteScale ? 64 : 52} tickFormatter={(v: number) => (byteScale ? `${Number(v.toPrecision(4))}\u00a0${byteScale.unit}` : fmt(v))} />
          <Tooltip
            isAnimationActive={false}
            contentStyle={{ background: 'var(--panel-2)', border: '1px solid var(--border)', borderRadius: 6, fontSize: 12 }}
            labelFormatter={(step) => `step ${String(step)}`}
            formatter={(v, _name, item) => {
              const value = typeof v === 'number' ? (byteScale ? formatBytes(v * byteScale.bytes) : fmt(v)) : String(v);
              const row = (item as { payload?: MetricRow } | undefined)?.payload;
              return series === 'tokensPerSecond' && row ? [`${value} (raw ${fmt(row.tokensPerSecondRaw)})`, 'tokens/s'] : [value, title];
            }}
          />
          {alertSteps.map((step) => (
            <ReferenceLine key={step} x={step} stroke="var(--warn)" strokeDasharray={step === highlighted ? undefined : '2 3'} strokeWidth={step === highlighted ? 2 : 1} />
          ))}
          <Line type="linear" dataKey={series} name={title} stroke="var(--accent)" strokeWidth={1.5} dot={false} connectNulls isAnimationActive={false} />
        </LineChart>
      </ResponsiveContainer>
    </div>
  );
}
