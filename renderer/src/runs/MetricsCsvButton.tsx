import { useState } from 'react';
import type { RunSummary, StudioErrorInfo } from '../../../common/protocol.ts';
import { metricsCsv } from '../../../common/run-metrics.ts';
import { errorInfo } from '../client/transport.ts';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { useStudio } from '../stores/studio.ts';
import { metricsCsvFileName } from './run-manage-view.ts';

/** Downloads the run's stored points as CSV (common/run-metrics.ts metricsCsv, as `lora-studio runs metrics --csv`). */
export function MetricsCsvButton({ run }: { run: RunSummary }) {
  const client = useStudio((s) => s.client);
  const [error, setError] = useState<StudioErrorInfo | null>(null);
  const [busy, setBusy] = useState(false);
  const download = async () => {
    if (!client) return;
    setBusy(true);
    setError(null);
    try {
      // The stored history, whole: what this window holds may be thinned or still loading.
      const points = await client.request('runs.metrics', { id: run.id });
      const url = URL.createObjectURL(new Blob([metricsCsv(points)], { type: 'text/csv' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = metricsCsvFileName(run);
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) {
      setError(errorInfo(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" className="link" data-testid="run-metrics-csv" disabled={busy || !client} title="Every stored step: loss, validation loss, learning rate, grad norm, loss scale, tokens/s" onClick={() => void download()}>
        {busy ? 'Preparing CSV…' : 'Download metrics (CSV)'}
      </button>
      {error ? <ErrorNote error={error} testId="run-metrics-csv-error" /> : null}
    </>
  );
}
