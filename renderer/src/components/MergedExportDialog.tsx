/**
 * "Export merged…" on an adapter ('adapters.exportMerged'): the adapter merged into its base and written as a model of
 * its own — a Hugging Face folder (transformers, vLLM) or one GGUF file (llama.cpp, Ollama, LM Studio) — into a new
 * or empty folder. The answer shows what was written (folder, files, size); a refusal shows under its field.
 */
import { useRef, useState } from 'react';
import { isHfMergedFormat, MERGED_EXPORT_FORMATS, MERGED_FORMAT_LABELS, type MergedExportFormat, type MergedExportResult } from '../../../common/merged-export.ts';
import type { AdapterSummary, StudioErrorInfo } from '../../../common/protocol.ts';
import { errorInfo } from '../client/transport.ts';
import { useStudio } from '../stores/studio.ts';
import { ErrorNote } from './ErrorNote.tsx';
import { FieldNote } from './FieldNote.tsx';
import { splitFieldErrors } from './split-field-errors.ts';
import { formatBytes } from './format.ts';
import { PathField } from './PathField.tsx';
import { useDialogFocus, useEscapeCloses } from './use-dialog-focus.ts';

type Field = 'destination' | 'format' | 'modelPath';
const FIELDS: readonly Field[] = ['destination', 'format', 'modelPath'];

export function MergedExportButton({ adapter }: { adapter: AdapterSummary }) {
  const [open, setOpen] = useState(false);
  const connected = useStudio((s) => s.connection === 'open');
  return (
    <>
      <button type="button" data-testid="adapter-merged" disabled={!connected} title="Merge the adapter into its base and write the model as a Hugging Face folder or a GGUF" onClick={() => setOpen(true)}>
        Export merged…
      </button>
      {open ? <MergedExportDialog adapter={adapter} onClose={() => setOpen(false)} /> : null}
    </>
  );
}

export function MergedExportDialog({ adapter, onClose }: { adapter: AdapterSummary; onClose(): void }) {
  const client = useStudio((s) => s.client);
  const [format, setFormat] = useState<MergedExportFormat>('hf-safetensors');
  const [destination, setDestination] = useState('');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<MergedExportResult | null>(null);
  const [fieldErrors, setFieldErrors] = useState<Partial<Record<Field, string>>>({});
  const [error, setError] = useState<StudioErrorInfo | null>(null);
  const dialog = useRef<HTMLDivElement>(null);
  useDialogFocus(dialog);
  useEscapeCloses(onClose, !busy);

  const edited = (field: Field) => setFieldErrors((f) => (field in f ? { ...f, [field]: undefined } : f));

  async function pickFolder(): Promise<void> {
    if (!client) return;
    try {
      const { path } = await client.request('dialog.pickFolder', { title: 'Write the merged model into…' });
      if (path) {
        setDestination(path);
        edited('destination');
      }
    } catch (e) {
      setError(errorInfo(e));
    }
  }

  async function exportIt(): Promise<void> {
    if (!client || busy) return;
    setBusy(true);
    setError(null);
    setFieldErrors({});
    setResult(null);
    try {
      setResult(await client.request('adapters.exportMerged', { id: adapter.id, format, destination: destination.trim() }));
    } catch (e) {
      const split = splitFieldErrors(errorInfo(e), FIELDS);
      setFieldErrors(split.fields);
      setError(split.rest);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="modal-backdrop" onClick={() => !busy && onClose()}>
      <div
        ref={dialog}
        tabIndex={-1}
        className="modal card"
        role="dialog"
        aria-modal="true"
        aria-labelledby="merged-title"
        data-testid="merged-dialog"
        onClick={(e) => e.stopPropagation()}
      >
        <h2 id="merged-title">Export {adapter.name} merged into its base</h2>
        <p className="muted">
          The base ({adapter.baseModel}) with scaling·B·A of this adapter added to its weights: a model of its own that needs no adapter to run.
        </p>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void exportIt();
          }}
        >
          <div className={`field${fieldErrors.format ? ' field-invalid' : ''}`}>
            <label htmlFor="merged-format">Format</label>
            <select
              id="merged-format"
              data-testid="merged-format"
              value={format}
              disabled={busy}
              onChange={(e) => {
                setFormat(e.target.value as MergedExportFormat);
                edited('format');
              }}
            >
              {MERGED_EXPORT_FORMATS.map((f) => (
                <option key={f} value={f}>
                  {MERGED_FORMAT_LABELS[f]}
                </option>
              ))}
            </select>
            <FieldNote errorTestId="merged-error-format" error={fieldErrors.format} hint={isHfMergedFormat(format) ? 'config.json, model.safetensors and the base’s tokenizer files: transformers loads the folder' : 'one .gguf file with the tokenizer and chat template in it'} />
          </div>
          <div className={`field${fieldErrors.destination ? ' field-invalid' : ''}`}>
            <label htmlFor="merged-destination">Folder to write into</label>
            <PathField
              id="merged-destination"
              value={destination}
              onChange={(v) => {
                setDestination(v);
                edited('destination');
              }}
              placeholder="/absolute/path/to/a/new/folder"
              testId="merged-destination"
              busy={busy}
              onBrowse={() => void pickFolder()}
              browseTestId="merged-browse"
            />
            <FieldNote errorTestId="merged-error-destination" error={fieldErrors.destination} hint="a new or empty folder (on the studio’s machine); nothing is overwritten" />
          </div>
          {fieldErrors.modelPath ? (
            <div className="field field-invalid">
              <span className="field-label">Base model</span>
              <FieldNote errorTestId="merged-error-modelPath" error={fieldErrors.modelPath} hint="" />
            </div>
          ) : null}
          {error ? <ErrorNote error={error} testId="merged-error" /> : null}
          {result ? (
            <div className="note note-ok" data-testid="merged-result">
              <div className="note-message">
                Written: <code className="path" data-testid="merged-path">{result.dir}</code> ({formatBytes(result.bytes)})
              </div>
              <div className="muted" data-testid="merged-files">
                {result.files.join(', ')}
              </div>
              <div className="muted">{result.note}</div>
              {result.warning ? <div className="note note-warn">{result.warning}</div> : null}
            </div>
          ) : null}
          <div className="modal-actions">
            <button type="button" onClick={onClose} data-testid="merged-close" disabled={busy}>
              Close
            </button>
            <button type="submit" className="primary" data-testid="merged-export" disabled={busy || !client}>
              {busy ? 'Merging…' : 'Export'}
            </button>
          </div>
        </form>
      </div>
    </div>
  );
}
