import { useState, type ReactNode } from 'react';
import type { OllamaExportInfo } from '../../../common/ollama-export.ts';
import type { AdapterSummary, StudioErrorInfo } from '../../../common/protocol.ts';
import { errorInfo } from '../client/transport.ts';
import { useStudio } from '../stores/studio.ts';
import { ErrorNote } from './ErrorNote.tsx';

/**
 * "Export for Ollama" on an adapter: writes adapter.gguf and a Modelfile into the adapter's ollama/ folder and shows
 * the `ollama create` command to run, with what FROM and TEMPLATE were taken from. The button goes with the adapter's
 * actions, the note under its details.
 */
export function useOllamaExport(adapter: AdapterSummary): { button: ReactNode; note: ReactNode } {
  const client = useStudio((s) => s.client);
  const [state, setState] = useState<{ busy: boolean; done?: OllamaExportInfo; error?: StudioErrorInfo }>({ busy: false });
  async function run(): Promise<void> {
    if (!client) return;
    setState({ busy: true });
    try {
      setState({ busy: false, done: await client.request('adapters.exportOllama', { id: adapter.id }) });
    } catch (e) {
      setState({ busy: false, error: errorInfo(e) });
    }
  }
  const button = (
    <button type="button" data-testid="adapter-ollama" disabled={state.busy} title="Write adapter.gguf and a Modelfile for ollama create into the adapter folder" onClick={() => void run()}>
      {state.busy ? 'Writing…' : 'Ollama'}
    </button>
  );
  const d = state.done;
  const note = d ? (
    <div className="note note-ok" data-testid="adapter-ollama-done">
      Modelfile and adapter.gguf written to {d.dir} (FROM {d.from}
      {d.fromOllama ? ', its template and stops carried over' : d.template ? `, ${d.template} template and stops` : ', no template written'}). Create the model with:
      <pre className="command-line" data-testid="adapter-ollama-command">
        <code>{d.command}</code>
      </pre>
    </div>
  ) : state.error ? (
    <ErrorNote error={state.error} testId="adapter-ollama-error" />
  ) : null;
  return { button, note };
}
