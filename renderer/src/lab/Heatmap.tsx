import { memo } from 'react';
import type { FormatReport, ReportMatrix } from '../../../common/quant-report.ts';
import { cellValue, formatMetric, MATRIX_LABELS, PALETTE_GRADIENT, type ColorScale } from './lab-metrics.ts';
import type { SelectedCell } from './lab-store.ts';

interface Props {
  format: FormatReport;
  matrices: readonly ReportMatrix[];
  scale: ColorScale;
  selected: SelectedCell | null;
  onSelect(cell: SelectedCell): void;
}

/** Layers × matrices, one coloured cell per linear; alerts get a red ring. A CSS grid of buttons, so it scales to 80 layers. */
export const Heatmap = memo(function Heatmap({ format, matrices, scale, selected, onSelect }: Props) {
  const metric = scale.metric;
  return (
    <div className="heatmap" data-testid={`heatmap-${format.key}`} data-format={format.key}>
      <div className="heatmap-title">
        <span className="heatmap-format">{format.key}</span>
        <span className="muted">
          {format.label} · {format.bitsPerWeight.toFixed(2)} b/w
        </span>
        {format.alerts > 0 ? <span className="lab-alert-count">{format.alerts} alert{format.alerts > 1 ? 's' : ''}</span> : <span className="lab-ok-count">no alerts</span>}
      </div>
      <div className="heatmap-grid" style={{ gridTemplateColumns: `44px repeat(${matrices.length}, minmax(26px, 1fr))` }} role="grid" aria-label={`${format.key} ${metric} per layer and matrix`}>
        <div className="heatmap-corner" />
        {matrices.map((m) => (
          <div key={m} className="heatmap-col" title={MATRIX_LABELS[m]}>
            {m}
          </div>
        ))}
        {format.cells.map((row, layer) => (
          <HeatmapRow key={layer} layer={layer} row={row} scale={scale} selected={selected?.layer === layer ? selected.matrix : null} onSelect={onSelect} />
        ))}
      </div>
    </div>
  );
});

function HeatmapRow({ layer, row, scale, selected, onSelect }: { layer: number; row: FormatReport['cells'][number]; scale: ColorScale; selected: ReportMatrix | null; onSelect(cell: SelectedCell): void }) {
  return (
    <>
      <div className="heatmap-row-label">L{layer}</div>
      {row.map((cell) => {
        const v = cellValue(cell, scale.metric);
        const alert = cell.status === 'alert';
        const isSel = selected === cell.matrix;
        return (
          <button
            key={cell.matrix}
            type="button"
            className={`heatmap-cell${alert ? ' alert' : ''}${isSel ? ' selected' : ''}${cell.fallback ? ' fallback' : ''}`}
            style={{ background: scale.color(v) }}
            data-testid="heatmap-cell"
            data-layer={cell.layer}
            data-matrix={cell.matrix}
            data-value={v === null ? '' : String(v)}
            data-status={cell.status}
            aria-pressed={isSel}
            title={`layer ${cell.layer} · ${MATRIX_LABELS[cell.matrix]}\n${formatMetric(v, scale.metric)}${cell.fallback ? '\nstored as f16 (shape does not fit the blocks)' : ''}${cell.reasons.length ? `\n${cell.reasons.join('\n')}` : ''}`}
            onClick={() => onSelect({ layer: cell.layer, matrix: cell.matrix })}
          />
        );
      })}
    </>
  );
}

/** The shared colour scale of the heatmaps on screen. */
export function HeatmapLegend({ scale, label }: { scale: ColorScale; label: string }) {
  return (
    <div className="heatmap-legend" data-testid="heatmap-legend">
      <span className="muted">{label}</span>
      <span className="legend-end">{formatMetric(scale.best, scale.metric)}</span>
      <span className="legend-bar" style={{ background: PALETTE_GRADIENT }} />
      <span className="legend-end">{formatMetric(scale.worst, scale.metric)}</span>
      <span className="legend-key">
        <span className="legend-swatch alert" /> flagged
      </span>
      <span className="legend-key">
        <span className="legend-swatch fallback" /> stored as f16
      </span>
    </div>
  );
}
