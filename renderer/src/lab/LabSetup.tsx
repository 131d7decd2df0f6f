import { describeFieldError } from '../../../common/field-labels.ts';
import type { QuantAdapterMode, QuantJobSummary } from '../../../common/protocol.ts';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { ModelLine, ModelPathControls } from '../components/ModelPathControls.tsx';
import { PathField } from '../components/PathField.tsx';
import { useShallow } from 'zustand/react/shallow';
import { pickModelSlice } from '../stores/model-slice.ts';
import { useStudio } from '../stores/studio.ts';
import { labProblems, useLab, type CalibChoice } from './lab-store.ts';

const ADAPTER_MODES: { id: QuantAdapterMode; label: string; hint: string }[] = [
  { id: 'on-quantized', label: 'Adapter on a quantized base', hint: 'Q(W) + s·BA: the base is quantized, the adapter stays fp32 (QLoRA-style serving)' },
  { id: 'merged', label: 'Quantize the merged model', hint: 'Q(W + s·BA): merge first, then quantize (a GGUF export of the merged model)' },
];

const CALIB_CHOICES: { id: CalibChoice; label: string }[] = [
  { id: 'sample', label: 'Sample text' },
  { id: 'file', label: 'A file' },
  { id: 'none', label: 'None' },
];

/** Left column of the lab: what to quantize, how, and the Run / Cancel controls. */
export function LabSetup() {
  return (
    <div className="lab-setup">
      <ModelCard />
      <FormatsCard />
      <RunCard />
    </div>
  );
}

function ModelCard() {
  const slice = useLab(useShallow(pickModelSlice));
  const adapterId = useLab((s) => s.adapterId);
  const modes = useLab((s) => s.adapterModes);
  const adapters = useStudio((s) => s.adapters);
  const { setAdapter, toggleAdapterMode } = useLab.getState();
  return (
    <section className="card" data-testid="lab-model">
      <h2>Model</h2>
      <ModelPathControls slice={slice} idPrefix="lab-" />
      <ModelLine slice={slice} testId="lab-model-summary" className="lab-model-line" showHidden />

      <div className="field lab-adapter">
        <label htmlFor="lab-adapter">LoRA adapter (optional)</label>
        <select id="lab-adapter" data-testid="lab-adapter" value={adapterId} onChange={(e) => setAdapter(e.target.value)}>
          <option value="">No adapter: the base model alone</option>
          {adapters.map((a) => (
            <option key={a.id} value={a.id}>
              {a.name} · r {a.r} · {a.targets.length} targets
            </option>
          ))}
        </select>
        {adapters.length === 0 ? <span className="field-hint">Adapters you train appear here.</span> : null}
      </div>
      {adapterId ? (
        <div className="lab-modes" data-testid="lab-adapter-modes">
          {ADAPTER_MODES.map((m) => (
            <label key={m.id} className="check check-wide" title={m.hint}>
              <input type="checkbox" checked={modes.includes(m.id)} onChange={() => toggleAdapterMode(m.id)} data-testid={`lab-mode-${m.id}`} />
              <span>
                {m.label}
                <span className="field-hint lab-mode-hint">{m.hint}</span>
              </span>
            </label>
          ))}
        </div>
      ) : null}
    </section>
  );
}

function FormatsCard() {
  const formats = useLab((s) => s.formats);
  const formatsError = useLab((s) => s.formatsError);
  const chosen = useLab((s) => s.chosen);
  const { toggleFormat } = useLab.getState();
  return (
    <section className="card" data-testid="lab-formats">
      <h2>
        Formats <span className="count muted">{chosen.length} chosen</span>
      </h2>
      {formatsError ? <ErrorNote error={formatsError} testId="lab-formats-error" /> : null}
      <div className="lab-format-grid">
        {formats.map((f) => (
          <label key={f.name} className="check lab-format" data-testid={`lab-format-${f.name}`}>
            <input type="checkbox" checked={chosen.includes(f.name)} onChange={() => toggleFormat(f.name)} />
            <span className="lab-format-name">{f.name}</span>
            <span className="lab-format-label muted">{f.label}</span>
            {f.gguf ? <span className="lab-gguf" title="can be exported to GGUF (llama.cpp)">GGUF</span> : null}
            <span className="lab-format-bits">{f.bitsPerWeight.toFixed(f.bitsPerWeight % 1 === 0 ? 0 : 2)} b/w</span>
          </label>
        ))}
      </div>
    </section>
  );
}

function RunCard() {
  const calib = useLab((s) => s.calib);
  const calibPath = useLab((s) => s.calibPath);
  const rel = useLab((s) => s.relErrThreshold);
  const kl = useLab((s) => s.klThreshold);
  const starting = useLab((s) => s.starting);
  const startError = useLab((s) => s.startError);
  const job = useLab((s) => s.job);
  const progress = useLab((s) => s.progress);
  const cancelling = useLab((s) => s.cancelling);
  const { setCalib, setCalibPath, browseCalib, setThreshold, start, cancel } = useLab.getState();
  const adapterId = useLab((s) => s.adapterId);
  const hasAdapter = useStudio((s) => adapterId !== '' && s.adapters.some((a) => a.id === adapterId));
  // The same checks as the click, as the user changes things: Run is off and says why (as Train does).
  const problems = useLab(useShallow((s) => labProblems(s, hasAdapter).map((p) => describeFieldError(p))));
  const active = job !== null && (job.state === 'queued' || job.state === 'running');
  const fraction = job?.state === 'done' ? 1 : (progress?.fraction ?? 0);
  const state = job?.state ?? 'idle';
  const phase = progress
    ? progress.phase === 'loading'
      ? 'loading the model'
      : `${progress.phase === 'weights' ? 'weights' : 'calibration'} · ${progress.format} · ${progress.done}/${progress.total}`
    : '';

  return (
    <section className="card" data-testid="lab-run">
      <h2>Calibration &amp; thresholds</h2>
      <div className="lab-segmented lab-segmented-fill" role="radiogroup" aria-label="Calibration text">
        {CALIB_CHOICES.map((c) => (
          <button
            key={c.id}
            type="button"
            role="radio"
            aria-checked={calib === c.id}
            className={calib === c.id ? 'on' : ''}
            data-testid={`lab-calib-${c.id}`}
            onClick={() => setCalib(c.id)}
          >
            {c.label}
          </button>
        ))}
      </div>
      {calib === 'file' ? (
        <PathField
          className="lab-calib-path"
          testId="lab-calib-path"
          ariaLabel="Calibration file"
          placeholder="/path/to/text.txt, .jsonl or .json"
          value={calibPath}
          onChange={setCalibPath}
          onBrowse={() => void browseCalib()}
        />
      ) : null}
      <p className="field-hint lab-calib-hint">
        {calib === 'none'
          ? 'Weights only: no KL, cosine or perplexity.'
          : `${calib === 'sample' ? 'The built-in sample dataset' : 'Plain text, JSONL or JSON'}: up to 512 tokens, to compare each layer’s outputs and the next-token distribution with the float model.`}
      </p>
      <div className="grid-2 lab-thresholds">
        <div className="field">
          <label htmlFor="lab-th-rel">Flag rel. error above</label>
          <input id="lab-th-rel" type="text" inputMode="decimal" placeholder="auto" value={rel} data-testid="lab-threshold-relerr" onChange={(e) => setThreshold('relErr', e.target.value)} />
          <span className="field-hint">auto: √3 × median, at least 0.02</span>
        </div>
        <div className="field">
          <label htmlFor="lab-th-kl">Flag KL above</label>
          <input id="lab-th-kl" type="text" inputMode="decimal" placeholder="auto" value={kl} data-testid="lab-threshold-kl" onChange={(e) => setThreshold('kl', e.target.value)} />
          <span className="field-hint">auto: 3 × median, at least 0.01</span>
        </div>
      </div>

      <div className="train-actions lab-actions">
        <button type="button" className="primary" data-testid="lab-run-button" disabled={starting || active || problems.length > 0} onClick={() => void start()}>
          {starting ? 'Starting…' : active ? 'Running…' : 'Run'}
        </button>
        {problems.length > 0 && !active ? (
          <ul className="lab-blockers" data-testid="lab-blockers">
            {problems.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        ) : null}
        {active ? (
          <button type="button" className="danger" data-testid="lab-cancel" disabled={cancelling} onClick={() => void cancel()}>
            {cancelling ? 'Cancelling…' : 'Cancel'}
          </button>
        ) : null}
      </div>
      {job ? (
        <div className="lab-progress" data-testid="lab-progress" data-state={state} data-fraction={fraction.toFixed(3)}>
          <div className="lab-progress-head">
            <span className={`badge badge-${state === 'done' ? 'completed' : state === 'running' ? 'executing' : state}`}>{state}</span>
            <span className="muted">{job.state === 'done' ? 'report ready' : active ? phase : ''}</span>
            <span className="lab-progress-pct">{Math.round(fraction * 100)} %</span>
          </div>
          <div className="bar">
            <div className={`bar-fill ${state === 'done' ? 'bar-completed' : state === 'failed' ? 'bar-failed' : state === 'cancelled' ? 'bar-cancelled' : ''}`} style={{ width: `${(fraction * 100).toFixed(1)}%` }} />
          </div>
          {job.state === 'failed' && job.error ? <ErrorNote error={job.error} testId="lab-job-error" /> : null}
        </div>
      ) : null}
      {startError ? <ErrorNote error={startError} testId="lab-start-error" /> : null}
      <EarlierReports />
    </section>
  );
}

/** Finished reports of this and earlier sessions (the services keep the newest 20 on disk). */
function EarlierReports() {
  const history = useLab((s) => s.history);
  const job = useLab((s) => s.job);
  const { openJob } = useLab.getState();
  const done = history.filter((j) => j.state === 'done');
  if (done.length === 0) return null;
  return (
    <div className="field lab-history">
      <label htmlFor="lab-history">Reports</label>
      <select id="lab-history" data-testid="lab-history" value={job && done.some((j) => j.id === job.id) ? job.id : ''} onChange={(e) => void openJob(e.target.value)}>
        {job && !done.some((j) => j.id === job.id) ? <option value="">This job</option> : null}
        {done.map((j) => (
          <option key={j.id} value={j.id}>
            {reportLabel(j)}
          </option>
        ))}
      </select>
    </div>
  );
}

function reportLabel(j: QuantJobSummary): string {
  const model = j.request.modelPath.split(/[\\/]/).filter(Boolean).at(-1) ?? j.request.modelPath;
  const when = new Date(j.finishedAt ?? j.createdAt).toLocaleString();
  return `${when} · ${model}${j.request.adapterPath ? ' + adapter' : ''} · ${j.request.formats.join(', ')}`;
}
