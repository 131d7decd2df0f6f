import type { ModelSlice } from '../stores/model-slice.ts';
import { ErrorNote } from './ErrorNote.tsx';
import { formatCount } from './format.ts';
import { LocalModels } from './LocalModels.tsx';
import { PathField } from './PathField.tsx';

interface Props {
  /** A store's model slice (stores/model-slice.ts): the Train page's, the lab's or the playground's. */
  slice: ModelSlice;
  /** Prefix of the test ids: '' (Train page), 'lab-', 'pg-'. */
  idPrefix: string;
  placeholder?: string;
  /** A problem the services reported about the model field, shown when the slice has none of its own. */
  serverError?: string;
}

/** The model folder field with Load / Browse…, "Use the sample model", the models on this machine, and the problem with the chosen one, if any. */
export function ModelPathControls({ slice, idPrefix, placeholder, serverError }: Props) {
  const { modelPath, modelBusy: busy, modelError: error } = slice;
  return (
    <>
      <PathField
        testId={`${idPrefix}model-path`}
        ariaLabel="Model folder"
        placeholder={placeholder ?? '/path/to/model folder'}
        value={modelPath}
        onChange={slice.setModelPath}
        busy={busy}
        onLoad={() => void slice.inspectModel()}
        loadTestId={`${idPrefix}model-load`}
        onBrowse={() => void slice.browseModel()}
        browseTestId={`${idPrefix}model-browse`}
      />
      <div className="row-actions">
        <button type="button" className="link" data-testid={`${idPrefix}use-sample-model`} disabled={busy} onClick={() => void slice.chooseSampleModel()}>
          Use the sample model
        </button>
        {busy ? <span className="muted">reading…</span> : null}
      </div>
      <LocalModels
        idPrefix={idPrefix}
        busy={busy}
        onChoose={(path) => {
          slice.setModelPath(path);
          void slice.inspectModel();
        }}
      />
      {error ? <ErrorNote error={error} testId={`${idPrefix}model-error`} /> : serverError ? <ErrorNote error={{ message: serverError }} testId={`${idPrefix}model-error`} /> : null}
    </>
  );
}

/** One line about a loaded model: name, then architecture, depth and size. */
export function ModelLine({ slice, testId, className, showHidden = false, showChatTemplate = false }: { slice: ModelSlice; testId: string; className: string; showHidden?: boolean; showChatTemplate?: boolean }) {
  const { model, modelError } = slice;
  if (!model || modelError) return null;
  return (
    <div className={className} data-testid={testId}>
      <strong>{model.name}</strong>
      <span className="muted">
        {model.architecture} · {model.layers} layers{showHidden ? ` · hidden ${model.hiddenSize}` : ''} · {formatCount(model.parameters)} params
        {showChatTemplate && model.hasChatTemplate ? ' · chat template' : ''}
      </span>
    </div>
  );
}
