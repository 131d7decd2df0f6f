import type { QuantReport } from '../../../common/quant-report.ts';
import { formatBytes } from '../components/format.ts';
import { formatSci } from './lab-metrics.ts';

const pct = (v: number): string => `${(v * 100).toFixed(1)} %`;
const signed = (v: number): string => `${v >= 0 ? '+' : ''}${v.toFixed(Math.abs(v) >= 100 ? 1 : 3)}`;

/** Every format in one table: size, pooled weight error, alerts and — with calibration — what happens at the output. */
export function FormatSummary({ report, onPick }: { report: QuantReport; onPick(key: string): void }) {
  const calib = report.calibration;
  const floatPpl = report.formats.find((f) => f.output)?.output?.perplexityFloat ?? null;
  return (
    <section className="card" data-testid="format-summary">
      <div className="card-title-row">
        <h2>
          Formats
          <span className="count muted">
            {report.model.name} · {report.model.layers} layers · fp16 {formatBytes(report.model.bytesF16)}
            {report.adapter ? ` · adapter ${report.adapter.name} (r ${report.adapter.r})` : ''}
          </span>
        </h2>
        <span className="muted lab-calib-note">
          {calib ? `calibration: ${calib.source}, ${calib.tokens} tokens${floatPpl !== null ? ` · float PPL ${floatPpl.toFixed(2)}` : ''}` : 'weights only (no calibration)'}
        </span>
      </div>
      <div className="lab-table-wrap">
        <table className="lab-table">
          <thead>
            <tr>
              <th>Format</th>
              <th className="num">Bits/w</th>
              <th className="num">Model size</th>
              <th className="num" title="pooled ‖W − Ŵ‖ / ‖W‖ over every linear">Rel. error</th>
              <th className="num">SNR</th>
              <th className="num">Alerts</th>
              {calib ? (
                <>
                  <th className="num" title="mean KL of the next-token distributions">Mean KL</th>
                  <th className="num" title="same top-1 token as the float model">Top-1</th>
                  <th className="num">PPL</th>
                  <th className="num">ΔPPL</th>
                </>
              ) : null}
            </tr>
          </thead>
          <tbody>
            {report.formats.map((f) => (
              <tr
                key={f.key}
                data-testid={`format-row-${f.key}`}
                data-rel-err={f.overall.relErr}
                data-mean-kl={f.output?.meanKl ?? ''}
                className="clickable"
                title="show this format in the left heatmap"
                onClick={() => onPick(f.key)}
              >
                <td>
                  <strong>{f.key}</strong> <span className="muted">{f.label}</span>
                </td>
                <td className="num">{f.bitsPerWeight.toFixed(2)}</td>
                <td className="num">{formatBytes(f.modelBytes)}</td>
                <td className="num" data-testid="format-rel-err">
                  {formatSci(f.overall.relErr)}
                </td>
                <td className="num">{f.overall.snrDb === null ? '∞' : `${f.overall.snrDb.toFixed(1)} dB`}</td>
                <td className="num">{f.alerts > 0 ? <span className="lab-status alert">{f.alerts}</span> : <span className="lab-status ok">0</span>}</td>
                {calib ? (
                  <>
                    <td className="num">{f.output ? formatSci(f.output.meanKl) : '—'}</td>
                    <td className="num">{f.output ? pct(f.output.top1Agreement) : '—'}</td>
                    <td className="num">{f.output ? f.output.perplexityQuant.toFixed(2) : '—'}</td>
                    <td className={`num ${f.output && f.output.perplexityDelta > 0 ? 'worse' : 'better'}`}>{f.output ? signed(f.output.perplexityDelta) : '—'}</td>
                  </>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
