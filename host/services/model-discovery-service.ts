/**
 * 'models.discover' off the services' event loop: each request runs discovery in a worker_thread
 * (engine/io/model-discovery-worker.ts), so runs, the playground and every other request keep answering while disks
 * are walked. Requests that come while one is running share it. The last answer is kept with the fingerprint of the
 * store folders' mtimes; when nothing moved the worker says so without reading a header. A walk that takes longer
 * than the time bound (a hung network disk) is stopped and named.
 */
import { homedir } from 'node:os';
import type { DiscoveryCommand, DiscoveryReply } from '../../common/models-discovery.ts';
import type { LocalModelsInfo } from '../../common/protocol.ts';
import { startWorkerModule } from '../../engine/host-api.ts';
import { modelStoreDirs } from '../../engine/host-api.ts';
import { StudioError } from './errors.ts';
import { workerEntry } from './worker-handle.ts';

export interface ModelDiscoveryOptions {
  /** Longest a discovery may take (ms; default 120 s). */
  timeoutMs?: number;
  /** Called when a worker starts (tests count how often the disks were really walked). */
  onWalk?: () => void;
}

export interface ModelDiscovery {
  discover(): Promise<LocalModelsInfo>;
  /** Stops a walk under way (its request fails); the services call it as they close. */
  close(): Promise<void>;
}

const ENV_KEYS = ['HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HOME', 'XDG_CACHE_HOME', 'OLLAMA_MODELS', 'HOME'] as const;

export function createModelDiscovery(options: ModelDiscoveryOptions = {}): ModelDiscovery {
  const timeoutMs = options.timeoutMs ?? 120_000;
  let cache: { key: string; fingerprint: string; info: LocalModelsInfo } | null = null;
  let inFlight: { key: string; promise: Promise<LocalModelsInfo> } | null = null;
  let nextId = 1;
  const workers = new Set<{ terminate(): Promise<number> }>();

  function walk(key: string, cmd: DiscoveryCommand): Promise<LocalModelsInfo> {
    options.onWalk?.();
    const worker = startWorkerModule(workerEntry('../../engine/io/model-discovery-worker.ts', import.meta.url));
    workers.add(worker);
    worker.on('exit', () => workers.delete(worker));
    return new Promise<LocalModelsInfo>((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        void worker.terminate();
        fn();
      };
      const timer = setTimeout(() => {
        const dirs = modelStoreDirs({ env: cmd.env, home: cmd.home }).map((d) => d.dir);
        finish(() => reject(new StudioError({ message: `looking for models took over ${Math.round(timeoutMs / 1000)} s and was stopped; one of ${dirs.join(', ')} may be on a slow or unreachable disk` })));
      }, timeoutMs);
      worker.on('message', (reply: DiscoveryReply) => {
        if (reply.id !== cmd.id) return;
        if (reply.type === 'failed') finish(() => reject(new StudioError({ message: `looking for models failed: ${reply.message}` })));
        else if (reply.type === 'unchanged' && cache) {
          const info = cache.info;
          finish(() => resolve(info));
        } else if (reply.type === 'found') {
          cache = { key, fingerprint: reply.fingerprint, info: reply.info };
          finish(() => resolve(reply.info));
        } else finish(() => reject(new StudioError({ message: 'looking for models failed: the worker answered "unchanged" with nothing kept' })));
      });
      worker.on('error', (e: Error) => finish(() => reject(new StudioError({ message: `looking for models failed: ${e.message}` }))));
      worker.on('exit', (code) => finish(() => reject(new StudioError({ message: `looking for models failed: the worker exited (code ${code})` }))));
      worker.postMessage(cmd);
    });
  }

  return {
    discover() {
      const env: Record<string, string | undefined> = {};
      for (const k of ENV_KEYS) env[k] = process.env[k];
      const home = homedir();
      const key = JSON.stringify([env, home]);
      if (inFlight && inFlight.key === key) return inFlight.promise;
      const previous = cache && cache.key === key ? cache.fingerprint : null;
      const promise = walk(key, { id: nextId++, env, home, previousFingerprint: previous }).finally(() => {
        if (inFlight?.promise === promise) inFlight = null;
      });
      inFlight = { key, promise };
      return promise;
    },
    async close() {
      await Promise.all([...workers].map((w) => w.terminate()));
    },
  };
}
