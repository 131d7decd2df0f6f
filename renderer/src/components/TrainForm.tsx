import { useMemo } from 'react';
import { LORA_TARGETS } from '../../../common/protocol.ts';
import { generatedRunName } from '../../../common/run-info.ts';
import { checkForm } from '../stores/form.ts';
import { trainBlockers } from '../stores/train-blockers.ts';
import { MemoryEstimate } from '../runs/MemoryEstimate.tsx';
import { AdvancedSettings } from './AdvancedSettings.tsx';
import { ComputeSettings } from './ComputeSettings.tsx';
import { FieldNote } from './FieldNote.tsx';
import { isActive, useStudio } from '../stores/studio.ts';
import { DataSettings } from './DataSettings.tsx';
import { ErrorNote } from './ErrorNote.tsx';
import { EvalPromptsSettings } from './EvalPromptsSettings.tsx';
import { NumberField } from './NumberField.tsx';
import { PresetPicker } from './PresetPicker.tsx';
import { SettingsFileButtons } from './SettingsFileButtons.tsx';

export function TrainForm() {
  const form = useStudio((s) => s.form);
  const modelPath = useStudio((s) => s.modelPath);
  const datasetPath = useStudio((s) => s.datasetPath);
  const serverErrors = useStudio((s) => s.serverErrors);
  const starting = useStudio((s) => s.starting);
  const startError = useStudio((s) => s.startError);
  const connection = useStudio((s) => s.connection);
  const model = useStudio((s) => s.model);
  const modelError = useStudio((s) => s.modelError);
  const modelBusy = useStudio((s) => s.modelBusy);
  const dataset = useStudio((s) => s.dataset);
  const datasetError = useStudio((s) => s.datasetError);
  const datasetBusy = useStudio((s) => s.datasetBusy);
  const validationError = useStudio((s) => s.validationError);
  // Runs that hold or wait for a device: a new run joins the queue behind them.
  const busyRuns = useStudio((s) => Object.values(s.runs).filter((r) => isActive(r) && r.state !== 'paused').length);
  const { toggleTarget, startRun, setRunName } = useStudio.getState();

  // The validator the services run, on every keystroke: messages appear next to their field as the user types.
  const check = useMemo(() => checkForm(form, modelPath.trim(), datasetPath.trim()), [form, modelPath, datasetPath]);
  const errorOf = (field: string): string | undefined => check.errors[field] ?? serverErrors[field];

  // Everything that would make the services refuse the run, known before the click: Train stays off and says why.
  const blockers = trainBlockers({
    connection,
    check,
    modelPath,
    model,
    modelError,
    modelBusy,
    datasetPath,
    dataset,
    datasetError,
    datasetBusy,
    badRecords: form.data.badRecords,
    validationPath: form.data.validationPath,
    validationError,
  });
  const canTrain = blockers.length === 0 && !starting;
  const targetsError = errorOf('lora.targets');

  return (
    <section className="card" data-testid="train-form" aria-labelledby="train-form-title">
      <div className="card-title-row">
        <h2 id="train-form-title">Training settings</h2>
        <SettingsFileButtons />
      </div>
      <PresetPicker />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (canTrain) void startRun();
        }}
      >
        <RunNameField
          value={form.name}
          placeholder={model && datasetPath.trim() ? generatedRunName(model.name, datasetPath.trim(), form.numbers['lora.r'].trim() || '?') : 'generated from the model, the dataset and the rank'}
          error={errorOf('name')}
          onChange={setRunName}
        />
        <fieldset>
          <legend>LoRA</legend>
          <div className="grid-3">
            <NumberField field="lora.r" label="Rank (r)" error={errorOf('lora.r')} />
            <NumberField field="lora.alpha" label="Alpha" hint="scaling = alpha / r" error={errorOf('lora.alpha')} />
            <NumberField field="lora.dropout" label="Dropout" error={errorOf('lora.dropout')} />
          </div>
          <div className={`field${targetsError ? ' field-invalid' : ''}`}>
            <span className="label">Target modules</span>
            <div className="checks" role="group" aria-label="Target modules" data-testid="field-lora.targets">
              {LORA_TARGETS.map((t) => (
                <label key={t} className="check">
                  <input type="checkbox" data-testid={`target-${t}`} checked={form.targets.includes(t)} onChange={() => toggleTarget(t)} />
                  <code>{t}</code>
                </label>
              ))}
            </div>
            <FieldNote error={targetsError} errorTestId="error-lora.targets" />
          </div>
        </fieldset>
        <fieldset>
          <legend>Optimisation</legend>
          <div className="grid-2">
            <NumberField field="train.learningRate" label="Learning rate" hint="AdamW" error={errorOf('train.learningRate')} />
            <NumberField field="train.steps" label="Steps" error={errorOf('train.steps')} />
            <NumberField field="train.batchSize" label="Batch size" error={errorOf('train.batchSize')} />
            <NumberField field="train.maxSeqLen" label="Max sequence length" hint="tokens" error={errorOf('train.maxSeqLen')} />
          </div>
        </fieldset>
        <AdvancedSettings errorOf={errorOf} />
        <EvalPromptsSettings errorOf={errorOf} />
        <DataSettings errorOf={errorOf} />
        <ComputeSettings errorOf={errorOf} />
        <MemoryEstimate />
        <div className="train-actions">
          <button
            type="submit"
            className="primary"
            data-testid="train-button"
            disabled={!canTrain}
            aria-describedby={blockers.length > 0 ? 'train-blockers' : undefined}
          >
            {starting ? 'Starting…' : busyRuns > 0 ? 'Train (queue)' : 'Train'}
          </button>
          {blockers.length > 0 ? (
            <div className="train-blockers" id="train-blockers" data-testid="train-blocked">
              <span className="muted">Train starts once these are fixed:</span>
              <ul data-testid="train-blockers">
                {blockers.map((b) => (
                  <li key={`${b.field}:${b.message}`} data-field={b.field}>
                    {b.message}
                  </li>
                ))}
              </ul>
            </div>
          ) : (
            <span className="muted" data-testid="train-blocked">
              {busyRuns > 0 ? `${busyRuns} run${busyRuns === 1 ? ' is' : 's are'} training or waiting: this one waits its turn and starts by itself.` : ''}
            </span>
          )}
        </div>
        {startError ? <ErrorNote error={startError} testId="start-error" /> : null}
      </form>
    </section>
  );
}

/** The next run's name; empty: the services generate one (the placeholder shows which). Renamed later on the Runs page. */
function RunNameField({ value, placeholder, error, onChange }: { value: string; placeholder: string; error?: string; onChange(v: string): void }) {
  return (
    <div className={`field run-name-field${error ? ' field-invalid' : ''}`}>
      <label htmlFor="field-name">Run name</label>
      <input id="field-name" data-testid="field-name" type="text" maxLength={200} autoComplete="off" placeholder={placeholder} value={value} onChange={(e) => onChange(e.target.value)} />
      <FieldNote error={error} errorTestId="error-name" hint="optional; tags and notes go on the run, on the Runs page" />
    </div>
  );
}
