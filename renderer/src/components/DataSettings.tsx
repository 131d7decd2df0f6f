import { useRef } from 'react';
import { useStudio } from '../stores/studio.ts';
import { ErrorNote } from './ErrorNote.tsx';
import { baseName } from './format.ts';
import { NumberField } from './NumberField.tsx';

const ACCEPT = '.jsonl,.json,.csv,.tsv,.parquet,.txt';

/** Validation split (percent or a second file), how often to evaluate, packing and the shuffle seed. */
export function DataSettings({ errorOf }: { errorOf: (field: string) => string | undefined }) {
  const validationPath = useStudio((s) => s.form.data.validationPath);
  const packing = useStudio((s) => s.form.data.packing);
  const summary = useStudio((s) => s.validationSummary);
  const error = useStudio((s) => s.validationError);
  const busy = useStudio((s) => s.validationBusy);
  const isElectron = useStudio((s) => s.client?.host === 'electron');
  const { setValidationPath, uploadValidationFile, browseValidationFile, setDataChoice } = useStudio.getState();
  const fileInput = useRef<HTMLInputElement>(null);
  const byFile = validationPath.trim() !== '';
  const pathError = errorOf('data.validationPath');

  return (
    <fieldset>
      <legend>Data</legend>
      <div className="grid-3">
        <NumberField
          field="train.validationPercent"
          label="Validation %"
          hint={byFile ? 'the file below is used instead' : 'held out, not trained on'}
          error={errorOf('train.validationPercent')}
          disabled={byFile}
        />
        <NumberField field="train.evalEverySteps" label="Evaluate every" hint="steps (0: at the end)" error={errorOf('train.evalEverySteps')} />
        <NumberField field="train.seed" label="Shuffle seed" hint="same seed, same order" error={errorOf('train.seed')} />
      </div>
      <div className={`field${pathError ? ' field-invalid' : ''}`}>
        <label htmlFor="validation-path">Validation file (optional)</label>
        <div className="path-row">
          <input
            id="validation-path"
            type="text"
            data-testid="validation-path"
            placeholder="a second file, used whole for validation"
            spellCheck={false}
            value={validationPath}
            onChange={(e) => setValidationPath(e.target.value)}
          />
          {isElectron ? (
            <button type="button" data-testid="validation-browse" disabled={busy} onClick={() => void browseValidationFile()}>
              Browse…
            </button>
          ) : (
            <>
              <button type="button" data-testid="validation-upload-button" disabled={busy} onClick={() => fileInput.current?.click()}>
                Upload…
              </button>
              <input
                ref={fileInput}
                type="file"
                accept={ACCEPT}
                hidden
                data-testid="validation-upload"
                onChange={(e) => {
                  const file = e.target.files?.[0];
                  e.target.value = '';
                  if (file) void uploadValidationFile(file);
                }}
              />
            </>
          )}
          {byFile ? (
            <button type="button" className="link" data-testid="validation-clear" onClick={() => setValidationPath('')}>
              Clear
            </button>
          ) : null}
        </div>
        {pathError ? (
          <div className="field-error" data-testid="error-data.validationPath" role="alert">
            {pathError}
          </div>
        ) : summary && byFile ? (
          <div className="field-hint" data-testid="validation-summary">
            {baseName(summary.path)}: {summary.records} {summary.format} records
            {summary.badRecords.length > 0 ? `, ${summary.badRecordCount ?? summary.badRecords.length} bad` : ''}
          </div>
        ) : null}
        {error ? <ErrorNote error={error} testId="validation-error" /> : null}
      </div>
      <label className="check check-wide">
        <input type="checkbox" data-testid="packing" checked={packing} onChange={(e) => setDataChoice('packing', e.target.checked)} />
        Pack short examples together into rows of the max sequence length
      </label>
    </fieldset>
  );
}
