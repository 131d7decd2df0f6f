import { useEffect } from 'react';
import { TRAIN_ON, type DatasetSummary, type TrainOn } from '../../../common/protocol.ts';
import { typedMaxSeqLen } from '../stores/dataset-request.ts';
import { useStudio } from '../stores/studio.ts';
import { ExamplePreview } from './ExamplePreview.tsx';
import { baseName, formatCount } from './format.ts';
import { TokenHistogram } from './TokenHistogram.tsx';

/** Typing "512" passes through "5" and "51": wait for a pause before re-reading the file. */
const REFRESH_DELAY_MS = 300;

const TRAIN_ON_LABELS: Record<TrainOn, string> = {
  auto: 'auto (completions for chat and instruction data)',
  completions: 'completions / assistant turns only',
  all: 'everything',
};

/**
 * Keeps the dataset summary true to the run about to start: token lengths need the chosen model's tokenizer, and
 * the truncated count and trained spans depend on the max length, format and train-on choice.
 */
function useAutoInspect(): void {
  const modelPath = useStudio((s) => s.model?.path ?? null);
  const maxSeqLen = useStudio((s) => typedMaxSeqLen(s.form));
  const format = useStudio((s) => s.form.data.format);
  const trainOn = useStudio((s) => s.form.data.trainOn);
  const requestKey = useStudio((s) => s.datasetRequestKey);
  useEffect(() => {
    if (requestKey === null) return;
    const timer = setTimeout(() => void useStudio.getState().refreshDataset(), REFRESH_DELAY_MS);
    return () => clearTimeout(timer);
  }, [modelPath, maxSeqLen, format, trainOn, requestKey]);
}

export function DatasetPanel() {
  useAutoInspect();
  const dataset = useStudio((s) => s.dataset);
  const busy = useStudio((s) => s.datasetBusy);
  const hasModel = useStudio((s) => s.model !== null);
  const trainOn = useStudio((s) => s.form.data.trainOn);
  const setDataChoice = useStudio((s) => s.setDataChoice);

  return (
    <section className="card" data-testid="dataset-panel" aria-busy={busy}>
      <div className="card-title-row">
        <h2>Dataset preview</h2>
        {busy ? <span className="muted">reading…</span> : null}
      </div>
      {!dataset ? (
        <div className="drop-hint" data-testid="drop-hint">
          Drop a dataset file anywhere on this window, or choose one under Dataset.
          <div className="muted">JSONL, JSON, CSV/TSV, Parquet or plain text: raw text, prompt/completion, Alpaca, ShareGPT, chat messages or pre-tokenized.</div>
        </div>
      ) : (
        <>
          <DatasetStats dataset={dataset} />
          {dataset.records === 0 ? (
            <div className="note note-warn" data-testid="dataset-no-records">
              No record of {baseName(dataset.path)} can be read as {dataset.format}: choose another format under Dataset, or let it be detected.
            </div>
          ) : null}
          {dataset.histogram ? (
            <TokenHistogram histogram={dataset.histogram} maxSeqLen={dataset.maxSeqLen} truncated={dataset.truncated ?? 0} />
          ) : (
            <p className="muted" data-testid="histogram-needs-model">
              {hasModel ? 'No token lengths for this dataset.' : 'Choose a model to see token lengths: they are counted with its tokenizer.'}
            </p>
          )}
          <div className="inline-field">
            <label htmlFor="train-on">Train on</label>
            <select id="train-on" data-testid="train-on" value={trainOn} onChange={(e) => setDataChoice('trainOn', e.target.value as TrainOn)}>
              {TRAIN_ON.map((t) => (
                <option key={t} value={t}>
                  {TRAIN_ON_LABELS[t]}
                </option>
              ))}
            </select>
          </div>
          <ExamplePreview examples={dataset.preview} />
        </>
      )}
    </section>
  );
}

function DatasetStats({ dataset }: { dataset: DatasetSummary }) {
  const st = dataset.tokenStats;
  return (
    <div className="stat-row" data-testid="dataset-stats">
      <Stat label="File" value={baseName(dataset.path)} title={dataset.path} />
      <Stat label="Format" value={dataset.format} testId="panel-format" />
      <Stat label="Records" value={formatCount(dataset.records)} testId="panel-records" />
      {dataset.chatTemplate ? <Stat label="Chat template" value={dataset.chatTemplate === 'model' ? "the model's" : dataset.chatTemplate} /> : null}
      {st ? (
        <>
          <Stat label="Tokens" value={formatCount(st.total)} title={`${st.total} tokens in ${st.count} examples`} />
          <Stat label="Median / p95" value={`${Math.round(st.median)} / ${Math.round(st.p95)}`} />
          <Stat label="Longest" value={String(st.max)} />
        </>
      ) : null}
    </div>
  );
}

function Stat({ label, value, title, testId }: { label: string; value: string; title?: string; testId?: string }) {
  return (
    <div className="stat">
      <div className="stat-label">{label}</div>
      <div className="stat-value" title={title ?? value} data-testid={testId}>
        {value}
      </div>
    </div>
  );
}
