import type { RunSummary } from '../../../common/protocol.ts';
import { usePage } from '../stores/page.ts';
import { useStudio } from '../stores/studio.ts';

/** Fills the Train page with this run's model, dataset and every setting, and goes there. */
export function TrainAgainButton({ run }: { run: RunSummary }) {
  const applyConfig = useStudio((s) => s.applyConfig);
  const show = usePage((s) => s.show);
  return (
    <button
      type="button"
      className="link"
      data-testid="run-train-again"
      title="Open the Train page with this run's model, dataset and settings"
      onClick={(e) => {
        e.stopPropagation();
        show('train');
        void applyConfig(run.config);
      }}
    >
      Train again with these settings
    </button>
  );
}
