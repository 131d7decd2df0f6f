/**
 * 'adapters.exportMerged': an adapter merged into its base and written into a new folder (engine/export/merged-model.ts,
 * the same code `lora-studio quantize --adapter` runs for GGUF). Refusals name the request field they are about: the
 * destination (relative, or an existing non-empty folder or a file), the base (relative, missing, or not fitting).
 * The request is checked here (cheap: headers, the adapter against the base's config); the merge itself runs in a
 * worker_thread (engine/export/merged-worker.ts), so a 7B merge never stalls the services for its minutes.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { isHfMergedFormat, type MergedExportCommand, type MergedExportEvent, type MergedExportResult } from '../../common/merged-export.ts';
import type { AdapterSummary } from '../../common/protocol.ts';
import { loadAdapter, readAdapterConfig, readModelConfig } from '../../engine/host-api.ts';
import { StudioError } from './errors.ts';
import { parseParams } from './params.ts';
import { runWorkerJob, startWorkerHandle, workerEntry, type WorkerHandle } from './worker-handle.ts';

export type MergedWorkerHandle = WorkerHandle<MergedExportCommand, MergedExportEvent>;

export function startMergedWorker(): MergedWorkerHandle {
  return startWorkerHandle<MergedExportCommand, MergedExportEvent>(workerEntry('../../engine/export/merged-worker.ts', import.meta.url), undefined, (e) => ({
    type: 'error',
    message: `merged-export worker failed: ${e.message}`,
  }));
}

const refuse = (field: string, message: string): StudioError => StudioError.fields([{ field, message }]);

/** A file name from the adapter's display name, safe on every OS. */
function fileStem(name: string, id: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || id;
}

export async function exportMergedModel(adapters: { get(id: string): AdapterSummary }, raw: unknown, startWorker: () => MergedWorkerHandle = startMergedWorker): Promise<MergedExportResult> {
  const p = parseParams('adapters.exportMerged', raw);
  const summary = adapters.get(p.id);
  if (existsSync(p.destination)) {
    if (!statSync(p.destination).isDirectory()) throw refuse('destination', `${p.destination} is a file; choose a new or empty folder`);
    if (readdirSync(p.destination).length > 0) throw refuse('destination', `${p.destination} is not empty; choose a new or empty folder so nothing there is overwritten`);
  }
  const modelPath = p.modelPath ?? readAdapterConfig(summary.path).baseModelNameOrPath;
  if (!modelPath) throw refuse('modelPath', `${summary.path}: adapter_config.json names no base model; choose the base model`);
  if (!isAbsolute(modelPath) || !existsSync(modelPath)) throw refuse('modelPath', `the base model ${modelPath} is not on this machine; choose the base model folder or GGUF file`);
  if (isHfMergedFormat(p.format) && !statSync(modelPath).isDirectory()) {
    throw refuse('modelPath', `${modelPath} is a GGUF file: a Hugging Face folder export needs a base folder with config.json (choose a GGUF format, or the base's Hugging Face folder)`);
  }
  // The adapter must fit the base (layers, shapes) before anything is written.
  try {
    loadAdapter(summary.path, readModelConfig(modelPath));
  } catch (e) {
    throw refuse('modelPath', `the adapter does not fit ${modelPath}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return runWorkerJob(
    startWorker(),
    { type: 'merged.export', modelPath, adapterDir: summary.path, format: p.format, destination: p.destination, stem: fileStem(summary.name, summary.id), name: `${summary.name} (merged)` },
    { done: (e) => (e.type === 'done' ? e.result : undefined), exited: (code) => `the merged-export worker stopped (exit code ${code}) before the model was written` },
  );
}
