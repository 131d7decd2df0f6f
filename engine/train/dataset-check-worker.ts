/**
 * The preflight's dataset check in a worker_thread (entry): loading the tokenizer and preparing a whole dataset
 * (render, tokenize, mask, truncate, split) takes seconds to minutes on a large file, so the services run it here
 * and keep answering other requests meanwhile. Each command gets one reply with its id; the worker stays for the
 * next run start until the services end it.
 */
import { parentPort } from 'node:worker_threads';
import type { DatasetCheckCommand, DatasetCheckProblem, DatasetCheckReply } from '../../common/dataset-check.ts';
import { loadTokenizer } from '../io/model-source.ts';
import type { Tokenizer } from '../model/types.ts';
import { checkRunDataset } from './run-data-cache.ts';

const port = parentPort;
if (!port) throw new Error('engine/train/dataset-check-worker.ts must run in a worker_thread');

/** The properties the services turn into a StudioError; an Error's own ones do not survive postMessage. */
function problemOf(e: unknown): DatasetCheckProblem {
  if (!(e instanceof Error)) return { message: String(e) };
  const x = e as Error & { file?: unknown; line?: unknown; field?: unknown };
  return {
    message: e.message,
    ...(typeof x.file === 'string' ? { file: x.file } : {}),
    ...(typeof x.line === 'number' ? { line: x.line } : {}),
    ...(typeof x.field === 'string' ? { field: x.field } : {}),
  };
}

async function check(cmd: DatasetCheckCommand): Promise<DatasetCheckReply> {
  let tokenizer: Tokenizer | null;
  try {
    tokenizer = await loadTokenizer(cmd.config.modelPath);
  } catch (e) {
    return { type: 'refused', id: cmd.id, stage: 'tokenizer', problem: problemOf(e) };
  }
  try {
    return { type: 'ok', id: cmd.id, ...(await checkRunDataset(cmd.config, tokenizer, cmd.cacheDir)) };
  } catch (e) {
    return { type: 'refused', id: cmd.id, stage: 'data', problem: problemOf(e) };
  }
}

port.on('message', (cmd: DatasetCheckCommand) => {
  void check(cmd).then((reply) => port.postMessage(reply));
});
