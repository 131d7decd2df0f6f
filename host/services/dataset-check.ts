/**
 * The preflight's dataset check off the services' event loop: run starts prepare their dataset in a worker_thread
 * (engine/train/dataset-check-worker.ts), so requests, pushed metrics and running runs keep going while a large
 * file is tokenized; the worker keeps the result in the dataset cache for the engine.
 *
 * One worker serves every check and stays a while after the last one: starting a worker (from sources, through tsx)
 * costs a second or more, which would otherwise be added to every run start. It never holds the process open, and
 * ends after IDLE_MS without a check (freeing what the last preparation left in its heap).
 */
import type { Worker } from 'node:worker_threads';
import type { DatasetCheckCommand, DatasetCheckReply } from '../../common/dataset-check.ts';
import { startWorkerModule } from '../../engine/host-api.ts';
import { StudioError } from './errors.ts';
import { workerEntry } from './worker-handle.ts';

const IDLE_MS = 60_000;

interface Pending {
  resolve: (reply: DatasetCheckReply) => void;
  reject: (e: StudioError) => void;
  datasetPath: string;
}

let worker: Worker | null = null;
let idleTimer: NodeJS.Timeout | null = null;
let nextId = 1;
const pending = new Map<number, Pending>();

function failAll(why: string): void {
  for (const p of pending.values()) p.reject(new StudioError({ message: `checking the dataset failed: ${why}`, field: 'datasetPath', file: p.datasetPath }));
  pending.clear();
}

function checkWorker(): Worker {
  if (worker) return worker;
  const w = startWorkerModule(workerEntry('../../engine/train/dataset-check-worker.ts', import.meta.url));
  w.on('message', (reply: DatasetCheckReply) => {
    const p = pending.get(reply.id);
    pending.delete(reply.id);
    p?.resolve(reply);
    if (pending.size === 0) idle(w);
  });
  w.on('error', (e: Error) => {
    if (worker === w) worker = null;
    failAll(e.message);
  });
  w.on('exit', (code) => {
    if (worker === w) worker = null;
    failAll(`the worker exited (code ${code})`);
  });
  worker = w;
  return w;
}

/** No check in flight: let the process exit without waiting for the worker, and end it after a while. */
function idle(w: Worker): void {
  w.unref();
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    idleTimer = null;
    if (worker === w && pending.size === 0) {
      worker = null;
      void w.terminate();
    }
  }, IDLE_MS);
  idleTimer.unref();
}

export function runDatasetCheck(cmd: Omit<DatasetCheckCommand, 'id'>): Promise<DatasetCheckReply> {
  const w = checkWorker();
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = null;
  w.ref();
  const id = nextId++;
  return new Promise<DatasetCheckReply>((resolve, reject) => {
    pending.set(id, { resolve, reject, datasetPath: cmd.config.datasetPath });
    w.postMessage({ ...cmd, id } satisfies DatasetCheckCommand);
  });
}
