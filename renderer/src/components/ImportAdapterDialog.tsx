/**
 * "Import adapter" on the Adapters card ('adapters.import'): a PEFT LoRA adapter folder made elsewhere (a path, a
 * Hugging Face cache folder or a hub id in the local cache), checked against its base model. The services' refusal —
 * a target module the studio cannot apply, a shape that does not fit the base model, a missing file — is shown as
 * they word it, so the user reads exactly what does not match and where.
 */
import { useRef, useState } from 'react';
import type { AdapterImportResult, StudioErrorInfo } from '../../../common/protocol.ts';
import { errorInfo } from '../client/transport.ts';
import { useStudio } from '../stores/studio.ts';
import { ErrorNote } from './ErrorNote.tsx';
import { PathField } from './PathField.tsx';
import { useDialogFocus, useEscapeCloses } from './use-dialog-focus.ts';
import '../runs/runs.css';
import './cluster.css';

export function ImportAdapterButton() {
  const [open, setOpen] = useState(false);
  const connected = useStudio((s) => s.connection === 'open');
  return (
    <>
      <button type="button" data-testid="adapter-import-open" disabled={!connected} title="Bring a PEFT LoRA adapter folder into this list" onClick={() => setOpen(true)}>
        Import adapter
      </button>
      {open ? <ImportAdapterDialog onClose={() => setOpen(false)} /> : null}
    </>
  );
}

type Field = 'path' | 'modelPath';

export function ImportAdapterDialog({ onClose }: { onClose(): void }) {
  const client = useStudio((s) => s.client);
  const loadedModel = useStudio((s) => s.model?.path ?? '');
  const [path, setPath] = useState('');
  const [modelPath, setModelPath] = useState('');
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<StudioErrorInfo | null>(null);
  const [result, setResult] = useState<AdapterImportResult | null>(null);
  const dialog = useRef<HTMLDivElement>(null);
  useDialogFocus(dialog);
  useEscapeCloses(onClose, !busy);

  async function pick(field: Field): Promise<void> {
    if (!client) return;
    try {
      const title = field === 'path' ? 'Choose the adapter folder (adapter_config.json + adapter_model.safetensors)' : 'Choose the base model folder';
      const { path: picked } = await client.request('dialog.pickFolder', { title });
      if (picked) (field === 'path' ? setPath : setModelPath)(picked);
    } catch (e) {
      setError(errorInfo(e));
    }
  }

  async function importIt(): Promise<void> {
    if (!client || busy) return;
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      setResult(
        await client.request('adapters.import', {
          path: path.trim(),
          ...(modelPath.trim() ? { modelPath: modelPath.trim() } : {}),
          ...(name.trim() ? { name: name.trim() } : {}),
        }),
      );
    } catch (e) {
      setError(errorInfo(e));
    } finally {
      setBusy(false);
    }
  }

  // The refusal is about one of the two folders: its field is marked, the message (verbatim) sits under the form.
  const bad = (field: Field): boolean => error?.field === field || (error?.fieldErrors ?? []).some((f) => f.field === field);

  return (
    <div className="modal-backdrop" onClick={() => !busy && onClose()}>
      <div ref={dialog} tabIndex={-1} className="modal card" role="dialog" aria-modal="true" aria-labelledby="import-adapter-title" data-testid="import-adapter-dialog" onClick={(e) => e.stopPropagation()}>
        <h2 id="import-adapter-title">Import an adapter</h2>
        <p className="muted">
          A PEFT LoRA folder (<code>adapter_config.json</code> + <code>adapter_model.safetensors</code>) from a cluster run, the Hugging Face cache or anywhere. It is checked against its base model
          before it is added; then the playground, GGUF export and the quantization lab work on it.
        </p>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void importIt();
          }}
        >
          <div className={`field${bad('path') ? ' field-invalid' : ''}`}>
            <label htmlFor="import-adapter-path">Adapter folder</label>
            <PathField
              id="import-adapter-path"
              value={path}
              onChange={(v) => {
                setPath(v);
                setResult(null);
              }}
              placeholder="/path/to/adapter, models--org--name, or org/name in the hub cache"
              testId="import-adapter-path"
              busy={busy}
              onBrowse={() => void pick('path')}
              browseTestId="import-adapter-browse"
            />
          </div>
          <div className={`field${bad('modelPath') ? ' field-invalid' : ''}`}>
            <label htmlFor="import-adapter-model">Base model folder (optional)</label>
            <PathField
              id="import-adapter-model"
              value={modelPath}
              onChange={setModelPath}
              placeholder="empty: the model its adapter_config.json names, when it is on this machine"
              testId="import-adapter-model"
              busy={busy}
              onBrowse={() => void pick('modelPath')}
              browseTestId="import-adapter-model-browse"
            >
              {loadedModel && modelPath !== loadedModel ? (
                <button type="button" data-testid="import-adapter-use-loaded" onClick={() => setModelPath(loadedModel)}>
                  Use the loaded model
                </button>
              ) : null}
            </PathField>
          </div>
          <div className="field">
            <label htmlFor="import-adapter-name">Name in the list (optional)</label>
            <input id="import-adapter-name" type="text" data-testid="import-adapter-name" value={name} onChange={(e) => setName(e.target.value)} />
          </div>
          {error ? <ErrorNote error={error} testId="import-adapter-error" /> : null}
          {result ? (
            <div className="note note-ok" data-testid="import-adapter-done">
              <div className="note-message">
                Imported <strong>{result.adapter.name}</strong>: r {result.adapter.r}, α {result.adapter.alpha}, {result.adapter.targets.join(', ')}.
              </div>
              {result.warnings.length > 0 ? (
                <ul className="note-list" data-testid="import-adapter-warnings">
                  {result.warnings.map((w) => (
                    <li key={w}>{w}</li>
                  ))}
                </ul>
              ) : null}
            </div>
          ) : null}
          <div className="modal-actions">
            <button type="button" onClick={onClose} data-testid="import-adapter-close" disabled={busy}>
              Close
            </button>
            <button type="submit" className="primary" data-testid="import-adapter-submit" disabled={busy || !client || !path.trim()}>
              {busy ? 'Checking…' : 'Import'}
            </button>
          </div>
        </form>
      </div>
    </div>
  );
}
