/**
 * "Follow an external run" on the Runs page: the user points at the metrics.jsonl an exported bundle's train.py
 * writes (or its output folder), and the run's loss, validation loss and gradient norm appear on a chart drawn like
 * the studio's own — with the studio run it was exported from laid over it — growing live as the file grows.
 * When the run completes its adapter is imported into the Adapters list (by itself, or with the button).
 */
import { memo, useEffect, useMemo } from 'react';
import { Legend, Line, LineChart, ResponsiveContainer, YAxis } from 'recharts';
import type { ExternalRunSummary, MetricPoint } from '../../../common/protocol.ts';
import { useExternalMetrics, useExternalRuns } from '../stores/external-runs.ts';
import { EMPTY_POINTS, useStudio } from '../stores/studio.ts';
import { LOSS_CHART_MARGIN, LossAxes } from './chart-axes.tsx';
import { ErrorNote } from './ErrorNote.tsx';
import { formatCount, formatLoss } from './format.ts';
import { lossTicks } from './loss-ticks.ts';
import { PathField } from './PathField.tsx';
import './cluster.css';

const STATE_TEXT: Record<ExternalRunSummary['state'], string> = {
  waiting: 'waiting for its first step',
  running: 'running',
  completed: 'completed',
  failed: 'failed',
};

export function ExternalRunPanel() {
  const runs = useExternalRuns((s) => s.runs);
  const path = useExternalRuns((s) => s.followPath);
  const following = useExternalRuns((s) => s.following);
  const error = useExternalRuns((s) => s.followError);
  const setPath = useExternalRuns((s) => s.setFollowPath);
  const follow = useExternalRuns((s) => s.follow);
  const browse = useExternalRuns((s) => s.browse);
  const connected = useStudio((s) => s.connection === 'open');
  const list = useMemo(() => Object.values(runs).sort((a, b) => (a.followedAt < b.followedAt ? 1 : -1)), [runs]);

  return (
    <section className="card external-runs" data-testid="external-runs">
      <h2>
        External runs <span className="count">{list.length}</span>
      </h2>
      <p className="muted">
        A run exported for a cluster writes <code>output/metrics.jsonl</code> as it trains. Point at that file (a mounted or synced folder works) to see its curves here, live; its adapter comes into the
        Adapters list when it completes.
      </p>
      <PathField
        value={path}
        onChange={setPath}
        placeholder="/path/to/bundle/output/metrics.jsonl"
        ariaLabel="metrics file of an external run"
        testId="external-path"
        busy={following || !connected}
        onBrowse={() => void browse()}
        browseTestId="external-browse"
      >
        <button type="button" className="primary" data-testid="external-follow" disabled={following || !connected} onClick={() => void follow()}>
          {following ? 'Following…' : 'Follow'}
        </button>
      </PathField>
      {error ? <ErrorNote error={error} testId="external-follow-error" /> : null}
      {list.length === 0 ? null : (
        <ul className="external-list">
          {list.map((r) => (
            <ExternalRunItem key={r.id} run={r} />
          ))}
        </ul>
      )}
    </section>
  );
}

function ExternalRunItem({ run }: { run: ExternalRunSummary }) {
  const busy = useExternalRuns((s) => s.busy[run.id]);
  const actionError = useExternalRuns((s) => s.actionErrors[run.id]);
  const imported = useExternalRuns((s) => s.imported[run.id]);
  const unfollow = useExternalRuns((s) => s.unfollow);
  const importAdapter = useExternalRuns((s) => s.importAdapter);
  const adapter = useStudio((s) => (run.adapterId ? s.adapters.find((a) => a.id === run.adapterId) : undefined));
  const how = [run.worldSize ? `${run.worldSize} process${run.worldSize === 1 ? '' : 'es'}` : null, run.distributedType, run.zeroStage ? `ZeRO-${run.zeroStage}` : null, run.mixedPrecision, run.dropoutMasks ? `${run.dropoutMasks} dropout` : null]
    .filter(Boolean)
    .join(' · ');
  return (
    <li className="external-run" data-testid="external-run" data-external-id={run.id} data-state={run.state}>
      <div className="run-head">
        <div className="run-title">
          <span className="run-name" title={run.path}>
            {run.name}
          </span>
          <span className={`badge badge-${run.state === 'running' ? 'executing' : run.state === 'waiting' ? 'queuing' : run.state}`} data-testid="external-state">
            {STATE_TEXT[run.state]}
          </span>
        </div>
        <div className="run-actions">
          {run.adapterReady && !run.adapterId ? (
            <button type="button" className="primary-ghost" data-testid="external-import" disabled={busy !== undefined} onClick={() => void importAdapter(run.id)}>
              {busy === 'import' ? 'Importing…' : 'Import adapter'}
            </button>
          ) : null}
          <button type="button" data-testid="external-unfollow" disabled={busy !== undefined} title="Stop following; nothing on disk is touched" onClick={() => void unfollow(run.id)}>
            {busy === 'unfollow' ? 'Unfollowing…' : 'Unfollow'}
          </button>
        </div>
      </div>
      <div className="muted external-meta">
        step {run.step}
        {run.totalSteps ? ` / ${run.totalSteps}` : ''} · loss {formatLoss(run.lastLoss)}
        {run.validationLoss !== null ? ` · validation ${formatLoss(run.validationLoss)}` : ''}
        {run.tokensPerSecond !== null ? ` · ${formatCount(run.tokensPerSecond)} tokens/s` : ''}
        {how ? ` · ${how}` : ''}
      </div>
      <div className="muted external-meta">
        <code className="path">{run.path}</code>
      </div>
      {run.error ? <ErrorNote error={{ message: run.error }} testId="external-run-error" /> : null}
      {run.problems.length > 0 ? (
        <div className="note note-warn" data-testid="external-problems">
          <div className="note-message">Lines that could not be read (skipped):</div>
          <ul className="note-list">
            {run.problems.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        </div>
      ) : null}
      {adapter ? (
        <div className="note note-ok" data-testid="external-imported">
          Its adapter is in the Adapters list as <strong>{adapter.name}</strong>.
        </div>
      ) : null}
      {imported && imported.warnings.length > 0 ? (
        <ul className="note note-warn note-list" data-testid="external-import-warnings">
          {imported.warnings.map((w) => (
            <li key={w}>{w}</li>
          ))}
        </ul>
      ) : null}
      {run.importError ? <ErrorNote error={run.importError} testId="external-import-error" /> : null}
      {actionError ? <ErrorNote error={actionError} testId="external-action-error" /> : null}
      <ExternalRunChart run={run} />
    </li>
  );
}

interface Row {
  step: number;
  loss?: number;
  validationLoss?: number;
  gradNorm?: number;
  /** The studio run the bundle came from, same step. */
  studioLoss?: number;
}

/** One row per step of either series; steps without a finite loss (no target tokens, skipped) leave a gap. */
function chartRows(points: readonly MetricPoint[], studio: readonly MetricPoint[]): Row[] {
  const byStep = new Map<number, Row>();
  const row = (step: number): Row => {
    let r = byStep.get(step);
    if (!r) byStep.set(step, (r = { step }));
    return r;
  };
  for (const p of points) {
    const r = row(p.step);
    if (!p.skipped && Number.isFinite(p.loss)) r.loss = p.loss;
    if (p.validationLoss !== undefined) r.validationLoss = p.validationLoss;
    if (!p.skipped) r.gradNorm = p.gradNorm;
  }
  for (const p of studio) if (!p.skipped && Number.isFinite(p.loss)) row(p.step).studioLoss = p.loss;
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

const ExternalRunChart = memo(function ExternalRunChart({ run }: { run: ExternalRunSummary }) {
  const points = useExternalMetrics(run.id);
  const sourceId = run.sourceRunId;
  const source = useStudio((s) => (sourceId ? s.runs[sourceId] : undefined));
  const studioPoints = useStudio((s) => (sourceId && source ? (s.metrics[sourceId] ?? EMPTY_POINTS) : EMPTY_POINTS));
  // The studio run the bundle was exported from, on the same chart: the cluster run should retrace it.
  useEffect(() => {
    if (sourceId && source) void useStudio.getState().ensureMetrics(sourceId);
  }, [sourceId, source]);
  const rows = useMemo(() => chartRows(points, studioPoints), [points, studioPoints]);
  const losses = useMemo(() => {
    const out: { loss: number }[] = [];
    for (const r of rows) for (const v of [r.loss, r.validationLoss, r.studioLoss]) if (v !== undefined) out.push({ loss: v });
    return out;
  }, [rows]);
  const yTicks = useMemo(() => lossTicks(losses), [losses]);
  const validationPoints = rows.reduce((n, r) => n + (r.validationLoss !== undefined ? 1 : 0), 0);
  const xMax = Math.max(1, run.totalSteps ?? 0, rows.length ? rows[rows.length - 1].step : 1);

  return (
    <div className="chart" data-testid="external-chart" data-points={points.length} data-validation-points={validationPoints} data-studio-points={studioPoints.length}>
      <div className="chart-head">
        <span className="chart-title">Loss and gradient norm</span>
        <span className="muted">
          <span data-testid="external-point-count">{points.length}</span> step{points.length === 1 ? '' : 's'}
          {source ? ` · studio run ${source.name} dashed` : ''}
        </span>
      </div>
      {points.length === 0 ? (
        <div className="chart-empty">Waiting for the first line of metrics.jsonl…</div>
      ) : (
        <ResponsiveContainer width="100%" height={260}>
          <LineChart data={rows} margin={LOSS_CHART_MARGIN}>
            <LossAxes xMax={xMax} yTicks={yTicks} />
            <YAxis yAxisId="grad" orientation="right" stroke="var(--muted)" tick={{ fontSize: 11 }} width={44} tickFormatter={(v: number) => v.toPrecision(2)} />
            <Legend verticalAlign="top" align="right" height={24} iconType="plainline" wrapperStyle={{ fontSize: 12 }} />
            <Line type="linear" dataKey="loss" name="train loss" className="external-line-loss" stroke="var(--accent)" strokeWidth={2} dot={false} connectNulls isAnimationActive={false} />
            {validationPoints > 0 ? <Line type="linear" dataKey="validationLoss" name="validation loss" stroke="var(--accent-2)" strokeWidth={2} connectNulls dot={{ r: 3 }} isAnimationActive={false} /> : null}
            <Line type="linear" yAxisId="grad" dataKey="gradNorm" name="grad norm (right)" className="external-line-grad" stroke="var(--muted)" strokeWidth={1} dot={false} connectNulls isAnimationActive={false} />
            {studioPoints.length > 0 ? (
              <Line type="linear" dataKey="studioLoss" name="studio run loss" stroke="var(--accent)" strokeOpacity={0.5} strokeDasharray="4 3" strokeWidth={1.5} dot={false} connectNulls isAnimationActive={false} />
            ) : null}
          </LineChart>
        </ResponsiveContainer>
      )}
    </div>
  );
});
