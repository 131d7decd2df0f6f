import { useShallow } from 'zustand/react/shallow';
import { pickModelSlice } from '../stores/model-slice.ts';
import { useStudio } from '../stores/studio.ts';
import { formatCount } from './format.ts';
import { ModelPathControls } from './ModelPathControls.tsx';

export function ModelPicker() {
  const slice = useStudio(useShallow(pickModelSlice));
  const { model, modelError: error } = slice;
  const serverError = useStudio((s) => s.serverErrors.modelPath);

  return (
    <section className="card" data-testid="model-picker">
      <h2>Base model</h2>
      <ModelPathControls slice={slice} idPrefix="" placeholder="/path/to/model folder (config.json + *.safetensors)" serverError={serverError} />
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
