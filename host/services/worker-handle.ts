/**
 * The services' handle on a worker_thread that takes commands and posts events (the quantization lab's and the
 * playground's workers): every listener gets every event even if another throws, a worker 'error' becomes an event
 * of the caller's making, and `exited` resolves however the worker ends.
 */
import type { StudioErrorInfo } from '../../common/protocol.ts';
import { startWorkerModule } from '../../engine/host-api.ts';
import { StudioError } from './errors.ts';

export interface WorkerHandle<Command, Event> {
  send(cmd: Command): void;
  /** Subscribes to events; returns the unsubscribe function. */
  on(handler: (event: Event) => void): () => void;
  terminate(): Promise<void>;
  /** Resolves with the exit code when the worker is gone, for any reason. */
  readonly exited: Promise<number>;
}

/** `entry` is relative to host/services in the sources and in dist/ alike; `.ts` there becomes `.js` here. */
export function workerEntry(sourceRelative: string, from: string): URL {
  return new URL(from.endsWith('.ts') ? sourceRelative : sourceRelative.replace(/\.ts$/, '.js'), from);
}

export function startWorkerHandle<Command, Event>(entry: URL, env: NodeJS.ProcessEnv | undefined, errorEvent: (e: Error) => Event): WorkerHandle<Command, Event> {
  const worker = startWorkerModule(entry, env ? { env } : {});
  const handlers = new Set<(e: Event) => void>();
  const emit = (e: Event): void => {
    for (const h of [...handlers]) {
      try {
        h(e);
      } catch {
        // One failing listener must not starve the others.
      }
    }
  };
  worker.on('message', (m: Event) => emit(m));
  worker.on('error', (e: Error) => emit(errorEvent(e)));
  const exited = new Promise<number>((resolve) => worker.on('exit', resolve));
  return {
    send: (cmd) => worker.postMessage(cmd),
    on(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    async terminate() {
      await worker.terminate();
      await exited;
    },
    exited,
  };
}

/** A worker's 'error' event: the engine's errorDetails (engine/engine-error.ts) of what it threw. */
interface WorkerFailure {
  type: 'error';
  message: string;
  file?: string;
  line?: number;
  field?: string;
}

/**
 * One command on a worker started for it (the bundle and the merged exports): resolves with what `done` makes of the
 * event that ends the job; an 'error' event rejects with a StudioError keeping its file, line and (unless `keepField`
 * is false: a dataset record's field is no input of the request) field, `describe` rewording its message; a worker
 * that exits first rejects with `exited`'s words. The worker is terminated either way.
 */
export async function runWorkerJob<Command, Event extends { type: string }, R>(
  worker: WorkerHandle<Command, Event>,
  command: Command,
  o: { done: (e: Event) => R | undefined; describe?: (message: string) => string; keepField?: boolean; exited: (code: number) => string },
): Promise<R> {
  try {
    return await new Promise<R>((resolvePromise, reject) => {
      worker.on((e) => {
        if (e.type === 'error') {
          const f = e as unknown as WorkerFailure;
          const info: StudioErrorInfo = { message: o.describe ? o.describe(f.message) : f.message };
          if (f.field !== undefined && o.keepField !== false) info.field = f.field;
          if (f.file !== undefined) info.file = f.file;
          if (f.line !== undefined) info.line = f.line;
          reject(new StudioError(info));
          return;
        }
        const r = o.done(e);
        if (r !== undefined) resolvePromise(r);
      });
      void worker.exited.then((code) => reject(new StudioError({ message: o.exited(code) })));
      worker.send(command);
    });
  } finally {
    await worker.terminate();
  }
}
