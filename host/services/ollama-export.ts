/**
 * 'adapters.exportOllama': an adapter as a folder Ollama builds a model from (engine/export/ollama-modelfile.ts),
 * written into the adapter's folder (ollama/) unless a destination is given, so dragging or saving the adapter
 * carries it; the answer has the `ollama create` line to show.
 */
import { join } from 'node:path';
import type { OllamaExportInfo } from '../../common/ollama-export.ts';
import type { AdapterSummary } from '../../common/protocol.ts';
import { exportForOllama } from '../../engine/host-api.ts';
import { asStudioError } from './errors.ts';
import { parseParams } from './params.ts';

export function exportAdapterForOllama(adapters: { get(id: string): AdapterSummary }, raw: unknown, changed: () => void): OllamaExportInfo {
  const p = parseParams('adapters.exportOllama', raw);
  const summary = adapters.get(p.id);
  const dir = p.destination ?? join(summary.path, 'ollama');
  let r: OllamaExportInfo;
  try {
    r = exportForOllama(summary.path, dir, { name: summary.name });
  } catch (e) {
    throw asStudioError(e);
  }
  if (!p.destination) changed();
  return r;
}
