import { useState } from 'react';
import type { RunConfig } from '../../../common/protocol.ts';
import { useStudio } from '../stores/studio.ts';
import { stepsForEpochs, stepsPerEpoch } from '../stores/epochs.ts';
import { NumberField } from './NumberField.tsx';

const SCHEDULES: { value: RunConfig['train']['schedule']; label: string }[] = [
  { value: 'constant', label: 'Constant' },
  { value: 'linear', label: 'Linear decay' },
  { value: 'cosine', label: 'Cosine decay' },
];

/**
 * The settings most runs leave alone, collapsed under "Advanced": each with one line on what it does. Epochs is a
 * way to type the step count (it writes Steps from the loaded dataset's size), not a setting of its own.
 */
export function AdvancedSettings({ errorOf }: { errorOf: (field: string) => string | undefined }) {
  const advanced = useStudio((s) => s.form.advanced);
  const numbers = useStudio((s) => s.form.numbers);
  const records = useStudio((s) => s.dataset?.records ?? null);
  const setAdvanced = useStudio((s) => s.setAdvanced);
  const setNumber = useStudio((s) => s.setNumber);
  const [epochs, setEpochs] = useState('');
  const perEpoch = stepsPerEpoch(records, numbers);
  const epochResult = epochs.trim() === '' ? null : stepsForEpochs(epochs, perEpoch);
  const epochError = epochResult && !epochResult.ok ? epochResult.message : null;
  const scheduleError = errorOf('train.schedule');

  return (
    <details className="advanced" data-testid="advanced-settings">
      <summary>Advanced</summary>
      <fieldset>
        <legend className="visually-hidden">Advanced training settings</legend>
        <div className="grid-2">
          <NumberField
            field="train.gradAccumulation"
            label="Gradient accumulation"
            hint="micro-batches per optimizer step (effective batch = batch × this)"
            error={errorOf('train.gradAccumulation')}
          />
          <NumberField field="train.warmupSteps" label="Warmup steps" hint="learning rate rises from 0 over these steps" error={errorOf('train.warmupSteps')} />
          <div className={`field${scheduleError ? ' field-invalid' : ''}`}>
            <label htmlFor="field-train.schedule">Learning-rate schedule</label>
            <select
              id="field-train.schedule"
              data-testid="field-train.schedule"
              value={advanced.schedule}
              onChange={(e) => setAdvanced('schedule', e.target.value as RunConfig['train']['schedule'])}
            >
              {SCHEDULES.map((s) => (
                <option key={s.value} value={s.value}>
                  {s.label}
                </option>
              ))}
            </select>
            {scheduleError ? (
              <div className="field-error" role="alert">
                {scheduleError}
              </div>
            ) : (
              <div className="field-hint">how the learning rate changes after warmup, down to 0 at the last step</div>
            )}
          </div>
          <NumberField field="train.weightDecay" label="Weight decay" hint="AdamW's pull of the LoRA weights toward 0 (0 = off)" error={errorOf('train.weightDecay')} />
          <NumberField field="train.maxGradNorm" label="Max grad norm" hint="clip the gradient's global norm to this (0 = no clipping)" error={errorOf('train.maxGradNorm')} />
          <div className="field">
            <label htmlFor="field-epochs">Epochs</label>
            <input
              id="field-epochs"
              data-testid="field-epochs"
              type="text"
              inputMode="decimal"
              autoComplete="off"
              value={epochs}
              disabled={perEpoch === null}
              aria-invalid={epochError ? true : undefined}
              onChange={(e) => {
                setEpochs(e.target.value);
                const r = stepsForEpochs(e.target.value, perEpoch);
                if (r.ok) setNumber('train.steps', String(r.steps));
              }}
            />
            {epochError ? (
              <div className="field-error" role="alert" data-testid="error-epochs">
                {epochError}
              </div>
            ) : (
              <div className="field-hint" data-testid="epochs-hint">
                {perEpoch === null ? 'load a dataset to train for whole passes over it' : `sets Steps: one pass is ${perEpoch} step${perEpoch === 1 ? '' : 's'}`}
              </div>
            )}
          </div>
        </div>
        <label className="check">
          <input type="checkbox" data-testid="field-lora.rslora" checked={advanced.rslora} onChange={(e) => setAdvanced('rslora', e.target.checked)} />
          rsLoRA <span className="muted">— scale by alpha / √r instead of alpha / r (steadier at high ranks)</span>
        </label>
      </fieldset>
    </details>
  );
}
