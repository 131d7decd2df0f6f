import { useEffect, useState } from 'react';
import type { RunSummary, StudioErrorInfo } from '../../../common/protocol.ts';
import { RUN_NOTES_MAX } from '../../../common/run-info.ts';
import { errorInfo } from '../client/transport.ts';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { useStudio } from '../stores/studio.ts';
import { useRunsPage } from './runs-store.ts';
import { checkRunInfo, draftOfRun, type RunInfoDraft } from './run-manage-view.ts';

/**
 * A run's name, tags and notes, editable in any state. Checked as typed (run-manage-view.ts checkRunInfo, the
 * services' schema); Save is off with the reasons until there is a change that passes.
 */
export function RunInfoEditor({ run }: { run: RunSummary }) {
  const connected = useStudio((s) => s.connection === 'open');
  const updateInfo = useRunsPage((s) => s.updateInfo);
  const [draft, setDraft] = useState<RunInfoDraft>(() => draftOfRun(run));
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<StudioErrorInfo | null>(null);
  const [dirty, setDirty] = useState(false);

  // Another window (or the CLI) changed it, or another run opened: show what the run holds unless edits are pending.
  const key = `${run.id}\n${run.name}\n${run.notes ?? ''}\n${(run.tags ?? []).join(',')}`;
  useEffect(() => {
    if (!dirty) setDraft(draftOfRun(run));
  }, [key]); // `key` is exactly the run's editable fields
  useEffect(() => {
    setDirty(false);
    setError(null);
    setDraft(draftOfRun(run));
  }, [run.id]); // only a different run resets the editor

  const check = checkRunInfo(draft, run);
  const errors = check.ok ? {} : check.errors;
  const reasons = !connected ? ['waiting for the studio to answer'] : !check.ok ? Object.values(errors) : !check.changed ? ['nothing changed'] : [];
  const edit = (k: keyof RunInfoDraft, v: string) => {
    setDirty(true);
    setError(null);
    setDraft((d) => ({ ...d, [k]: v }));
  };
  const save = async () => {
    if (!check.ok || !check.changed) return;
    setSaving(true);
    try {
      const next = await updateInfo(run.id, check.patch);
      setDirty(false);
      setDraft(draftOfRun(next));
    } catch (e) {
      setError(errorInfo(e));
    } finally {
      setSaving(false);
    }
  };

  return (
    <form
      className="run-info"
      data-testid="run-info"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <h3>About this run</h3>
      <div className="run-info-grid">
        <div className={`field${errors.name ? ' field-invalid' : ''}`}>
          <label htmlFor="run-info-name">Name</label>
          <input id="run-info-name" type="text" data-testid="run-info-name" value={draft.name} onChange={(e) => edit('name', e.target.value)} />
          {errors.name ? (
            <div className="field-error" role="alert">
              {errors.name}
            </div>
          ) : null}
        </div>
        <div className={`field${errors.tags ? ' field-invalid' : ''}`}>
          <label htmlFor="run-info-tags">Tags</label>
          <input id="run-info-tags" type="text" data-testid="run-info-tags" placeholder="baseline, lr-sweep" value={draft.tags} onChange={(e) => edit('tags', e.target.value)} />
          {errors.tags ? (
            <div className="field-error" role="alert">
              {errors.tags}
            </div>
          ) : (
            <div className="field-hint">comma-separated; the Runs list filters by them</div>
          )}
        </div>
      </div>
      <div className={`field${errors.notes ? ' field-invalid' : ''}`}>
        <label htmlFor="run-info-notes">Notes</label>
        <textarea id="run-info-notes" rows={3} maxLength={RUN_NOTES_MAX} data-testid="run-info-notes" placeholder="what you tried, what you saw" value={draft.notes} onChange={(e) => edit('notes', e.target.value)} />
        {errors.notes ? (
          <div className="field-error" role="alert">
            {errors.notes}
          </div>
        ) : null}
      </div>
      {error ? <ErrorNote error={error} testId="run-info-error" /> : null}
      <div className="run-info-actions">
        <button type="submit" className="primary" data-testid="run-info-save" disabled={reasons.length > 0 || saving} title={reasons.join('; ') || 'Save the name, tags and notes'}>
          {saving ? 'Saving…' : 'Save'}
        </button>
        {dirty ? (
          <button
            type="button"
            data-testid="run-info-revert"
            onClick={() => {
              setDirty(false);
              setError(null);
              setDraft(draftOfRun(run));
            }}
          >
            Revert
          </button>
        ) : null}
        {dirty && reasons.length > 0 && check.ok === false ? (
          <span className="muted" data-testid="run-info-blockers">
            {reasons.join(' · ')}
          </span>
        ) : null}
      </div>
    </form>
  );
}
