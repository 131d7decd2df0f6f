import { useState } from 'react';
import { activateOnKey } from '../components/keyboard.ts';
import type { FormatReport, ReportThreshold } from '../../../common/quant-report.ts';
import { formatMetric, MATRIX_LABELS } from './lab-metrics.ts';
import type { SelectedCell } from './lab-store.ts';

const FIRST_ROWS = 12;

function describe(t: ReportThreshold): string {
  const what = t.metric === 'kl' ? 'output KL' : 'rel. error';
  const why =
    t.source === 'user'
      ? 'your threshold'
      : t.floor !== null && t.multiplier !== null && t.multiplier * t.median < t.floor
        ? 'the floor; the median is far below it'
        : `${t.multiplier?.toFixed(2) ?? '?'} × median`;
  return `${what} > ${formatMetric(t.value, t.metric === 'kl' ? 'kl' : 'relErr')} (${why})`;
}

/** Every linear of one format, worst first (by output KL with calibration, else by relative error). */
interface Props {
  format: FormatReport;
  /** Formats on screen the table can switch to. */
  choices: string[];
  onFocus(key: string): void;
  selected: SelectedCell | null;
  onSelect(cell: SelectedCell): void;
}

export function WorstTable({ format, choices, onFocus, selected, onSelect }: Props) {
  const [all, setAll] = useState(false);
  const rows = all ? format.worst : format.worst.slice(0, FIRST_ROWS);
  return (
    <section className="card" data-testid="worst-table" data-format={format.key}>
      <div className="card-title-row">
        <h2>
          Worst first <span className="count muted">by {format.sortedBy === 'kl' ? 'output KL' : 'relative error'}</span>
        </h2>
        {choices.length > 1 ? (
          <div className="lab-segmented" role="radiogroup" aria-label="Format of the table">
            {choices.map((k) => (
              <button key={k} type="button" role="radio" aria-checked={k === format.key} className={k === format.key ? 'on' : ''} data-testid={`worst-format-${k}`} onClick={() => onFocus(k)}>
                {k}
              </button>
            ))}
          </div>
        ) : null}
      </div>
      <p className="muted lab-threshold" data-testid="worst-threshold">
        Alert when {describe(format.thresholds.weight)}
        {format.thresholds.activation ? <> or {describe(format.thresholds.activation)}</> : null}.
      </p>
      <div className="lab-table-wrap">
        <table className="lab-table">
          <thead>
            <tr>
              <th className="num">#</th>
              <th>Layer</th>
              <th>Matrix</th>
              <th className="num">Rel. error</th>
              <th className="num">SNR</th>
              <th className="num">KL</th>
              <th className="num">Cosine</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => {
              const isSel = selected?.layer === r.layer && selected.matrix === r.matrix;
              return (
                <tr
                  key={`${r.layer}-${r.matrix}`}
                  data-testid="worst-row"
                  data-status={r.status}
                  className={`clickable${isSel ? ' selected' : ''}`}
                  tabIndex={0}
                  onClick={() => onSelect({ layer: r.layer, matrix: r.matrix })}
                  onKeyDown={activateOnKey(() => onSelect({ layer: r.layer, matrix: r.matrix }))}
                >
                  <td className="num muted">{i + 1}</td>
                  <td>{r.layer}</td>
                  <td>
                    <code>{MATRIX_LABELS[r.matrix]}</code>
                  </td>
                  <td className="num">{formatMetric(r.relErr, 'relErr')}</td>
                  <td className="num">{formatMetric(r.snrDb ?? Number.POSITIVE_INFINITY, 'snrDb')}</td>
                  <td className="num">{formatMetric(r.kl, 'kl')}</td>
                  <td className="num">{formatMetric(r.cosine, 'cosine')}</td>
                  <td>
                    <span className={`lab-status ${r.status === 'alert' ? 'alert' : 'ok'}`}>{r.status}</span>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {format.worst.length > FIRST_ROWS ? (
        <div className="row-actions">
          <button type="button" className="link" onClick={() => setAll(!all)} data-testid="worst-toggle">
            {all ? `Show the first ${FIRST_ROWS}` : `Show all ${format.worst.length}`}
          </button>
        </div>
      ) : null}
    </section>
  );
}
