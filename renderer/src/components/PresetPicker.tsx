import { useMemo, useState } from 'react';
import { presetNameProblem, BUILT_IN_PRESETS, presetFromStored } from '../stores/presets.ts';
import { usePresets } from '../stores/preset-store.ts';
import { useStudio } from '../stores/studio.ts';

/**
 * Presets on the Train form: choose one to fill the settings (the changes are listed, by label, old → new, with
 * Undo), or save the form's settings as your own preset by name.
 */
export function PresetPicker() {
  const user = usePresets((s) => s.user);
  const applied = usePresets((s) => s.applied);
  const form = useStudio((s) => s.form);
  const { apply, undo, dismiss, save, remove } = usePresets.getState();
  const presets = useMemo(() => [...BUILT_IN_PRESETS, ...user.map(presetFromStored)], [user]);
  const [naming, setNaming] = useState(false);
  const [name, setName] = useState('');
  const [chosen, setChosen] = useState('');
  const problem = naming ? presetNameProblem(name) : null;
  const replacing = naming && !problem && user.some((p) => p.name.toLowerCase() === name.trim().toLowerCase());
  const chosenPreset = presets.find((p) => p.id === chosen);

  return (
    <div className="presets" data-testid="presets">
      <label className="presets-label" htmlFor="preset-select">
        Preset
      </label>
      <select
        id="preset-select"
        data-testid="preset-select"
        value={chosen}
        onChange={(e) => {
          const p = presets.find((x) => x.id === e.target.value);
          setChosen(e.target.value);
          if (p) apply(p);
        }}
      >
        <option value="">Choose a preset…</option>
        <optgroup label="Built in">
          {BUILT_IN_PRESETS.map((p) => (
            <option key={p.id} value={p.id} title={p.description}>
              {p.name}
            </option>
          ))}
        </optgroup>
        {user.length > 0 ? (
          <optgroup label="Yours">
            {user.map((p) => (
              <option key={p.name} value={`user:${p.name.toLowerCase()}`}>
                {p.name}
              </option>
            ))}
          </optgroup>
        ) : null}
      </select>
      {chosenPreset && !chosenPreset.builtIn ? (
        <button
          type="button"
          className="link"
          data-testid="preset-delete"
          onClick={() => {
            remove(chosenPreset.name);
            setChosen('');
          }}
        >
          Delete preset
        </button>
      ) : null}
      {naming ? (
        <form
          className="preset-save"
          onSubmit={(e) => {
            e.preventDefault();
            if (problem) return;
            save(name);
            setChosen(`user:${name.trim().toLowerCase()}`);
            setNaming(false);
            setName('');
          }}
        >
          <input type="text" data-testid="preset-name" aria-label="Preset name" placeholder="name of the preset" value={name} autoFocus onChange={(e) => setName(e.target.value)} onKeyDown={(e) => e.key === 'Escape' && setNaming(false)} />
          <button type="submit" data-testid="preset-save-confirm" disabled={problem !== null} title={problem ?? undefined}>
            {replacing ? 'Replace' : 'Save'}
          </button>
          <button type="button" onClick={() => setNaming(false)}>
            Cancel
          </button>
          {problem && name ? (
            <span className="field-error" role="alert" data-testid="preset-name-error">
              {problem}
            </span>
          ) : null}
        </form>
      ) : (
        <button type="button" className="link" data-testid="preset-save" onClick={() => setNaming(true)} title="Keep these settings (not the model or dataset) as a preset of your own">
          Save as preset…
        </button>
      )}
      {chosenPreset ? <div className="muted presets-description">{chosenPreset.description}</div> : null}
      {applied ? (
        <div className="note preset-changes" role="status" data-testid="preset-changes">
          {applied.changes.length === 0 ? (
            <span>“{applied.name}” changed nothing: the form already had its settings.</span>
          ) : (
            <>
              <span>
                “{applied.name}” changed {applied.changes.length} setting{applied.changes.length === 1 ? '' : 's'}:
              </span>
              <ul>
                {applied.changes.map((c) => (
                  <li key={c.field} data-field={c.field}>
                    {c.label}: <s>{c.from}</s> → <strong>{c.to}</strong>
                  </li>
                ))}
              </ul>
            </>
          )}
          <div className="preset-changes-actions">
            {form === applied.after && applied.changes.length > 0 ? (
              <button type="button" className="link" data-testid="preset-undo" onClick={undo}>
                Undo
              </button>
            ) : null}
            <button type="button" className="link" data-testid="preset-dismiss" onClick={dismiss}>
              Hide
            </button>
          </div>
        </div>
      ) : null}
    </div>
  );
}
