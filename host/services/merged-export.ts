/**
 * 'adapters.exportMerged': an adapter merged into its base and written into a new folder (engine/export/merged-model.ts,
 * the same code `lora-studio quantize --adapter` runs for GGUF). Refusals name the request field they are about: the
 * destination (relative, or an existing non-empty folder or a file), the base (relative, missing, or not fitting).
 * Runs in the services process: a merge of a small model takes seconds, the UI shows the action busy meanwhile.
 */
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { MergedExportFormat, MergedExportResult } from '../../common/merged-export.ts';
import type { AdapterSummary } from '../../common/protocol.ts';
import { writeMergedGguf, writeMergedHf } from '../../engine/host-api.ts';
import { mergedExportNote } from '../../engine/host-api.ts';
import { readModelConfig } from '../../engine/host-api.ts';
import { loadAdapter, readAdapterConfig } from '../../engine/host-api.ts';
import type { GgufExportFormat } from '../../engine/host-api.ts';
import { asStudioError, StudioError } from './errors.ts';
import { parseParams } from './params.ts';

const GGUF_OF: Record<Exclude<MergedExportFormat, 'hf-safetensors'>, GgufExportFormat> = { 'gguf-f16': 'f16', 'gguf-q8_0': 'q8_0', 'gguf-q4_0': 'q4_0' };

const refuse = (field: string, message: string): StudioError => StudioError.fields([{ field, message }]);

/** A file name from the adapter's display name, safe on every OS. */
function fileStem(name: string, id: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || id;
}

export function exportMergedModel(adapters: { get(id: string): AdapterSummary }, raw: unknown): MergedExportResult {
  const p = parseParams('adapters.exportMerged', raw);
  const summary = adapters.get(p.id);
  if (existsSync(p.destination)) {
    if (!statSync(p.destination).isDirectory()) throw refuse('destination', `${p.destination} is a file; choose a new or empty folder`);
    if (readdirSync(p.destination).length > 0) throw refuse('destination', `${p.destination} is not empty; choose a new or empty folder so nothing there is overwritten`);
  }
  const modelPath = p.modelPath ?? readAdapterConfig(summary.path).baseModelNameOrPath;
  if (!modelPath) throw refuse('modelPath', `${summary.path}: adapter_config.json names no base model; choose the base model`);
  if (!isAbsolute(modelPath) || !existsSync(modelPath)) throw refuse('modelPath', `the base model ${modelPath} is not on this machine; choose the base model folder or GGUF file`);
  if (p.format === 'hf-safetensors' && !statSync(modelPath).isDirectory()) {
    throw refuse('modelPath', `${modelPath} is a GGUF file: a Hugging Face folder export needs a base folder with config.json (choose a GGUF format, or the base's Hugging Face folder)`);
  }
  // The adapter must fit the base (layers, shapes) before anything is written.
  try {
    loadAdapter(summary.path, readModelConfig(modelPath));
  } catch (e) {
    throw refuse('modelPath', `the adapter does not fit ${modelPath}: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    if (p.format === 'hf-safetensors') {
      const note = mergedExportNote(modelPath, summary.path, 'f32').text.replace('linears re-quantized to F32', 'written in f32');
      const r = writeMergedHf(modelPath, summary.path, p.destination, note);
      return { dir: r.dir, format: p.format, files: r.files, bytes: r.bytes, modelPath, note, warning: null };
    }
    const format = GGUF_OF[p.format];
    mkdirSync(p.destination, { recursive: true });
    const file = `${fileStem(summary.name, summary.id)}-merged-${format}.gguf`;
    const r = writeMergedGguf(modelPath, summary.path, join(p.destination, file), { format, name: `${summary.name} (merged)` });
    const note = mergedExportNote(modelPath, summary.path, format).text;
    return { dir: p.destination, format: p.format, files: [file], bytes: r.bytes, modelPath, note, warning: r.tokenizerNote };
  } catch (e) {
    throw asStudioError(e);
  }
}
