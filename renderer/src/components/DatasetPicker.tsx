import { useRef } from 'react';
import { useStudio } from '../stores/studio.ts';
import { ErrorNote } from './ErrorNote.tsx';
import { baseName } from './format.ts';

const ACCEPT = '.jsonl,.json,.csv,.parquet,.txt';
const SHOWN_BAD_RECORDS = 8;

export function DatasetPicker() {
  const path = useStudio((s) => s.datasetPath);
  const dataset = useStudio((s) => s.dataset);
  const error = useStudio((s) => s.datasetError);
  const serverError = useStudio((s) => s.serverErrors.datasetPath);
  const busy = useStudio((s) => s.datasetBusy);
  const isElectron = useStudio((s) => s.client?.host === 'electron');
  const { setDatasetPath, inspectDataset, chooseSampleDataset, browseDataset, uploadDataset } = useStudio.getState();
  const fileInput = useRef<HTMLInputElement>(null);

  return (
    <section className="card" data-testid="dataset-picker">
      <h2>Dataset</h2>
      <form
        className="path-row"
        onSubmit={(e) => {
          e.preventDefault();
          void inspectDataset();
        }}
      >
        <input
          type="text"
          data-testid="dataset-path"
          aria-label="Dataset file"
          placeholder="/path/to/data.jsonl (JSONL, JSON, CSV, Parquet, text)"
          spellCheck={false}
          value={path}
          onChange={(e) => setDatasetPath(e.target.value)}
        />
        <button type="submit" data-testid="dataset-load" disabled={busy}>
          Load
        </button>
        {isElectron ? (
          <button type="button" data-testid="dataset-browse" disabled={busy} onClick={() => void browseDataset()}>
            Browse…
          </button>
        ) : (
          <>
            <button type="button" data-testid="dataset-upload-button" disabled={busy} onClick={() => fileInput.current?.click()}>
              Upload…
            </button>
            <input
              ref={fileInput}
              type="file"
              accept={ACCEPT}
              hidden
              data-testid="dataset-upload"
              onChange={(e) => {
                const file = e.target.files?.[0];
                // Reset so choosing the same file again (after fixing it) fires another change.
                e.target.value = '';
                if (file) void uploadDataset(file);
              }}
            />
          </>
        )}
      </form>
      <div className="row-actions">
        <button type="button" className="link" data-testid="use-sample-dataset" disabled={busy} onClick={() => void chooseSampleDataset()}>
          Use the sample dataset
        </button>
        {busy ? <span className="muted">reading…</span> : null}
      </div>
      {error ? <ErrorNote error={error} testId="dataset-error" /> : serverError ? <ErrorNote error={{ message: serverError }} testId="dataset-error" /> : null}
      {dataset && !error ? (
        <div data-testid="dataset-summary">
          <dl className="summary">
            <dt>File</dt>
            <dd title={dataset.path}>{baseName(dataset.path)}</dd>
            <dt>Format</dt>
            <dd data-testid="dataset-format">{dataset.format}</dd>
            <dt>Records</dt>
            <dd data-testid="dataset-records">{dataset.records}</dd>
            {dataset.truncated ? (
              <>
                <dt>Truncated</dt>
                <dd className="warn">{dataset.truncated} longer than the max sequence length</dd>
              </>
            ) : null}
          </dl>
          {dataset.badRecords.length > 0 ? (
            <div className="note note-warn" data-testid="dataset-bad-records">
              <div className="note-message">
                {dataset.badRecords.length} record{dataset.badRecords.length === 1 ? '' : 's'} in {baseName(dataset.path)} cannot be used:
              </div>
              <ul className="note-list">
                {dataset.badRecords.slice(0, SHOWN_BAD_RECORDS).map((b) => (
                  <li key={b.line}>
                    line {b.line}: {b.message}
                  </li>
                ))}
                {dataset.badRecords.length > SHOWN_BAD_RECORDS ? <li>… and {dataset.badRecords.length - SHOWN_BAD_RECORDS} more</li> : null}
              </ul>
            </div>
          ) : null}
          {dataset.preview.length > 0 ? (
            <div className="preview" data-testid="dataset-preview">
              <PreviewText text={dataset.preview[0].text} spans={dataset.preview[0].trainedSpans} />
            </div>
          ) : null}
        </div>
      ) : null}
    </section>
  );
}

/** The first example, with the parts the loss is computed on highlighted. */
function PreviewText({ text, spans }: { text: string; spans: [number, number][] }) {
  const clipped = text.length > 600 ? `${text.slice(0, 600)}…` : text;
  const parts: { text: string; trained: boolean }[] = [];
  let at = 0;
  for (const [start, end] of [...spans].sort((a, b) => a[0] - b[0])) {
    const s = Math.max(at, Math.min(start, clipped.length));
    const e = Math.max(s, Math.min(end, clipped.length));
    if (s > at) parts.push({ text: clipped.slice(at, s), trained: false });
    if (e > s) parts.push({ text: clipped.slice(s, e), trained: true });
    at = e;
  }
  if (at < clipped.length) parts.push({ text: clipped.slice(at), trained: false });
  return (
    <pre>
      {parts.map((p, i) =>
        p.trained ? (
          <mark key={i} title="trained on">
            {p.text}
          </mark>
        ) : (
          <span key={i}>{p.text}</span>
        ),
      )}
    </pre>
  );
}
