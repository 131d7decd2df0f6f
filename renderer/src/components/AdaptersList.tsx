import { useState, type DragEvent } from 'react';
import type { AdapterSummary, StudioErrorInfo } from '../../../common/protocol.ts';
import { errorInfo } from '../client/transport.ts';
import { usePlayground } from '../playground/playground-store.ts';
import { usePage } from '../stores/page.ts';
import { useStudio } from '../stores/studio.ts';
import { AdapterName } from './AdapterName.tsx';
import { DeleteAdapterButton } from './DeleteAdapterButton.tsx';
import { ErrorNote } from './ErrorNote.tsx';
import { formatBytes } from './format.ts';
import { ImportAdapterButton } from './ImportAdapterDialog.tsx';
import { MergedExportButton } from './MergedExportDialog.tsx';
import { useOllamaExport } from './OllamaExport.tsx';

/** A name safe for a downloaded file on every OS (and for the ':'-separated DownloadURL format). */
export function zipFileName(adapter: AdapterSummary): string {
  const base = adapter.name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || adapter.id;
  return `${base}.zip`;
}

export function AdaptersList() {
  const adapters = useStudio((s) => s.adapters);
  const error = useStudio((s) => s.adaptersError);
  return (
    <section className="card" data-testid="adapters">
      <div className="card-title-actions">
        <h2>
          Adapters <span className="muted count">{adapters.length}</span>
        </h2>
        <ImportAdapterButton />
      </div>
      {error ? <ErrorNote error={error} testId="adapters-error" /> : null}
      {adapters.length === 0 ? (
        <p className="muted">Finished runs put their adapter here. Drag one out of the window to get its PEFT folder.</p>
      ) : (
        <ul className="adapter-list" data-testid="adapter-list">
          {adapters.map((a) => (
            <AdapterItem key={a.id} adapter={a} />
          ))}
        </ul>
      )}
    </section>
  );
}

function AdapterItem({ adapter }: { adapter: AdapterSummary }) {
  const client = useStudio((s) => s.client);
  const saved = useStudio((s) => s.saved[adapter.id]);
  const saveAdapterAs = useStudio((s) => s.saveAdapterAs);
  const zipUrl = client?.adapterZipUrl?.(adapter.id) ?? null;
  const fileName = zipFileName(adapter);
  const [gguf, setGguf] = useState<{ busy: boolean; path?: string; error?: StudioErrorInfo }>({ busy: false });
  const ollama = useOllamaExport(adapter);

  async function exportGguf(): Promise<void> {
    if (!client) return;
    setGguf({ busy: true });
    try {
      const r = await client.request('adapters.exportGguf', { id: adapter.id });
      setGguf({ busy: false, path: r.path });
    } catch (e) {
      setGguf({ busy: false, error: errorInfo(e) });
    }
  }

  function onDragStart(e: DragEvent<HTMLLIElement>): void {
    if (client?.startDrag) {
      // Electron: the OS drag carries the real folder on disk; the browser's own drag must not start.
      e.preventDefault();
      client.startDrag(adapter.id);
      return;
    }
    if (zipUrl) {
      // Chromium turns DownloadURL into a file when dropped on the desktop or a file manager.
      e.dataTransfer.effectAllowed = 'copy';
      e.dataTransfer.setData('DownloadURL', `application/zip:${fileName}:${zipUrl}`);
      e.dataTransfer.setData('text/uri-list', zipUrl);
      e.dataTransfer.setData('text/plain', zipUrl);
    }
  }

  return (
    <li className="adapter" draggable data-testid="adapter-item" data-adapter-id={adapter.id} onDragStart={onDragStart} title="Drag out of the window to get the adapter folder">
      <div className="adapter-grip" aria-hidden="true">
        ⠿
      </div>
      <div className="adapter-body">
        <AdapterName adapter={adapter} />
        <div className="muted adapter-meta">
          r {adapter.r} · α {adapter.alpha} · {adapter.targets.join(', ')} · {formatBytes(adapter.sizeBytes)}
        </div>
        <div className="muted adapter-meta">
          base {adapter.baseModel} · {new Date(adapter.createdAt).toLocaleString()}
        </div>
        {saved?.path ? <div className="note note-ok">Saved to {saved.path}</div> : null}
        {saved?.error ? <div className="note note-error">{saved.error}</div> : null}
        {gguf.path ? (
          <div className="note note-ok" data-testid="adapter-gguf-done">
            GGUF LoRA written into the adapter folder ({gguf.path}): use it with llama.cpp <code>--lora</code> or Ollama <code>ADAPTER</code> on a GGUF of the base model.
          </div>
        ) : null}
        {gguf.error ? <ErrorNote error={gguf.error} testId="adapter-gguf-error" /> : null}
        {ollama.note}
      </div>
      <div className="adapter-actions">
        <button
          type="button"
          data-testid="adapter-try"
          title="Open the playground with this adapter"
          onClick={() => {
            usePage.getState().show('playground');
            void usePlayground.getState().chooseAdapter(adapter.id, useStudio.getState().adapters);
          }}
        >
          Try it
        </button>
        <button type="button" data-testid="adapter-gguf" disabled={gguf.busy} title="Write a GGUF LoRA file (llama.cpp, Ollama) into the adapter folder" onClick={() => void exportGguf()}>
          {gguf.busy ? 'Writing…' : 'GGUF'}
        </button>
        {ollama.button}
        <MergedExportButton adapter={adapter} />
        {client?.host === 'electron' ? (
          <button type="button" data-testid="adapter-save" onClick={() => void saveAdapterAs(adapter.id)}>
            Save as…
          </button>
        ) : zipUrl ? (
          <a className="button" data-testid="adapter-save" href={zipUrl} download={fileName} draggable={false}>
            Save as…
          </a>
        ) : null}
        <DeleteAdapterButton adapter={adapter} />
      </div>
    </li>
  );
}
