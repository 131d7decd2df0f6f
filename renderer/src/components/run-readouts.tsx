/**
 * How a run reads at a glance, on the Train page (RunProgress) and the Runs page (RunDetail) alike: its head line
 * (name, state badge, the actions) and the label/value readouts under it. Which values each page shows stays with
 * the page: the Train page fills gaps from the live points, the Runs page shows the run's own summary.
 */
import type { ReactNode } from 'react';
import type { RunSummary } from '../../../common/protocol.ts';
import { RunActions } from '../runs/RunActions.tsx';
import { useStudio } from '../stores/studio.ts';
import { liveStateLabel, stoppedEarly } from '../runs/runs-view.ts';

/** `children` follow the state badge on the title line. */
export function RunHead({ run, stateTestId, children }: { run: RunSummary; stateTestId: string; children?: ReactNode }) {
  const connected = useStudio((s) => s.connection === 'open');
  return (
    <div className="run-head">
      <div className="run-title">
        <span className="run-name" title={run.id}>
          {run.name}
        </span>
        <span className={`badge badge-${run.state}${stoppedEarly(run) ? ' badge-stopped-early' : ''}`} data-testid={stateTestId} data-outcome={stoppedEarly(run) ? 'stopped-early' : run.state}>
          {liveStateLabel(run, connected)}
        </span>
        {children}
      </div>
      <RunActions run={run} />
    </div>
  );
}

/** `title`: more about the value on hover (e.g. the raw value behind a smoothed one). */
export function Readout({ label, value, testId, title }: { label: string; value: string; testId?: string; title?: string }) {
  return (
    <div className="readout" title={title}>
      <div className="readout-label">{label}</div>
      <div className="readout-value" data-testid={testId}>
        {value}
      </div>
    </div>
  );
}
