/**
 * 'adapters.exportOllama': an adapter as a folder Ollama builds a model from (engine/export/ollama-modelfile.ts),
 * written into the adapter's folder (ollama/) unless a destination is given, so dragging or saving the adapter
 * carries it; the answer has the `ollama create` line to show.
 */
import { join } from 'node:path';
import { z } from 'zod';
import type { OllamaExportInfo } from '../../common/ollama-export.ts';
import type { AdapterSummary } from '../../common/protocol.ts';
import { exportForOllama } from '../../engine/host-api.ts';
import { asStudioError, StudioError } from './errors.ts';

export const OLLAMA_EXPORT_PARAMS = z.object({
  id: z.string({ message: 'id is required' }).min(1, 'id is required'),
  destination: z.string().min(1, 'choose a folder to write into').optional(),
});

export function exportAdapterForOllama(adapters: { get(id: string): AdapterSummary }, raw: unknown, changed: () => void): OllamaExportInfo {
  const parsed = OLLAMA_EXPORT_PARAMS.safeParse(raw ?? {});
  if (!parsed.success) throw StudioError.fields(parsed.error.issues.map((i) => ({ field: i.path.join('.'), message: i.message })));
  const summary = adapters.get(parsed.data.id);
  const dir = parsed.data.destination ?? join(summary.path, 'ollama');
  let r: OllamaExportInfo;
  try {
    r = exportForOllama(summary.path, dir, { name: summary.name });
  } catch (e) {
    throw asStudioError(e);
  }
  if (!parsed.data.destination) changed();
  return r;
}
