/**
 * An adapter's name in the Adapters list, renamed in place ('adapters.rename'): Rename opens a field checked as you
 * type (the same schema the services use), Enter or Save keeps it, Escape or Cancel leaves the name as it was.
 */
import { useState } from 'react';
import type { AdapterSummary, StudioErrorInfo } from '../../../common/protocol.ts';
import { AdapterNameSchema } from '../../../common/run-info.ts';
import { errorInfo } from '../client/transport.ts';
import { useStudio } from '../stores/studio.ts';
import { ErrorNote } from './ErrorNote.tsx';
import './adapter-name.css';

export function AdapterName({ adapter }: { adapter: AdapterSummary }) {
  const client = useStudio((s) => s.client);
  const connected = useStudio((s) => s.connection === 'open');
  const [draft, setDraft] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<StudioErrorInfo | null>(null);

  if (draft === null) {
    return (
      <div className="adapter-name-row">
        <span className="adapter-name" data-testid="adapter-name">
          {adapter.name}
        </span>
        <button type="button" className="link" data-testid="adapter-rename" disabled={!connected} aria-label={`Rename ${adapter.name}`} onClick={() => setDraft(adapter.name)}>
          Rename
        </button>
      </div>
    );
  }

  const check = AdapterNameSchema.safeParse(draft);
  const problem = check.success ? null : (check.error.issues[0]?.message ?? 'not a valid name');
  const save = async () => {
    if (!client || !check.success || busy) return;
    if (check.data === adapter.name) {
      setDraft(null);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const renamed = await client.request('adapters.rename', { id: adapter.id, name: check.data });
      // The list also comes as 'adapters.changed'; this window shows it at once.
      useStudio.setState((s) => ({ adapters: s.adapters.map((a) => (a.id === renamed.id ? renamed : a)) }));
      setDraft(null);
    } catch (e) {
      setError(errorInfo(e));
    } finally {
      setBusy(false);
    }
  };
  const inputId = `adapter-name-${adapter.id}`;
  return (
    <form
      className="adapter-rename-form"
      data-testid="adapter-rename-form"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <label htmlFor={inputId} className="visually-hidden">
        Adapter name
      </label>
      <input
        id={inputId}
        data-testid="adapter-rename-input"
        value={draft}
        maxLength={400}
        autoFocus
        aria-invalid={problem !== null}
        aria-describedby={problem ? `${inputId}-error` : undefined}
        onChange={(e) => setDraft(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Escape') {
            e.stopPropagation();
            setDraft(null);
            setError(null);
          }
        }}
      />
      <button type="submit" className="primary" data-testid="adapter-rename-save" disabled={problem !== null || busy || !connected}>
        {busy ? 'Saving…' : 'Save'}
      </button>
      <button
        type="button"
        data-testid="adapter-rename-cancel"
        onClick={() => {
          setDraft(null);
          setError(null);
        }}
      >
        Cancel
      </button>
      {problem ? (
        <div className="field-error" id={`${inputId}-error`} role="alert" data-testid="adapter-rename-error">
          Name: {problem}
        </div>
      ) : null}
      {error ? <ErrorNote error={error} testId="adapter-rename-refused" /> : null}
    </form>
  );
}
