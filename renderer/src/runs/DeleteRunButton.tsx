import { useEffect, useRef, useState } from 'react';
import type { RunSummary, StudioErrorInfo } from '../../../common/protocol.ts';
import { deleteBlocker, type RunDeleteResult } from '../../../common/run-info.ts';
import { errorInfo } from '../client/transport.ts';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { useDialogFocus, useEscapeCloses } from '../components/use-dialog-focus.ts';
import { useStudio } from '../stores/studio.ts';
import { useRunsPage } from './runs-store.ts';
import { deleteQuestion } from './run-manage-view.ts';

/**
 * "Delete run…": off while the run is going, with the reason (common/run-info.ts deleteRefusal, the services' own
 * rule); else a dialog that first asks the services what deleting frees (a dry run) and then deletes.
 */
export function DeleteRunButton({ run }: { run: RunSummary }) {
  const connected = useStudio((s) => s.connection === 'open');
  const [open, setOpen] = useState(false);
  const blocker = deleteBlocker(run);
  const refusal = blocker ? `It cannot be deleted while it is ${blocker.doing}: ${blocker.fix}.` : null;
  return (
    <>
      <button
        type="button"
        className="danger"
        data-testid="run-delete"
        disabled={!connected || refusal !== null}
        title={!connected ? 'Waiting for the studio to answer' : (refusal ?? 'Delete this run and free its disk space')}
        onClick={(e) => {
          e.stopPropagation();
          setOpen(true);
        }}
      >
        Delete run…
      </button>
      {refusal && connected ? (
        <span className="muted run-delete-why" data-testid="run-delete-why">
          {refusal}
        </span>
      ) : null}
      {open ? <DeleteRunDialog run={run} onClose={() => setOpen(false)} /> : null}
    </>
  );
}

function DeleteRunDialog({ run, onClose }: { run: RunSummary; onClose(): void }) {
  const deleteRun = useRunsPage((s) => s.deleteRun);
  const [measured, setMeasured] = useState<RunDeleteResult | null>(null);
  const [deleteAdapter, setDeleteAdapter] = useState(false);
  const [error, setError] = useState<StudioErrorInfo | null>(null);
  const [busy, setBusy] = useState(false);
  const dialog = useRef<HTMLDivElement>(null);
  useDialogFocus(dialog);

  useEffect(() => {
    let live = true;
    deleteRun(run.id, { deleteAdapter: false, dryRun: true }).then(
      (m) => live && setMeasured(m),
      (e: unknown) => live && setError(errorInfo(e)),
    );
    return () => {
      live = false;
    };
  }, [run.id, deleteRun]);
  useEscapeCloses(onClose);

  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await deleteRun(run.id, { deleteAdapter, dryRun: false });
      onClose();
    } catch (e) {
      setError(errorInfo(e));
      setBusy(false);
    }
  };

  return (
    <div className="modal-backdrop" onClick={onClose}>
      <div ref={dialog} tabIndex={-1} className="modal card" role="alertdialog" aria-modal="true" aria-labelledby="delete-run-title" aria-describedby="delete-run-question" data-testid="run-delete-dialog" onClick={(e) => e.stopPropagation()}>
        <h2 id="delete-run-title">Delete run</h2>
        <p id="delete-run-question" data-testid="run-delete-question">
          {measured ? deleteQuestion(measured, deleteAdapter) : error ? null : 'Measuring what it frees…'}
        </p>
        {measured?.adapterId ? (
          <label className="check">
            <input type="checkbox" data-testid="run-delete-adapter" checked={deleteAdapter} onChange={(e) => setDeleteAdapter(e.target.checked)} />
            Delete its adapter too
          </label>
        ) : null}
        {error ? <ErrorNote error={error} testId="run-delete-error" /> : null}
        <div className="modal-actions">
          <button type="button" data-testid="run-delete-keep" onClick={onClose}>
            Keep it
          </button>
          <button type="button" className="danger" data-testid="run-delete-confirm" disabled={!measured || busy} onClick={() => void confirm()}>
            {busy ? 'Deleting…' : 'Delete'}
          </button>
        </div>
      </div>
    </div>
  );
}
