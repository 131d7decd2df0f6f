/**
 * The frame the loss charts share (the Train page's LossChart, the Runs page's CompareChart): grid, a step axis from
 * 0, a loss axis at round ticks (loss-ticks.ts) and a tooltip that reads "step N" and formats losses alike.
 */
import { CartesianGrid, Tooltip, XAxis, YAxis } from 'recharts';
import { formatLoss } from './format.ts';
import { tickDecimals } from './loss-ticks.ts';

export const LOSS_CHART_MARGIN = { top: 8, right: 16, bottom: 4, left: 0 };

/**
 * Goes inside a recharts LineChart whose rows have a numeric `step`. With `log`, the loss axis is logarithmic
 * (recharts' own ticks; the rows must hold no value ≤ 0, metric-series.ts positiveOrNull).
 */
export function LossAxes({ xMax, yTicks, log = false }: { xMax: number; yTicks: number[]; log?: boolean }) {
  const decimals = tickDecimals(yTicks);
  return (
    <>
      <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" />
      <XAxis dataKey="step" type="number" domain={[0, xMax]} allowDecimals={false} stroke="var(--muted)" tick={{ fontSize: 11 }} />
      <YAxis
        scale={log ? 'log' : 'auto'}
        domain={log ? ['dataMin', 'dataMax'] : [yTicks[0], yTicks[yTicks.length - 1]]}
        ticks={log ? undefined : yTicks}
        allowDataOverflow={log}
        stroke="var(--muted)"
        tick={{ fontSize: 11 }}
        width={52}
        tickFormatter={(v: number) => (log ? String(Number(v.toPrecision(2))) : v.toFixed(decimals))}
      />
      <Tooltip
        isAnimationActive={false}
        contentStyle={{ background: 'var(--panel-2)', border: '1px solid var(--border)', borderRadius: 6, fontSize: 12 }}
        labelFormatter={(step) => `step ${String(step)}`}
        formatter={(v) => formatLoss(typeof v === 'number' ? v : Number(v))}
      />
    </>
  );
}
