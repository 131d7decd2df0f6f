import type { RunSummary } from '../../../common/protocol.ts';
import { useRunsPage } from './runs-store.ts';
import { ACTION_LABEL, actionsFor, type RunAction } from './runs-view.ts';

const TEST_ID: Record<RunAction, string> = { pause: 'run-pause', resume: 'run-resume', stopAndSave: 'run-stop-save', cancel: 'run-cancel' };

const TITLE: Record<RunAction, string> = {
  pause: 'Write a checkpoint at the next step and stop; Resume continues from it',
  resume: 'Wait for a turn again and continue from the last checkpoint',
  stopAndSave: 'Stop at the next step and keep the adapter as it is then',
  cancel: 'Stop without saving an adapter',
};

/** The buttons a run's state allows (runs-view.ts actionsFor). */
export function RunActions({ run, compact = false }: { run: RunSummary; compact?: boolean }) {
  const busy = useRunsPage((s) => s.busy[run.id]);
  const act = useRunsPage((s) => s.act);
  const actions = actionsFor(run.state);
  if (actions.length === 0) return null;
  return (
    <div className={`run-actions${compact ? ' run-actions-compact' : ''}`}>
      {actions.map((a) => (
        <button
          key={a}
          type="button"
          className={a === 'cancel' ? 'danger' : a === 'resume' ? 'primary-ghost' : undefined}
          data-testid={TEST_ID[a]}
          title={TITLE[a]}
          disabled={busy !== undefined}
          onClick={(e) => {
            e.stopPropagation();
            void act(a, run.id);
          }}
        >
          {busy === a ? `${ACTION_LABEL[a]}…` : ACTION_LABEL[a]}
        </button>
      ))}
    </div>
  );
}
