/**
 * Merged-export worker (worker_thread entry): one 'merged.export' per worker. Merging reads and writes the whole model
 * (a 7B in f32 is ~28 GB of products and writes), which would stall the services' event loop — the desktop window,
 * the web host, every other request — for minutes if it ran there.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { HF_MERGED_DTYPE, isHfMergedFormat, type HfMergedFormat, type MergedExportCommand, type MergedExportEvent } from '../../common/merged-export.ts';
import { errorDetails } from '../engine-error.ts';
import { mergedExportNote } from './merged-note.ts';
import { writeMergedGguf, writeMergedHf } from './merged-model.ts';
import type { GgufExportFormat } from '../quant/gguf-llama.ts';

const port = parentPort;
if (!port) throw new Error('engine/export/merged-worker.ts must run in a worker_thread');
const post = (e: MergedExportEvent): void => port.postMessage(e);

const GGUF_OF: Record<Exclude<MergedExportCommand['format'], HfMergedFormat>, GgufExportFormat> = { 'gguf-f16': 'f16', 'gguf-q8_0': 'q8_0', 'gguf-q4_0': 'q4_0' };

function run(c: MergedExportCommand): MergedExportEvent {
  if (isHfMergedFormat(c.format)) {
    const dtype = HF_MERGED_DTYPE[c.format];
    const note = mergedExportNote(c.modelPath, c.adapterDir, 'f32').text.replace('linears re-quantized to F32', `written in ${dtype.toLowerCase()}`);
    const r = writeMergedHf(c.modelPath, c.adapterDir, c.destination, note, dtype);
    return { type: 'done', result: { dir: r.dir, format: c.format, files: r.files, bytes: r.bytes, modelPath: c.modelPath, note, warning: null } };
  }
  const format = GGUF_OF[c.format];
  const file = `${c.stem}-merged-${format}.gguf`;
  mkdirSync(c.destination, { recursive: true });
  const r = writeMergedGguf(c.modelPath, c.adapterDir, join(c.destination, file), { format, name: c.name });
  const note = mergedExportNote(c.modelPath, c.adapterDir, format).text;
  return { type: 'done', result: { dir: c.destination, format: c.format, files: [file], bytes: r.bytes, modelPath: c.modelPath, note, warning: r.tokenizerNote } };
}

port.on('message', (cmd: MergedExportCommand) => {
  if (cmd.type !== 'merged.export') {
    post({ type: 'error', message: `merged-export worker: unknown command ${JSON.stringify((cmd as { type?: unknown }).type)}` });
    return;
  }
  try {
    post(run(cmd));
  } catch (e) {
    post({ type: 'error', ...errorDetails(e) });
  }
});

process.on('uncaughtException', (e) => post({ type: 'error', ...errorDetails(e) }));
process.on('unhandledRejection', (e) => post({ type: 'error', ...errorDetails(e) }));
