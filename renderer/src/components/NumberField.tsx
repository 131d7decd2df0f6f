import { usePresets } from '../stores/preset-store.ts';
import { useStudio } from '../stores/studio.ts';
import type { NumberField as NumberFieldKey } from '../stores/form.ts';

interface Props {
  field: NumberFieldKey;
  label: string;
  hint?: string;
  error?: string;
  disabled?: boolean;
}

/** A text box for a number (so "1e-4" and "-" can be typed), with its validation message right under it. */
export function NumberField({ field, label, hint, error, disabled }: Props) {
  const value = useStudio((s) => s.form.numbers[field]);
  const setNumber = useStudio((s) => s.setNumber);
  const id = `field-${field}`;
  // Set by the preset just applied (and not edited since): marked, with what it was.
  const change = usePresets((s) => s.applied?.changes.find((c) => c.field === field && s.applied?.after.numbers[field] === value));
  return (
    <div className={`field${error ? ' field-invalid' : ''}${change ? ' field-changed' : ''}`} title={change ? `was ${change.from} before the preset` : undefined}>
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        data-testid={id}
        type="text"
        inputMode="decimal"
        spellCheck={false}
        autoComplete="off"
        value={value}
        disabled={disabled}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `error-${field}` : undefined}
        onChange={(e) => setNumber(field, e.target.value)}
      />
      {error ? (
        <div className="field-error" id={`error-${field}`} data-testid={`error-${field}`} role="alert">
          {error}
        </div>
      ) : hint ? (
        <div className="field-hint">{hint}</div>
      ) : null}
    </div>
  );
}
