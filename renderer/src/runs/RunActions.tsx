import { useEffect, useRef, useState } from 'react';
import type { RunSummary } from '../../../common/protocol.ts';
import { useStudio } from '../stores/studio.ts';
import { useRunsPage } from './runs-store.ts';
import { ACTION_LABEL, actionsFor, type RunAction } from './runs-view.ts';

const TEST_ID: Record<RunAction, string> = { pause: 'run-pause', resume: 'run-resume', stopAndSave: 'run-stop-save', cancel: 'run-cancel' };

const TITLE: Record<RunAction, string> = {
  pause: 'Write a checkpoint at the next step and stop; Resume continues from it',
  resume: 'Wait for a turn again and continue from the last checkpoint',
  stopAndSave: 'Stop at the next step and keep the adapter as it is then',
  cancel: 'Stop without saving an adapter',
};

/**
 * The buttons a run's state allows (runs-view.ts actionsFor). Cancel throws the run's work away, so it asks first,
 * in place: the question replaces the buttons until the user answers (Escape keeps the run).
 */
export function RunActions({ run, compact = false }: { run: RunSummary; compact?: boolean }) {
  const busy = useRunsPage((s) => s.busy[run.id]);
  const act = useRunsPage((s) => s.act);
  // Until the host answers, no button can do what it says: they stay visible but off.
  const connected = useStudio((s) => s.connection === 'open');
  const [confirming, setConfirming] = useState(false);
  const keepButton = useRef<HTMLButtonElement>(null);
  const cancelButton = useRef<HTMLButtonElement>(null);
  const actions = actionsFor(run.state);
  const canCancel = actions.includes('cancel');

  useEffect(() => {
    if (confirming) keepButton.current?.focus();
  }, [confirming]);
  // A run that ended meanwhile has nothing left to cancel.
  useEffect(() => {
    if (!canCancel) setConfirming(false);
  }, [canCancel]);

  if (actions.length === 0) return null;

  if (confirming) {
    const close = () => {
      setConfirming(false);
      // Back to where the user was, for a keyboard user.
      requestAnimationFrame(() => cancelButton.current?.focus());
    };
    return (
      <div
        className={`run-actions confirm${compact ? ' run-actions-compact' : ''}`}
        role="alertdialog"
        aria-label={`Cancel ${run.name}?`}
        data-testid="run-cancel-question"
        onClick={(e) => e.stopPropagation()}
        onKeyDown={(e) => {
          if (e.key === 'Escape') {
            e.stopPropagation();
            close();
          }
        }}
      >
        <span>
          Cancel this run? It stops without an adapter
          {run.step > 0 ? ` and its ${run.step} step${run.step === 1 ? '' : 's'} of training are lost` : ''}.
        </span>
        <button
          type="button"
          className="danger"
          data-testid="run-cancel-confirm"
          disabled={!connected || busy !== undefined}
          onClick={() => {
            setConfirming(false);
            void act('cancel', run.id);
          }}
        >
          Yes, cancel it
        </button>
        <button ref={keepButton} type="button" data-testid="run-cancel-keep" onClick={close}>
          Keep training
        </button>
      </div>
    );
  }

  return (
    <div className={`run-actions${compact ? ' run-actions-compact' : ''}`}>
      {actions.map((a) => (
        <button
          key={a}
          ref={a === 'cancel' ? cancelButton : undefined}
          type="button"
          className={a === 'cancel' ? 'danger' : a === 'resume' ? 'primary-ghost' : undefined}
          data-testid={TEST_ID[a]}
          title={connected ? TITLE[a] : 'Waiting for the studio to answer'}
          disabled={!connected || busy !== undefined}
          onClick={(e) => {
            e.stopPropagation();
            if (a === 'cancel') setConfirming(true);
            else void act(a, run.id);
          }}
        >
          {busy === a ? `${ACTION_LABEL[a]}…` : ACTION_LABEL[a]}
        </button>
      ))}
    </div>
  );
}
