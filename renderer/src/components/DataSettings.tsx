import { useStudio } from '../stores/studio.ts';
import { ErrorNote } from './ErrorNote.tsx';
import { FieldNote } from './FieldNote.tsx';
import { baseName } from './format.ts';
import { NumberField } from './NumberField.tsx';
import { PathField } from './PathField.tsx';

const ACCEPT = '.jsonl,.json,.csv,.tsv,.parquet,.txt';

/** Validation split (percent or a second file), how often to evaluate, packing and the shuffle seed. */
export function DataSettings({ errorOf }: { errorOf: (field: string) => string | undefined }) {
  const validationPath = useStudio((s) => s.form.data.validationPath);
  const packing = useStudio((s) => s.form.data.packing);
  const summary = useStudio((s) => s.validationSummary);
  const error = useStudio((s) => s.validationError);
  const busy = useStudio((s) => s.validationBusy);
  const { setValidationPath, uploadValidationFile, browseValidationFile, setDataChoice } = useStudio.getState();
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
        <PathField
          id="validation-path"
          testId="validation-path"
          placeholder="a second file, used whole for validation"
          value={validationPath}
          onChange={setValidationPath}
          busy={busy}
          onBrowse={() => void browseValidationFile()}
          browseTestId="validation-browse"
          upload={{ accept: ACCEPT, buttonTestId: 'validation-upload-button', testId: 'validation-upload', onFile: (file) => void uploadValidationFile(file) }}
        >
          {byFile ? (
            <button type="button" className="link" data-testid="validation-clear" onClick={() => setValidationPath('')}>
              Clear
            </button>
          ) : null}
        </PathField>
        <FieldNote
          error={pathError}
          errorTestId="error-data.validationPath"
          hintTestId="validation-summary"
          hint={
            summary && byFile
              ? `${baseName(summary.path)}: ${summary.records} ${summary.format} records${summary.badRecords.length > 0 ? `, ${summary.badRecordCount ?? summary.badRecords.length} bad` : ''}`
              : null
          }
        />
        {error ? <ErrorNote error={error} testId="validation-error" /> : null}
      </div>
      <label className="check check-wide">
        <input type="checkbox" data-testid="packing" checked={packing} onChange={(e) => setDataChoice('packing', e.target.checked)} />
        Pack short examples together into rows of the max sequence length
      </label>
    </fieldset>
  );
}
