/**
 * The frame the loss charts share (the Train page's LossChart, the Runs page's CompareChart): grid, a step axis from
 * 0, a loss axis at round ticks (loss-ticks.ts) and a tooltip that reads "step N" and formats losses alike.
 */
import { CartesianGrid, Tooltip, XAxis, YAxis } from 'recharts';
import { formatLoss } from './format.ts';
import { tickDecimals } from './loss-ticks.ts';

export const LOSS_CHART_MARGIN = { top: 8, right: 16, bottom: 4, left: 0 };

/** Goes inside a recharts LineChart whose rows have a numeric `step`. */
export function LossAxes({ xMax, yTicks }: { xMax: number; yTicks: number[] }) {
  const decimals = tickDecimals(yTicks);
  return (
    <>
      <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" />
      <XAxis dataKey="step" type="number" domain={[0, xMax]} allowDecimals={false} stroke="var(--muted)" tick={{ fontSize: 11 }} />
      <YAxis
        domain={[yTicks[0], yTicks[yTicks.length - 1]]}
        ticks={yTicks}
        stroke="var(--muted)"
        tick={{ fontSize: 11 }}
        width={52}
        tickFormatter={(v: number) => v.toFixed(decimals)}
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
