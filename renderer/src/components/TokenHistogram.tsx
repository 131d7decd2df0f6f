import { memo, useMemo } from 'react';
import { Bar, BarChart, CartesianGrid, Cell, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { DatasetSummary } from '../../../common/protocol.ts';
import { histogramBars, visibleHistogram, type HistogramBar } from './dataset-view.ts';

interface Props {
  histogram: NonNullable<DatasetSummary['histogram']>;
  maxSeqLen?: number;
  truncated: number;
}

/** How many examples have how many tokens, with the max-length cut-off drawn where the run will cut. */
export const TokenHistogram = memo(function TokenHistogram({ histogram, maxSeqLen, truncated }: Props) {
  const { bars, domain } = useMemo(() => visibleHistogram(histogramBars(histogram, maxSeqLen), maxSeqLen), [histogram, maxSeqLen]);
  return (
    <div className="histogram" data-testid="token-histogram" data-bars={bars.length} data-cutoff={maxSeqLen ?? ''}>
      <div className="chart-head">
        <span className="chart-title">Tokens per example</span>
        {maxSeqLen !== undefined ? (
          <span className={truncated > 0 ? 'warn' : 'muted'} data-testid="dataset-truncated" data-count={truncated}>
            {truncated > 0 ? `${truncated} longer than ${maxSeqLen} will be cut` : `all fit in ${maxSeqLen}`}
          </span>
        ) : null}
      </div>
      <ResponsiveContainer width="100%" height={170}>
        <BarChart data={bars} margin={{ top: 16, right: 16, bottom: 0, left: 0 }} barCategoryGap={1}>
          <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="mid" type="number" domain={domain} allowDecimals={false} stroke="var(--muted)" tick={{ fontSize: 11 }} />
          <YAxis allowDecimals={false} stroke="var(--muted)" tick={{ fontSize: 11 }} width={40} />
          <Tooltip
            isAnimationActive={false}
            cursor={{ fill: 'rgba(255,255,255,0.04)' }}
            contentStyle={{ background: 'var(--panel-2)', border: '1px solid var(--border)', borderRadius: 6, fontSize: 12 }}
            labelFormatter={(_label, payload) => {
              const bar = payload?.[0]?.payload as HistogramBar | undefined;
              return bar ? `${bar.from}–${bar.to - 1} tokens` : '';
            }}
            formatter={(v) => [String(v), 'examples']}
          />
          <Bar dataKey="count" isAnimationActive={false}>
            {bars.map((b) => (
              <Cell key={b.from} fill={b.over ? 'var(--warn)' : 'var(--accent)'} />
            ))}
          </Bar>
          {maxSeqLen !== undefined ? (
            <ReferenceLine
              x={maxSeqLen}
              stroke="var(--error)"
              strokeDasharray="4 3"
              strokeWidth={1.5}
              ifOverflow="extendDomain"
              className="cutoff-line"
              label={{ value: `max ${maxSeqLen}`, position: 'top', fill: 'var(--error)', fontSize: 11 }}
            />
          ) : null}
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
});
