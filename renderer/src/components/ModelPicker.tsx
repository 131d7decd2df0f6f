import { useStudio } from '../stores/studio.ts';
import { ErrorNote } from './ErrorNote.tsx';
import { formatCount } from './format.ts';
import { PathField } from './PathField.tsx';

export function ModelPicker() {
  const path = useStudio((s) => s.modelPath);
  const model = useStudio((s) => s.model);
  const error = useStudio((s) => s.modelError);
  const serverError = useStudio((s) => s.serverErrors.modelPath);
  const busy = useStudio((s) => s.modelBusy);
  const { setModelPath, inspectModel, chooseSampleModel, browseModel } = useStudio.getState();

  return (
    <section className="card" data-testid="model-picker">
      <h2>Base model</h2>
      <PathField
        testId="model-path"
        ariaLabel="Model folder"
        placeholder="/path/to/model folder (config.json + *.safetensors)"
        value={path}
        onChange={setModelPath}
        busy={busy}
        onLoad={() => void inspectModel()}
        loadTestId="model-load"
        onBrowse={() => void browseModel()}
        browseTestId="model-browse"
      />
      <div className="row-actions">
        <button type="button" className="link" data-testid="use-sample-model" disabled={busy} onClick={() => void chooseSampleModel()}>
          Use the sample model
        </button>
        {busy ? <span className="muted">reading…</span> : null}
      </div>
      {error ? <ErrorNote error={error} testId="model-error" /> : serverError ? <ErrorNote error={{ message: serverError }} testId="model-error" /> : null}
      {model && !error ? (
        <dl className="summary" data-testid="model-summary">
          <dt>Name</dt>
          <dd data-testid="model-name">{model.name}</dd>
          <dt>Architecture</dt>
          <dd>
            {model.architecture} <span className="muted">({model.modelType})</span>
          </dd>
          <dt>Size</dt>
          <dd>
            {formatCount(model.parameters)} parameters · {model.dtype}
          </dd>
          <dt>Shape</dt>
          <dd>
            {model.layers} layers · hidden {model.hiddenSize} · {model.heads} heads ({model.kvHeads} kv) · vocab {formatCount(model.vocabSize)}
          </dd>
          <dt>Tokenizer</dt>
          <dd>
            {model.hasTokenizer ? 'yes' : <span className="warn">missing</span>}
            {model.hasChatTemplate ? ' · chat template' : ''}
          </dd>
        </dl>
      ) : null}
    </section>
  );
}
