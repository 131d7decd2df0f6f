import { useMemo } from 'react';
import { liveStateLabel } from '../runs/runs-view.ts';
import { sortedRuns, useStudio } from '../stores/studio.ts';
import { formatLoss } from './format.ts';

/** Earlier runs; picking one shows its chart and progress. */
export function RunHistory() {
  const runs = useStudio((s) => s.runs);
  const currentRunId = useStudio((s) => s.currentRunId);
  const selectRun = useStudio((s) => s.selectRun);
  const connected = useStudio((s) => s.connection === 'open');
  const list = useMemo(() => sortedRuns(runs), [runs]);
  if (list.length < 2) return null;
  return (
    <section className="card" data-testid="run-history">
      <h2>Runs</h2>
      <ul className="run-list">
        {list.map((r) => (
          <li key={r.id}>
            <button type="button" className={`run-row${r.id === currentRunId ? ' selected' : ''}`} onClick={() => void selectRun(r.id)}>
              <span className="run-row-name">{r.name}</span>
              <span className={`badge badge-${r.state}`}>{liveStateLabel(r, connected)}</span>
              <span className="muted">
                {r.step}/{r.totalSteps} · loss {formatLoss(r.lastLoss)}
              </span>
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
