import { useEffect, useMemo, useState } from 'react';
import type { RunSummary } from '../../../common/protocol.ts';
import { runMatches } from '../../../common/run-info.ts';
import { formatCount, formatDuration, formatLoss } from '../components/format.ts';
import { activateOnKey } from '../components/keyboard.ts';
import { isActive, sortedRuns, useStudio } from '../stores/studio.ts';
import { RunActions } from './RunActions.tsx';
import { RunsFilter } from './RunsFilter.tsx';
import { useRunsPage } from './runs-store.ts';
import { COMPARE_COLORS, MAX_COMPARED, formatTime, parsePriority, priorityEditable, progressFraction, liveStateLabel } from './runs-view.ts';

/** Every run the studio knows, newest first: state, progress, ETA, speed, priority, actions. */
export function RunsTable() {
  const runs = useStudio((s) => s.runs);
  const connected = useStudio((s) => s.connection === 'open');
  const all = useMemo(() => sortedRuns(runs), [runs]);
  const query = useRunsPage((s) => s.query);
  const tagFilter = useRunsPage((s) => s.tagFilter);
  const list = useMemo(() => all.filter((r) => runMatches(r, { text: query, tags: tagFilter })), [all, query, tagFilter]);
  const selectedRunId = useRunsPage((s) => s.selectedRunId);
  const compared = useRunsPage((s) => s.compared);
  const { select, toggleCompare } = useRunsPage.getState();
  const full = compared.length >= MAX_COMPARED;

  if (all.length === 0) {
    return (
      <div className="runs-empty muted" data-testid="runs-empty">
        No runs yet. Start one on the Train page; runs started while another trains wait here for their turn.
      </div>
    );
  }

  return (
    <div className="runs-table-wrap">
      <RunsFilter runs={all} shown={list.length} />
      {list.length === 0 ? (
        <div className="runs-empty muted" data-testid="runs-none-match">
          No run matches the search or the tags.
        </div>
      ) : null}
      <table className="runs-table" data-testid="runs-table" hidden={list.length === 0}>
        <thead>
          <tr>
            <th title={`Compare up to ${MAX_COMPARED} runs on one chart`}>Compare</th>
            <th>Run</th>
            <th>State</th>
            <th className="runs-col-progress">Progress</th>
            <th>ETA</th>
            <th>Tokens/s</th>
            <th>Loss</th>
            <th title="Higher starts first among waiting runs">Priority</th>
            <th>Created</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.map((run) => {
            const entry = compared.find((c) => c.id === run.id);
            return (
              <tr
                key={run.id}
                className={`runs-row${run.id === selectedRunId ? ' selected' : ''}`}
                data-testid="runs-row"
                data-run-id={run.id}
                data-state={run.state}
                tabIndex={0}
                aria-label={`open ${run.name}`}
                onClick={() => select(run.id)}
                onKeyDown={activateOnKey(() => select(run.id))}
              >
                <td onClick={(e) => e.stopPropagation()}>
                  <label className="compare-box" style={entry ? { borderColor: COMPARE_COLORS[entry.color] } : undefined}>
                    <input
                      type="checkbox"
                      data-testid="runs-compare"
                      aria-label={`compare ${run.name}`}
                      checked={entry !== undefined}
                      disabled={!entry && full}
                      title={!entry && full ? `at most ${MAX_COMPARED} runs on one chart` : undefined}
                      onChange={() => toggleCompare(run.id)}
                    />
                    {entry ? <span className="swatch" style={{ background: COMPARE_COLORS[entry.color] }} /> : null}
                  </label>
                </td>
                <td className="runs-name" title={run.notes ? `${run.id}\n${run.notes}` : run.id}>
                  <span data-testid="runs-name">{run.name}</span>
                  {run.tags && run.tags.length > 0 ? (
                    <span className="run-tags" data-testid="runs-tags">
                      {run.tags.map((t) => (
                        <span key={t} className="tag">
                          {t}
                        </span>
                      ))}
                    </span>
                  ) : null}
                </td>
                <td>
                  <span className={`badge badge-${run.state}`} data-testid="runs-state">
                    {liveStateLabel(run, connected)}
                  </span>
                  {run.resumeCount ? <span className="muted runs-resumed" title="times it continued from a checkpoint"> ↻{run.resumeCount}</span> : null}
                </td>
                <td className="runs-col-progress">
                  <div className="bar" role="progressbar" aria-label={`${run.name}: step ${run.step} of ${run.totalSteps}`} aria-valuemin={0} aria-valuemax={run.totalSteps} aria-valuenow={run.step}>
                    <div className={`bar-fill bar-${run.state}`} style={{ width: `${(progressFraction(run) * 100).toFixed(1)}%` }} />
                  </div>
                  <span className="muted runs-steps" data-testid="runs-step">
                    {run.step} / {run.totalSteps}
                  </span>
                </td>
                <td className="num">{run.state === 'executing' ? formatDuration(run.etaMs) : '—'}</td>
                <td className="num">{run.tokensPerSecond !== null && isActive(run) ? formatCount(run.tokensPerSecond) : '—'}</td>
                <td className="num">{formatLoss(run.lastLoss)}</td>
                <td onClick={(e) => e.stopPropagation()}>
                  <PriorityCell run={run} />
                </td>
                <td className="muted nowrap">{formatTime(run.createdAt)}</td>
                <td onClick={(e) => e.stopPropagation()}>
                  <RunActions run={run} compact />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function PriorityCell({ run }: { run: RunSummary }) {
  const priority = run.priority ?? 0;
  const [text, setText] = useState(String(priority));
  const [localError, setLocalError] = useState<string | null>(null);
  const serverError = useRunsPage((s) => s.priorityErrors[run.id]);
  const busy = useRunsPage((s) => s.busy[run.id] === 'priority');
  const setPriority = useRunsPage((s) => s.setPriority);
  useEffect(() => setText(String(priority)), [priority]);

  if (!priorityEditable(run.state)) return <span className="num muted">{priority}</span>;

  const commit = () => {
    const parsed = parsePriority(text);
    if (!parsed.ok) {
      setLocalError(parsed.message);
      return;
    }
    setLocalError(null);
    if (parsed.value !== priority) void setPriority(run.id, parsed.value);
  };
  const error = localError ?? serverError ?? null;
  return (
    <span className={`priority${error ? ' field-invalid' : ''}`}>
      <input
        type="text"
        inputMode="numeric"
        className="priority-input"
        data-testid="runs-priority"
        aria-label={`priority of ${run.name}`}
        value={text}
        disabled={busy}
        title={error ?? 'Higher starts first; Enter to apply'}
        onChange={(e) => setText(e.target.value)}
        onBlur={commit}
        onKeyDown={(e) => {
          if (e.key === 'Enter') commit();
          if (e.key === 'Escape') {
            setText(String(priority));
            setLocalError(null);
          }
        }}
      />
      {error ? (
        <span className="field-error" role="alert" data-testid="runs-priority-error">
          {error}
        </span>
      ) : null}
    </span>
  );
}
