import { useEffect, useMemo } from 'react';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { useStudio } from '../stores/studio.ts';
import { CellDetail } from './CellDetail.tsx';
import { FormatSummary } from './FormatSummary.tsx';
import { Heatmap, HeatmapLegend } from './Heatmap.tsx';
import { LabSetup } from './LabSetup.tsx';
import { colorScale, LAB_METRICS, metricInfo } from './lab-metrics.ts';
import { useLab } from './lab-store.ts';
import { LayerBars, PlanCard } from './PlanCard.tsx';
import { WorstTable } from './WorstTable.tsx';
import './lab.css';

/** The quantization lab page: settings on the left, the report on the right. */
export function QuantLab() {
  const connection = useStudio((s) => s.connection);
  const trainModel = useStudio((s) => s.model);

  useEffect(() => {
    void useLab.getState().refresh();
  }, []);
  useEffect(() => {
    if (connection === 'open' && useLab.getState().formats.length === 0) void useLab.getState().loadFormats();
  }, [connection]);
  useEffect(() => {
    // Start from the model chosen on the Train page, when the lab has none yet.
    const lab = useLab.getState();
    if (trainModel && !lab.model && !lab.modelPath) useLab.setState({ model: trainModel, modelPath: trainModel.path });
  }, [trainModel]);

  return (
    <main className="lab" data-testid="quant-lab">
      <aside className="lab-side">
        <LabSetup />
      </aside>
      <div className="lab-main">
        <Results />
      </div>
    </main>
  );
}

function Results() {
  const report = useLab((s) => s.report);
  const reportError = useLab((s) => s.reportError);
  const metric = useLab((s) => s.metric);
  const left = useLab((s) => s.left);
  const right = useLab((s) => s.right);
  const selected = useLab((s) => s.selected);
  const focus = useLab((s) => s.focus);
  const { setMetric, setLeft, setRight, setFocus, select } = useLab.getState();

  const shown = useMemo(() => (report ? [left, right].filter((k) => k !== '').map((k) => report.formats.find((f) => f.key === k)).filter((f) => f !== undefined) : []), [report, left, right]);
  const scale = useMemo(() => colorScale(shown, metric), [shown, metric]);

  if (reportError) return <ErrorNote error={reportError} testId="lab-report-error" />;
  if (!report) return <EmptyState />;
  const hasCalib = report.calibration !== null;
  const focused = shown.find((f) => f.key === focus) ?? shown[0] ?? report.formats[0];
  const plan = report.plans.find((p) => p.base === focused.key) ?? null;

  return (
    <div className="lab-results" data-testid="lab-results">
      <FormatSummary report={report} onPick={setLeft} />

      <section className="card" data-testid="heatmap-card">
        <div className="lab-toolbar">
          <h2>Error map</h2>
          <div className="lab-segmented" role="radiogroup" aria-label="Metric">
            {LAB_METRICS.map((m) => (
              <button
                key={m.id}
                type="button"
                role="radio"
                aria-checked={metric === m.id}
                className={metric === m.id ? 'on' : ''}
                disabled={m.calibration && !hasCalib}
                title={m.calibration && !hasCalib ? `${m.hint} — run with calibration text to see it` : m.hint}
                data-testid={`metric-${m.id}`}
                onClick={() => setMetric(m.id)}
              >
                {m.label}
              </button>
            ))}
          </div>
          <div className="lab-compare">
            <select aria-label="Left format" data-testid="heatmap-left" value={left} onChange={(e) => setLeft(e.target.value)}>
              {report.formats.map((f) => (
                <option key={f.key} value={f.key}>
                  {f.key}
                </option>
              ))}
            </select>
            <span className="muted">vs</span>
            <select aria-label="Right format" data-testid="heatmap-right" value={right} onChange={(e) => setRight(e.target.value)}>
              <option value="">—</option>
              {report.formats
                .filter((f) => f.key !== left)
                .map((f) => (
                  <option key={f.key} value={f.key}>
                    {f.key}
                  </option>
                ))}
            </select>
          </div>
        </div>
        <div className={`heatmaps${shown.length > 1 ? ' two' : ''}`} data-testid="heatmaps" data-metric={metric}>
          {shown.map((f) => (
            <Heatmap key={f.key} format={f} matrices={report.matrices} scale={scale} selected={selected} onSelect={select} />
          ))}
        </div>
        <HeatmapLegend scale={scale} label={`${metricInfo(metric).label}${shown.length > 1 ? ' · one scale for both' : ''}`} />
      </section>

      {selected ? <CellDetail report={report} selected={selected} formats={shown} onClose={() => select(null)} /> : null}

      <div className="lab-two">
        <WorstTable format={focused} choices={shown.map((f) => f.key)} onFocus={setFocus} selected={selected} onSelect={select} />
        <div className="lab-stack">
          <PlanCard plan={plan} baseKey={focused.key} />
          <LayerBars formats={shown} />
        </div>
      </div>
    </div>
  );
}

function EmptyState() {
  const job = useLab((s) => s.job);
  const running = job !== null && (job.state === 'queued' || job.state === 'running');
  return (
    <section className="card lab-empty" data-testid="lab-empty">
      <h2>Quantization lab</h2>
      {running ? (
        <p>Measuring… the report appears here when the job is done.</p>
      ) : (
        <>
          <p>See, layer by layer, what a weight format does to a model before you ship it.</p>
          <ol className="muted">
            <li>Pick a model (and, if you like, one of your adapters).</li>
            <li>Choose two or more formats — say q8_0 and q4_0 — to compare them side by side.</li>
            <li>Keep the built-in calibration text to also see KL, top-1 agreement and perplexity.</li>
          </ol>
          <p className="muted">
            You get a layers × matrices heatmap, the weight histogram of any linear under each format’s grid, a worst-first table, and which layers to
            keep at a higher precision.
          </p>
        </>
      )}
    </section>
  );
}
