/**
 * The services' handle on a worker_thread that takes commands and posts events (the quantization lab's and the
 * playground's workers): every listener gets every event even if another throws, a worker 'error' becomes an event
 * of the caller's making, and `exited` resolves however the worker ends.
 */
import { startWorkerModule } from '../../engine/host-api.ts';

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
