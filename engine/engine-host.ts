/**
 * The services' handle on an engine worker: starts engine/worker.ts in a worker_thread, sends EngineCommands,
 * delivers EngineEvents. A worker that dies without saying why becomes an 'error' event; the parent never crashes.
 */
import { Worker } from 'node:worker_threads';
import type { ResourceLimits, WorkerOptions } from 'node:worker_threads';
import type { EngineCommand, EngineEvent } from '../common/protocol.ts';

export interface EngineHandle {
  send(cmd: EngineCommand): void;
  /** Subscribes to events; returns the unsubscribe function. */
  on(handler: (event: EngineEvent) => void): () => void;
  /** Stops the worker at once (no checkpoint); resolves when it is gone. */
  terminate(): Promise<void>;
  /** Resolves when the worker has exited (for any reason). */
  readonly exited: Promise<number>;
}

/**
 * From sources (this file is .ts) the worker must load TypeScript: a Worker's entry is resolved before any `--import`
 * hook in its execArgv runs on Node 20, so a small eval'd bootstrap registers tsx in the worker, then imports
 * worker.ts. From dist/ the compiled worker.js is the entry.
 */
function createWorker(opts: StartEngineOptions): Worker {
  const options: WorkerOptions = {};
  if (opts.resourceLimits) options.resourceLimits = opts.resourceLimits;
  if (opts.env) options.env = opts.env;
  return startWorkerModule(new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url), options);
}

/**
 * A worker_thread running the module at `entry`: a .ts entry (from sources) goes through the tsx bootstrap above, a
 * .js entry (from dist/) runs as it is. Other workers (the quantization lab's) start the same way.
 */
export function startWorkerModule(entry: URL, options: WorkerOptions = {}): Worker {
  if (entry.pathname.endsWith('.ts')) {
    const tsx = import.meta.resolve('tsx/esm/api');
    const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
    return new Worker(bootstrap, { ...options, eval: true });
  }
  return new Worker(entry, options);
}

export interface StartEngineOptions {
  /** Heap limits of the worker (V8 heap only; tensors live in ArrayBuffers outside it). */
  resourceLimits?: ResourceLimits;
  /** Environment of the worker (default: this process's), e.g. LORA_STUDIO_CPU_THREADS from the studio settings. */
  env?: NodeJS.ProcessEnv;
}

export function startEngine(opts: StartEngineOptions = {}): EngineHandle {
  const worker = createWorker(opts);
  const handlers = new Set<(event: EngineEvent) => void>();
  let runId = '';
  let finished = true;
  let terminating = false;
  const emit = (event: EngineEvent): void => {
    if (event.type === 'done' || event.type === 'stopped' || event.type === 'error') finished = true;
    for (const h of [...handlers]) {
      try {
        h(event);
      } catch (e) {
        // A failing listener must not take the others (or the engine) down, nor vanish unseen.
        console.error(`lora-studio: a listener of run ${runId || '(none)'}'s ${event.type} event failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      }
    }
  };
  worker.on('message', (m: EngineEvent) => emit(m));
  worker.on('error', (e: Error) => {
    emit({ type: 'error', runId, message: `engine worker failed: ${e.message}` });
  });
  const exited = new Promise<number>((resolve) => {
    worker.on('exit', (code) => {
      if (!terminating && !finished) emit({ type: 'error', runId, message: `engine worker exited unexpectedly (exit code ${code})` });
      resolve(code);
    });
  });
  return {
    send(cmd) {
      if (cmd.type === 'train') {
        runId = cmd.runId;
        finished = false;
      }
      worker.postMessage(cmd);
    },
    on(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    async terminate() {
      terminating = true;
      await worker.terminate();
      await exited;
    },
    exited,
  };
}
