import { memo, useMemo } from 'react';
import { Line, LineChart, ResponsiveContainer } from 'recharts';
import { useShallow } from 'zustand/react/shallow';
import type { MetricPoint } from '../../../common/protocol.ts';
import { LOSS_CHART_MARGIN, LossAxes } from '../components/chart-axes.tsx';
import { formatLoss } from '../components/format.ts';
import { lossTicks } from '../components/loss-ticks.ts';
import { EMPTY_POINTS, useStudio } from '../stores/studio.ts';
import { useRunsPage } from './runs-store.ts';
import { COMPARE_COLORS, MAX_COMPARED, compareRows, configDifferences, stateLabel } from './runs-view.ts';

/** The loss of up to four runs on one chart, one colour each, with a legend naming them. */
export const CompareChart = memo(function CompareChart() {
  const compared = useRunsPage((s) => s.compared);
  const ids = useMemo(() => compared.map((c) => c.id), [compared]);
  const series = useStudio(useShallow((s) => ids.map((id) => s.metrics[id] ?? EMPTY_POINTS)));
  const runs = useStudio(useShallow((s) => ids.map((id) => s.runs[id])));
  const toggleCompare = useRunsPage((s) => s.toggleCompare);

  const differences = useMemo(() => {
    const present = runs.filter((r) => r !== undefined);
    const diffs = configDifferences(present.map((r) => r.config));
    return new Map(present.map((r, i) => [r.id, diffs[i]]));
  }, [runs]);
  const rows = useMemo(() => compareRows(ids.map((id, i) => ({ id, points: series[i] }))), [ids, series]);
  const yTicks = useMemo(() => {
    const losses: { loss: number }[] = [];
    for (const r of rows) for (const id of ids) if (typeof r[id] === 'number') losses.push({ loss: r[id] });
    return lossTicks(losses);
  }, [rows, ids]);
  const xMax = Math.max(1, ...runs.map((r) => r?.totalSteps ?? 0), rows.length ? rows[rows.length - 1].step : 1);

  return (
    <section className="card compare" data-testid="compare">
      <h2>
        Compare <span className="count">{compared.length} / {MAX_COMPARED}</span>
      </h2>
      {compared.length === 0 ? (
        <div className="chart-empty compare-empty">Tick up to {MAX_COMPARED} runs in the list to see their loss on one chart.</div>
      ) : (
        <>
          <ul className="compare-legend" data-testid="compare-legend">
            {compared.map((c, i) => (
              <LegendItem
                key={c.id}
                id={c.id}
                color={COMPARE_COLORS[c.color]}
                points={series[i]}
                name={runs[i]?.name ?? c.id}
                differs={differences.get(c.id) ?? []}
                state={runs[i] ? stateLabel(runs[i]) : ''}
                onRemove={() => toggleCompare(c.id)}
              />
            ))}
          </ul>
          {rows.length === 0 ? (
            <div className="chart-empty">No steps yet.</div>
          ) : (
            <div className="chart compare-chart" data-testid="compare-chart">
              <ResponsiveContainer width="100%" height={300}>
                <LineChart data={rows} margin={LOSS_CHART_MARGIN}>
                  <LossAxes xMax={xMax} yTicks={yTicks} />
                  {compared.map((c, i) => (
                    <Line
                      key={c.id}
                      type="linear"
                      dataKey={c.id}
                      name={runs[i]?.name ?? c.id}
                      className={`compare-line compare-line-${c.id}`}
                      stroke={COMPARE_COLORS[c.color]}
                      strokeWidth={2}
                      dot={false}
                      connectNulls
                      isAnimationActive={false}
                    />
                  ))}
                </LineChart>
              </ResponsiveContainer>
            </div>
          )}
        </>
      )}
    </section>
  );
});

interface LegendItemProps {
  id: string;
  name: string;
  color: string;
  points: readonly MetricPoint[];
  /** "key=value" of the config entries that set this run apart from the others compared. */
  differs: readonly string[];
  state: string;
  onRemove(): void;
}

function LegendItem({ id, name, color, points, differs, state, onRemove }: LegendItemProps) {
  const last = points.length ? points[points.length - 1] : null;
  return (
    <li className="compare-legend-item" data-testid="compare-legend-item" data-run-id={id} data-points={points.length}>
      <span className="swatch" style={{ background: color }} aria-hidden="true" />
      <span className="compare-name" title={id}>
        {name}
      </span>
      {differs.length ? <code className="compare-differs">{differs.join(' ')}</code> : null}
      <span className="muted">
        {state} · {points.length} step{points.length === 1 ? '' : 's'} · loss {formatLoss(last?.loss)}
      </span>
      <button type="button" className="link" aria-label={`stop comparing ${name}`} onClick={onRemove}>
        ×
      </button>
    </li>
  );
}
