import type { LocalModel } from '../../../common/protocol.ts';
import { useLocalModels } from '../stores/local-models.ts';
import { ErrorNote } from './ErrorNote.tsx';
import { HubDownload } from './HubDownload.tsx';
import { formatBytes, formatCount } from './format.ts';

const STORE_NAMES: Record<LocalModel['store'], string> = { 'hf-cache': 'Hugging Face cache', ollama: 'Ollama', lmstudio: 'LM Studio' };

interface Props {
  /** Prefix of the test ids: '' (Train page), 'lab-', 'pg-'. */
  idPrefix: string;
  busy: boolean;
  onChoose(path: string): void;
}

/** "On this machine": the models other tools already keep, each with format and size; a click loads one. Below, a download from Hugging Face. */
export function LocalModels({ idPrefix, busy, onChoose }: Props) {
  const { info, busy: looking, error, load } = useLocalModels();
  return (
    <details className="local-models" data-testid={`${idPrefix}local-models`} onToggle={(e) => (e.currentTarget.open ? void load() : undefined)}>
      <summary>Models on this machine{info ? ` (${info.models.filter((m) => !m.problem).length} trainable)` : ''}</summary>
      {looking ? <p className="muted">looking in the Hugging Face cache, Ollama and LM Studio…</p> : null}
      {error ? <ErrorNote error={error} testId={`${idPrefix}local-models-error`} /> : null}
      {info && info.models.length === 0 ? (
        <p className="muted" data-testid={`${idPrefix}local-models-none`}>
          None found. Looked in: {info.searched.map((s) => `${s.dir}${s.exists ? '' : ' (absent)'}`).join(', ')}
        </p>
      ) : null}
      {info && info.models.length > 0 ? (
        <ul className="local-model-list">
          {info.models.map((m) => (
            <li key={`${m.store}:${m.name}:${m.path}`} data-testid={`${idPrefix}local-model`}>
              <button type="button" className="link" disabled={busy || m.problem !== undefined} onClick={() => onChoose(m.path)} title={m.path}>
                {m.name}
              </button>
              <span className="muted">
                {' '}
                {STORE_NAMES[m.store]} · {m.format === 'gguf' ? 'GGUF' : 'HF folder'} · {formatBytes(m.sizeBytes)}
                {m.quantization ? ` · ${m.quantization}` : ''}
                {m.parameters !== null ? ` · ${formatCount(m.parameters)} params` : ''}
                {m.architecture ? ` · ${m.architecture}` : ''}
              </span>
              {m.problem ? (
                <div className="warn" data-testid={`${idPrefix}local-model-problem`}>
                  cannot be trained: {m.problem}
                </div>
              ) : null}
            </li>
          ))}
        </ul>
      ) : null}
      {info ? (
        <button type="button" className="link" disabled={looking} onClick={() => void load(true)}>
          Look again
        </button>
      ) : null}
      <HubDownload idPrefix={idPrefix} busy={busy} onDownloaded={onChoose} />
    </details>
  );
}
