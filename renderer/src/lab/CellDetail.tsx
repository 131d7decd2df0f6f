import { memo, useMemo } from 'react';
import { Bar, BarChart, CartesianGrid, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { FormatReport, QuantCell, QuantReport, ReportHistogram, WeightCell } from '../../../common/quant-report.ts';
import { formatBytes } from '../components/format.ts';
import { formatMetric, formatSci, MATRIX_LABELS } from './lab-metrics.ts';
import type { SelectedCell } from './lab-store.ts';

/** More grid lines than this are thinned (int8 has 255 levels per channel): every k-th is drawn. */
const MAX_GRID_LINES = 48;
const FORMAT_COLORS = ['var(--accent)', 'var(--accent-2)'];

interface Bin {
  x: number;
  count: number;
  from: number;
  to: number;
}

function bins(h: ReportHistogram): Bin[] {
  const n = h.counts.length;
  const w = n > 0 ? (h.hi - h.lo) / n : 0;
  return h.counts.map((count, i) => ({ x: h.lo + (i + 0.5) * w, count, from: h.lo + i * w, to: h.lo + (i + 1) * w }));
}

function thinGrid(grid: number[] | null): { lines: number[]; total: number } {
  if (!grid) return { lines: [], total: 0 };
  const stride = Math.max(1, Math.ceil(grid.length / MAX_GRID_LINES));
  return { lines: grid.filter((_, i) => i % stride === 0 || i === grid.length - 1), total: grid.length };
}

const tooltipStyle = { background: 'var(--panel-2)', border: '1px solid var(--border)', borderRadius: 6, fontSize: 12 };
const tick = (v: number): string => formatSci(v);

const Histogram = memo(function Histogram({ hist, color, grid, testId, title, sub }: { hist: ReportHistogram; color: string; grid?: number[]; testId: string; title: string; sub: string }) {
  const data = useMemo(() => bins(hist), [hist]);
  const pad = (hist.hi - hist.lo) * 0.02 || 1e-6;
  // The ends and zero (or the middle) read better than recharts' ticks over an arbitrary float range.
  const ticks = [hist.lo, hist.lo < 0 && hist.hi > 0 ? 0 : (hist.lo + hist.hi) / 2, hist.hi];
  return (
    <div className="lab-hist" data-testid={testId} data-bins={data.length} data-grid-lines={grid?.length ?? 0}>
      <div className="chart-head">
        <span className="chart-title">{title}</span>
        <span className="muted">{sub}</span>
      </div>
      <ResponsiveContainer width="100%" height={150}>
        <BarChart data={data} margin={{ top: 6, right: 10, bottom: 0, left: 0 }} barCategoryGap={0}>
          <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="x" type="number" domain={[hist.lo - pad, hist.hi + pad]} ticks={ticks} tickFormatter={tick} stroke="var(--muted)" tick={{ fontSize: 10 }} />
          <YAxis stroke="var(--muted)" tick={{ fontSize: 10 }} width={38} allowDecimals={false} />
          <Tooltip
            isAnimationActive={false}
            cursor={{ fill: 'rgba(255,255,255,0.04)' }}
            contentStyle={tooltipStyle}
            labelFormatter={(_l, payload) => {
              const b = payload?.[0]?.payload as Bin | undefined;
              return b ? `${formatSci(b.from)} … ${formatSci(b.to)}` : '';
            }}
            formatter={(v) => [String(v), 'values']}
          />
          <Bar dataKey="count" fill={color} fillOpacity={0.75} isAnimationActive={false} />
          {(grid ?? []).map((g, i) => (
            <ReferenceLine key={i} x={g} stroke="var(--text)" strokeOpacity={0.55} strokeWidth={1} ifOverflow="discard" className="grid-line" />
          ))}
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
});

function FormatDetail({ format, cell, weight, color }: { format: FormatReport; cell: QuantCell; weight: WeightCell; color: string }) {
  const { lines, total } = thinGrid(cell.grid);
  const gridNote = total === 0 ? 'no grid (f16 keeps ~3 significant digits)' : lines.length < total ? `grid: every ${Math.ceil(total / lines.length)}th of ${total} levels` : `grid: ${total} levels`;
  return (
    <div className="lab-detail-format" data-testid={`cell-detail-${format.key}`}>
      <div className="lab-detail-format-head">
        <span className="lab-dot" style={{ background: color }} />
        <strong>{format.key}</strong>
        <span className={`lab-status ${cell.status === 'alert' ? 'alert' : 'ok'}`}>{cell.status}</span>
        {cell.fallback ? <span className="badge">stored as f16</span> : null}
      </div>
      <div className="lab-detail-charts">
        <Histogram hist={weight.hist} color={color} grid={lines} testId="weight-histogram" title="Weights + quantization grid" sub={`${gridNote}, in the block of the largest |w|`} />
        <Histogram hist={cell.errorHist} color="var(--error)" testId="error-histogram" title="Error W − Ŵ" sub={`max |err| ${formatSci(cell.maxAbsErr)}`} />
      </div>
      <dl className="lab-stats">
        <dt>Rel. error</dt>
        <dd>{formatMetric(cell.relErr, 'relErr')}</dd>
        <dt>SNR</dt>
        <dd>{formatMetric(cell.snrDb ?? Number.POSITIVE_INFINITY, 'snrDb')}</dd>
        <dt>MSE</dt>
        <dd>{formatMetric(cell.mse, 'mse')}</dd>
        <dt>Output KL</dt>
        <dd>{formatMetric(cell.kl, 'kl')}</dd>
        <dt>Cosine</dt>
        <dd>{formatMetric(cell.cosine, 'cosine')}</dd>
        <dt>Size</dt>
        <dd>{formatBytes(cell.sizeBytes)}</dd>
      </dl>
      {cell.reasons.length > 0 ? (
        <ul className="lab-reasons">
          {cell.reasons.map((r) => (
            <li key={r}>{r}</li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** One linear, in up to two formats: its weight histogram under each format's grid, and the error each leaves. */
export function CellDetail({ report, selected, formats, onClose }: { report: QuantReport; selected: SelectedCell; formats: FormatReport[]; onClose(): void }) {
  const mi = report.matrices.indexOf(selected.matrix);
  const weight = report.weights[selected.layer]?.[mi];
  if (!weight) return null;
  return (
    <section className="card lab-detail" data-testid="cell-detail" data-layer={selected.layer} data-matrix={selected.matrix}>
      <div className="card-title-row">
        <h2>
          Layer {selected.layer} · {MATRIX_LABELS[selected.matrix]}
          <span className="count muted">
            [{weight.rows} × {weight.cols}] · min {formatSci(weight.min)} · max {formatSci(weight.max)} · std {formatSci(weight.std)}
          </span>
        </h2>
        <button type="button" className="link" onClick={onClose} data-testid="cell-detail-close">
          Close
        </button>
      </div>
      <div className={`lab-detail-grid${formats.length > 1 ? ' two' : ''}`}>
        {formats.map((f, i) => {
          const cell = f.cells[selected.layer]?.[mi];
          return cell ? <FormatDetail key={f.key} format={f} cell={cell} weight={weight} color={FORMAT_COLORS[i] ?? FORMAT_COLORS[0]} /> : null;
        })}
      </div>
    </section>
  );
}
