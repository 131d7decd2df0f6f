import { DATASET_FORMATS, type DatasetFormat } from '../../../common/protocol.ts';
import { useStudio } from '../stores/studio.ts';
import { ErrorNote } from './ErrorNote.tsx';
import { baseName } from './format.ts';
import { PathField } from './PathField.tsx';

const ACCEPT = '.jsonl,.json,.csv,.tsv,.parquet,.txt';
const SHOWN_BAD_RECORDS = 8;

export function DatasetPicker() {
  const path = useStudio((s) => s.datasetPath);
  const dataset = useStudio((s) => s.dataset);
  const error = useStudio((s) => s.datasetError);
  const serverError = useStudio((s) => s.serverErrors.datasetPath);
  const busy = useStudio((s) => s.datasetBusy);
  const format = useStudio((s) => s.form.data.format);
  const badPolicy = useStudio((s) => s.form.data.badRecords);
  const { setDatasetPath, inspectDataset, chooseSampleDataset, browseDataset, uploadDataset, setDataChoice } = useStudio.getState();

  return (
    <section className="card" data-testid="dataset-picker">
      <h2>Dataset</h2>
      <PathField
        testId="dataset-path"
        ariaLabel="Dataset file"
        placeholder="/path/to/data.jsonl (JSONL, JSON, CSV, Parquet, text)"
        value={path}
        onChange={setDatasetPath}
        busy={busy}
        onLoad={() => void inspectDataset()}
        loadTestId="dataset-load"
        onBrowse={() => void browseDataset()}
        browseTestId="dataset-browse"
        upload={{ accept: ACCEPT, buttonTestId: 'dataset-upload-button', testId: 'dataset-upload', onFile: (file) => void uploadDataset(file) }}
      />
      <div className="row-actions">
        <button type="button" className="link" data-testid="use-sample-dataset" disabled={busy} onClick={() => void chooseSampleDataset()}>
          Use the sample dataset
        </button>
        <label className="inline-select">
          <span className="muted">Format</span>
          <select aria-label="Record format" data-testid="dataset-format-select" value={format} onChange={(e) => setDataChoice('format', e.target.value as DatasetFormat)}>
            {DATASET_FORMATS.map((f) => (
              <option key={f} value={f}>
                {f === 'auto' ? 'detect' : f}
              </option>
            ))}
          </select>
        </label>
        {busy ? <span className="muted">reading…</span> : null}
      </div>
      {error ? <ErrorNote error={error} testId="dataset-error" /> : serverError ? <ErrorNote error={{ message: serverError }} testId="dataset-error" /> : null}
      {/* With a summary loaded, an error is a refused run start (say, a broken line): the policy choice stays in reach. */}
      {dataset ? (
        <div data-testid="dataset-summary">
          <dl className="summary">
            <dt>File</dt>
            <dd title={dataset.path}>{baseName(dataset.path)}</dd>
            <dt>Format</dt>
            <dd>
              <span data-testid="dataset-format">{dataset.format}</span> <span className="muted">{format === 'auto' ? '(detected)' : '(chosen)'}</span>
            </dd>
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
            <div className="note note-warn" data-testid="dataset-bad-records" data-count={badCount(dataset)}>
              <div className="note-message">
                {badCount(dataset)} record{badCount(dataset) === 1 ? '' : 's'} in {baseName(dataset.path)} cannot be used:
              </div>
              <ul className="note-list">
                {dataset.badRecords.slice(0, SHOWN_BAD_RECORDS).map((b) => (
                  <li key={b.line}>
                    line {b.line}: {b.message}
                  </li>
                ))}
                {badCount(dataset) > SHOWN_BAD_RECORDS ? <li>… and {badCount(dataset) - SHOWN_BAD_RECORDS} more</li> : null}
              </ul>
              <div className="policy" role="radiogroup" aria-label="Bad records" data-testid="bad-records-policy">
                <span>When training:</span>
                <label>
                  <input type="radio" name="bad-records" value="fail" data-testid="bad-records-fail" checked={badPolicy === 'fail'} onChange={() => setDataChoice('badRecords', 'fail')} />
                  refuse to start
                </label>
                <label>
                  <input type="radio" name="bad-records" value="skip" data-testid="bad-records-skip" checked={badPolicy === 'skip'} onChange={() => setDataChoice('badRecords', 'skip')} />
                  skip them ({badCount(dataset)} left out)
                </label>
              </div>
            </div>
          ) : null}
        </div>
      ) : null}
    </section>
  );
}

/** All bad records; the summary lists at most the first thousand. */
function badCount(dataset: { badRecords: unknown[]; badRecordCount?: number }): number {
  return dataset.badRecordCount ?? dataset.badRecords.length;
}
