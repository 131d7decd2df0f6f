import { EvalTimeline } from '../components/EvalTimeline.tsx';
import { useEffect, useMemo, useRef } from 'react';
import type { RunSummary } from '../../../common/protocol.ts';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { ExportBundleButton } from '../components/ExportBundleDialog.tsx';
import { formatBytes, formatCount, formatDuration, formatLoss } from '../components/format.ts';
import { LossChart } from '../components/LossChart.tsx';
import { Readout, RunHead } from '../components/run-readouts.tsx';
import { RunAlerts } from '../components/RunAlerts.tsx';
import { usePlayground } from '../playground/playground-store.ts';
import { usePage } from '../stores/page.ts';
import { isActive, useStudio } from '../stores/studio.ts';
import { useRunsPage } from './runs-store.ts';
import { DeleteRunButton } from './DeleteRunButton.tsx';
import { FinalValidation } from './FinalValidation.tsx';
import { MetricsCsvButton } from './MetricsCsvButton.tsx';
import { RunInfoEditor } from './RunInfoEditor.tsx';
import { TrainAgainButton } from './TrainAgainButton.tsx';
import { STATE_LABEL, configEntries, formatTime } from './runs-view.ts';
import { plainLogMessage } from '../../../common/run-health.ts';

/** While a run changes, its history and log are fetched again at most this often. */
const REFRESH_MS = 1000;

/** One run: readouts, loss chart, config, state history, event log and files. */
export function RunDetail({ runId }: { runId: string }) {
  const run = useStudio((s) => s.runs[runId]);
  const details = useRunsPage((s) => s.details[runId]);
  const refreshDetails = useRunsPage((s) => s.refreshDetails);
  const lastRefresh = useRef(0);

  // Every change of the run (a step, a state) may have logged something: fetch what is new, throttled.
  const updatedAt = run?.updatedAt;
  useEffect(() => {
    if (!updatedAt) return;
    const wait = Math.max(0, lastRefresh.current + REFRESH_MS - Date.now());
    const timer = setTimeout(() => {
      lastRefresh.current = Date.now();
      void refreshDetails(runId);
    }, wait);
    return () => clearTimeout(timer);
  }, [runId, updatedAt, refreshDetails]);

  if (!run) return null;
  return (
    <section className="card run-detail" data-testid="run-detail" data-run-id={run.id} data-state={run.state}>
      <RunHead run={run} stateTestId="run-detail-state">
        <TrainAgainButton run={run} />
        <MetricsCsvButton run={run} />
        <ExportBundleButton run={run} />
      </RunHead>
      <Readouts run={run} />
      <FinalValidation run={run} />
      {run.error ? <ErrorNote error={{ message: run.error }} testId="run-detail-error" /> : null}
      <RunAlerts runId={run.id} />
      <LossChart runId={run.id} />
      <EvalTimeline run={run} />
      <RunInfoEditor run={run} />
      <div className="run-detail-grid">
        <ConfigTable run={run} />
        <div className="run-detail-side">
          <FilesList run={run} />
          <StateHistory runId={run.id} />
        </div>
      </div>
      <EventLog runId={run.id} />
      {details?.error ? <ErrorNote error={details.error} testId="run-detail-fetch-error" /> : null}
      <div className="run-detail-danger">
        <DeleteRunButton run={run} />
      </div>
    </section>
  );
}

function Readouts({ run }: { run: RunSummary }) {
  const active = isActive(run);
  const items: [string, string][] = [
    ['Step', `${run.step} / ${run.totalSteps}`],
    ['ETA', run.state === 'executing' ? formatDuration(run.etaMs) : '—'],
    ['Tokens/s', run.tokensPerSecond !== null && active ? formatCount(run.tokensPerSecond) : '—'],
    ['Loss', formatLoss(run.lastLoss)],
    ['Backend', run.backend ?? run.device ?? '—'],
    ['Priority', String(run.priority ?? 0)],
    ['Created', formatTime(run.createdAt)],
    ['Started', formatTime(run.startedAt)],
    ['Finished', formatTime(run.finishedAt)],
    ['Resumed', `${run.resumeCount ?? 0}×`],
  ];
  return (
    <div className="readouts run-detail-readouts">
      {items.map(([label, value]) => (
        <Readout key={label} label={label} value={value} />
      ))}
    </div>
  );
}

function ConfigTable({ run }: { run: RunSummary }) {
  const entries = useMemo(() => configEntries(run.config), [run.config]);
  return (
    <div className="run-config" data-testid="run-config">
      <h3>Config</h3>
      <table className="kv">
        <tbody>
          {entries.map(([k, v]) => (
            <tr key={k}>
              <th>{k}</th>
              <td title={v}>{v}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function FilesList({ run }: { run: RunSummary }) {
  const adapter = useStudio((s) => (run.adapterId ? s.adapters.find((a) => a.id === run.adapterId) : undefined));
  const checkpointStep = run.checkpointStep ?? null;
  return (
    <div className="run-files" data-testid="run-files">
      <h3>Files</h3>
      <ul className="kv-list">
        <li data-testid="run-file-adapter">
          <span className="label">Adapter</span>
          {adapter ? (
            <span>
              <code className="path">{adapter.path}</code> <span className="muted">({formatBytes(adapter.sizeBytes)})</span>{' '}
              <button
                type="button"
                className="link"
                data-testid="run-try-adapter"
                onClick={() => {
                  usePage.getState().show('playground');
                  void usePlayground.getState().chooseAdapter(adapter.id, useStudio.getState().adapters);
                }}
              >
                Try it in the playground
              </button>
            </span>
          ) : run.adapterId ? (
            <span className="muted" data-testid="run-adapter-deleted">
              deleted (<code>{run.adapterId}</code>)
            </span>
          ) : (
            <span className="muted">{run.state === 'completed' ? 'none' : 'written when the run completes'}</span>
          )}
        </li>
        <li data-testid="run-file-checkpoint">
          <span className="label">Last checkpoint</span>
          {checkpointStep !== null ? (
            <span>
              step {checkpointStep}
              {run.checkpointPath ? (
                <>
                  {' '}
                  <code className="path">{run.checkpointPath}</code>
                </>
              ) : null}
            </span>
          ) : (
            <span className="muted">{isActive(run) ? 'none yet' : 'none'}</span>
          )}
        </li>
      </ul>
    </div>
  );
}

function StateHistory({ runId }: { runId: string }) {
  const history = useRunsPage((s) => s.details[runId]?.history);
  return (
    <div className="run-history-states" data-testid="run-state-history">
      <h3>State history</h3>
      {!history ? (
        <div className="muted">loading…</div>
      ) : (
        <ol className="state-steps">
          {history.map((h, i) => (
            <li key={`${h.at}-${i}`} data-to={h.to}>
              <span className="muted nowrap">{formatTime(h.at)}</span> <span className={`badge badge-${h.to}`}>{STATE_LABEL[h.to]}</span>
              {h.reason ? <span className="muted"> {h.reason}</span> : null}
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

function EventLog({ runId }: { runId: string }) {
  const events = useRunsPage((s) => s.details[runId]?.events);
  const box = useRef<HTMLDivElement>(null);
  const count = events?.length ?? 0;
  // Follow the tail, like a terminal.
  useEffect(() => {
    const el = box.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [count]);
  return (
    <div className="run-events">
      <h3>
        Events <span className="count">{count}</span>
      </h3>
      <div className="event-log" ref={box} data-testid="run-events" role="log" aria-label="Event log" tabIndex={0}>
        {!events ? (
          <div className="muted">loading…</div>
        ) : events.length === 0 ? (
          <div className="muted">nothing logged yet</div>
        ) : (
          events.map((e) => (
            <div key={e.id} className={`log-row log-${e.level}`}>
              <span className="muted">{formatTime(e.at)}</span>
              <span className="muted">{e.step !== null ? `#${e.step}` : ''}</span>
              <span>{plainLogMessage(e.message)}</span>
            </div>
          ))
        )}
      </div>
    </div>
  );
}
