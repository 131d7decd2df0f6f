/** The run detail's validation numbers: validation loss and perplexity of the last evaluated step (final-validation.ts). */
import { useEffect } from 'react';
import type { RunSummary } from '../../../common/protocol.ts';
import { formatLoss } from '../components/format.ts';
import { Readout } from '../components/run-readouts.tsx';
import { useStudio } from '../stores/studio.ts';
import { formatPerplexity, hasValidationSplit, latestValidation } from './final-validation.ts';

const NO_POINTS: never[] = [];

export function FinalValidation({ run }: { run: RunSummary }) {
  const points = useStudio((s) => s.metrics[run.id] ?? NO_POINTS);
  const split = hasValidationSplit(run.config);
  useEffect(() => {
    if (split) void useStudio.getState().ensureMetrics(run.id);
  }, [run.id, split]);
  if (!split) return null;
  const v = latestValidation(points, run.state === 'completed' ? run.step : Number.NaN);
  const which = v === null ? 'not evaluated yet' : v.final ? `final, after step ${v.step}` : `at step ${v.step}`;
  return (
    <div className="readouts run-detail-validation" data-testid="final-validation" data-step={v?.step} data-final={v?.final ? 'true' : 'false'}>
      <Readout label={`Validation loss (${which})`} testId="final-validation-loss" value={v ? formatLoss(v.loss) : '—'} />
      <Readout label="Perplexity = exp(loss)" testId="final-validation-perplexity" value={v ? formatPerplexity(v.perplexity) : '—'} />
    </div>
  );
}
