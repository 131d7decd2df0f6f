import { useEffect } from 'react';
import { ExternalRunPanel } from '../components/ExternalRunPanel.tsx';
import { sortedRuns, useStudio } from '../stores/studio.ts';
import { CompareChart } from './CompareChart.tsx';
import { RunDetail } from './RunDetail.tsx';
import { RunsTable } from './RunsTable.tsx';
import { useRunsPage } from './runs-store.ts';
import './runs.css';

/** Every run: the list with actions, up to four compared on one chart, and the open run's details. */
export function RunsPage() {
  const selectedRunId = useRunsPage((s) => s.selectedRunId);
  const exists = useStudio((s) => (selectedRunId ? selectedRunId in s.runs : false));
  const count = useStudio((s) => Object.keys(s.runs).length);

  // Open the newest run when none is open, so the page never starts blank.
  useEffect(() => {
    if (selectedRunId && exists) return;
    const newest = sortedRuns(useStudio.getState().runs)[0];
    if (newest) useRunsPage.getState().select(newest.id);
  }, [selectedRunId, exists, count]);

  return (
    <main className="runs-page" data-testid="runs-page">
      <section className="card">
        <h2>
          Runs <span className="count">{count}</span>
        </h2>
        <RunsTable />
      </section>
      <div className="runs-lower">
        <CompareChart />
        {selectedRunId && exists ? (
          <RunDetail runId={selectedRunId} />
        ) : (
          <section className="card">
            <div className="muted">Pick a run in the list to see its config, history, events and files.</div>
          </section>
        )}
      </div>
      <ExternalRunPanel />
    </main>
  );
}
