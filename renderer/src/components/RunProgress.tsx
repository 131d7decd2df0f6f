import { EvalTimeline } from './EvalTimeline.tsx';
import { useMemo } from 'react';
import { isActive, useRunMetrics, useStudio } from '../stores/studio.ts';
import { formatCount, formatDuration, formatLoss } from './format.ts';
import { smoothedTokensPerSecond } from './metric-series.ts';
import { plainLogMessage } from '../../../common/run-health.ts';
import { Readout, RunHead } from './run-readouts.tsx';
import { RunAlerts } from './RunAlerts.tsx';

export function RunProgress({ runId }: { runId: string | null }) {
  const run = useStudio((s) => (runId ? s.runs[runId] : undefined));
  const points = useRunMetrics(runId);
  const lastLog = useStudio((s) => {
    const lines = runId ? s.logs[runId] : undefined;
    return lines && lines.length ? lines[lines.length - 1] : null;
  });
  const connected = useStudio((s) => s.connection === 'open');
  const skippedSteps = useMemo(() => points.reduce((n, p) => n + (p.skipped ? 1 : 0), 0), [points]);

  if (!run) {
    return (
      <div className="run-progress empty" data-testid="run-progress">
        <span className="muted">No run yet.</span>
      </div>
    );
  }

  const total = Math.max(1, run.totalSteps);
  const step = Math.min(run.step, total);
  const fraction = run.state === 'completed' ? 1 : step / total;
  const last = points.length ? points[points.length - 1] : null;
  const first = points.length ? points[0] : null;
  // Smoothed (EMA over ~10 steps): the raw value jumps with each batch's length; it stays in the tooltip.
  const rawTokensPerSecond = run.tokensPerSecond ?? last?.tokensPerSecond ?? null;
  const tokensPerSecond = smoothedTokensPerSecond(points) ?? rawTokensPerSecond;
  const active = isActive(run);

  return (
    <div className="run-progress" data-testid="run-progress" data-state={run.state}>
      <RunHead run={run} stateTestId="run-state">
        {run.backend ? (
          <span className="muted" data-testid="run-backend">
            on {run.backend}
            {run.config.train.precision === 'fp16' ? ' · fp16' : ''}
            {run.config.train.gradientCheckpointing ? ' · checkpointing' : ''}
          </span>
        ) : null}
      </RunHead>
      <div
        className="bar"
        role="progressbar"
        aria-label="Training progress"
        aria-valuemin={0}
        aria-valuemax={total}
        aria-valuenow={step}
        data-testid="run-progress-bar"
      >
        <div className={`bar-fill bar-${run.state}`} style={{ width: `${(fraction * 100).toFixed(2)}%` }} />
      </div>
      <div className="readouts">
        <Readout label="Step" testId="run-step" value={`${run.step} / ${run.totalSteps}`} />
        <Readout label="ETA" testId="run-eta" value={active && connected ? formatDuration(run.etaMs) : '—'} />
        <Readout
          label="Tokens/s"
          testId="run-tokens-per-second"
          value={tokensPerSecond !== null ? formatCount(tokensPerSecond) : '—'}
          title={rawTokensPerSecond !== null ? `smoothed over the last ~10 steps; this step: ${formatCount(rawTokensPerSecond)} tokens/s` : undefined}
        />
        <Readout label="First loss" testId="run-first-loss" value={formatLoss(first?.loss)} />
        <Readout label="Loss" testId="run-last-loss" value={formatLoss(run.lastLoss ?? last?.loss)} />
        <Readout label="LR" testId="run-lr" value={last ? last.learningRate.toExponential(1) : '—'} />
        {run.config.train.precision === 'fp16' ? (
          <>
            <Readout label="Loss scale" testId="run-loss-scale" value={last?.lossScale !== undefined ? String(last.lossScale) : '—'} />
            <Readout label="Skipped steps" testId="run-skipped" value={String(skippedSteps)} />
          </>
        ) : null}
      </div>
      <RunAlerts runId={run.id} />
      <EvalTimeline run={run} />
      {run.error ? (
        <div className="note note-error" data-testid="run-error" role="alert">
          {run.error}
        </div>
      ) : lastLog && active ? (
        <div className={`log-line log-${lastLog.level}`} data-testid="run-log">
          {plainLogMessage(lastLog.message)}
        </div>
      ) : null}
    </div>
  );
}
