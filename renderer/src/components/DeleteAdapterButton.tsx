import { useEffect, useRef, useState } from 'react';
import type { AdapterSummary, StudioErrorInfo } from '../../../common/protocol.ts';
import { errorInfo } from '../client/transport.ts';
import { useStudio } from '../stores/studio.ts';
import { ErrorNote } from './ErrorNote.tsx';
import { formatBytes } from './format.ts';

/**
 * Deletes an adapter from the list and the disk ('adapters.delete'). It asks first, in place (Escape keeps it),
 * saying what it frees; the list follows from 'adapters.changed'.
 */
export function DeleteAdapterButton({ adapter }: { adapter: AdapterSummary }) {
  const client = useStudio((s) => s.client);
  const connected = useStudio((s) => s.connection === 'open');
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<StudioErrorInfo | null>(null);
  const keep = useRef<HTMLButtonElement>(null);
  const open = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) keep.current?.focus();
  }, [asking]);

  const close = () => {
    setAsking(false);
    requestAnimationFrame(() => open.current?.focus());
  };
  const confirm = async () => {
    if (!client) return;
    setBusy(true);
    setError(null);
    try {
      await client.request('adapters.delete', { id: adapter.id });
      // The 'adapters.changed' event removes it everywhere; this window need not wait for it.
      useStudio.setState((s) => ({ adapters: s.adapters.filter((a) => a.id !== adapter.id) }));
    } catch (e) {
      setError(errorInfo(e));
      setBusy(false);
      setAsking(false);
    }
  };

  if (asking) {
    return (
      <div
        className="adapter-delete-question"
        role="alertdialog"
        aria-label={`Delete ${adapter.name}?`}
        data-testid="adapter-delete-question"
        onKeyDown={(e) => {
          if (e.key === 'Escape') {
            e.stopPropagation();
            close();
          }
        }}
      >
        <span>
          Delete this adapter? Its folder is removed from disk; this frees {formatBytes(adapter.sizeBytes)}.
        </span>
        <button type="button" className="danger" data-testid="adapter-delete-confirm" disabled={!connected || busy} onClick={() => void confirm()}>
          {busy ? 'Deleting…' : 'Yes, delete it'}
        </button>
        <button ref={keep} type="button" data-testid="adapter-delete-keep" onClick={close}>
          Keep it
        </button>
      </div>
    );
  }
  return (
    <>
      <button ref={open} type="button" className="danger" data-testid="adapter-delete" disabled={!connected} title={connected ? `Delete the adapter (${formatBytes(adapter.sizeBytes)} on disk)` : 'Waiting for the studio to answer'} onClick={() => setAsking(true)}>
        Delete…
      </button>
      {error ? <ErrorNote error={error} testId="adapter-delete-error" /> : null}
    </>
  );
}
