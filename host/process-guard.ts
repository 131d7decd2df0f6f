/**
 * The process-level guard of a long-lived studio process (the web host `serve`, the desktop main process): a stray
 * rejection or exception somewhere in the services (a library promise nobody awaited, a throw in a timer) is logged
 * with the request that led to it and the process keeps serving, instead of Node's default of exiting and taking
 * every run, window and browser tab with it. Workers have their own guards (engine/worker.ts).
 *
 * The request is known through AsyncLocalStorage: the transports run each request inside `withRequest`, and Node
 * reports a rejection or a timer's throw in the async context it was created in.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestLabel {
  /** What was asked, e.g. `POST /api/datasets.inspect` or `ipc datasets.inspect`. */
  request: string;
}

const current = new AsyncLocalStorage<RequestLabel>();

/** Runs fn as part of a request: a stray error it leaves behind is reported with this label. */
export function withRequest<R>(request: string, fn: () => R): R {
  return current.run({ request }, fn);
}

/** The request the running code belongs to, if any. */
export function currentRequest(): string | null {
  return current.getStore()?.request ?? null;
}

export type GuardLog = (line: string) => void;

function describe(e: unknown): string {
  if (e instanceof Error) return e.stack ?? `${e.name}: ${e.message}`;
  return String(e);
}

let installed: { log: GuardLog; count: number; uninstall: () => void } | null = null;

/**
 * Installs the guard once per process (later calls share it). `log` gets one line per stray error, naming the kind
 * (unhandled rejection / uncaught exception) and the request; the default writes to stderr. Returns a function that
 * removes it again (tests).
 */
export function installProcessGuard(log: GuardLog = (line) => process.stderr.write(`${line}\n`)): () => void {
  if (installed) {
    installed.count++;
    return installed.uninstall;
  }
  const report = (kind: string) => (e: unknown) => {
    const request = currentRequest();
    const where = request ? ` while handling ${request}` : '';
    try {
      (installed?.log ?? log)(`lora-studio: ${kind}${where} (the studio keeps running): ${describe(e)}`);
    } catch {
      // Logging must never be what takes the process down.
    }
  };
  const onRejection = report('unhandled promise rejection');
  const onException = report('uncaught exception');
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  const uninstall = (): void => {
    if (!installed) return;
    if (--installed.count > 0) return;
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
    installed = null;
  };
  installed = { log, count: 1, uninstall };
  return uninstall;
}
