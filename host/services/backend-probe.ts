/**
 * 'backends.probe': which compute backends this machine has and what `auto` resolves to. The adapter is probed once
 * in a short-lived engine worker (engine/backend-probe-worker.ts) and the answer cached; `refresh` probes again
 * (after installing a driver, say). The policy is engine/train/backend-select.ts, the one the engine applies at run
 * start, so the form shows what a run will use.
 */
import type { StudioResult } from '../../common/protocol.ts';
import { startWorkerModule } from '../../engine/host-api.ts';
import { describeBackends, type AdapterProbe } from '../../engine/host-api.ts';

const PROBE_TIMEOUT_MS = 30_000;

function isProbe(x: unknown): x is AdapterProbe {
  if (typeof x !== 'object' || x === null) return false;
  const p = x as Record<string, unknown>;
  return typeof p.available === 'boolean' && (typeof p.name === 'string' || p.name === null) && (typeof p.error === 'string' || p.error === null) && typeof p.software === 'boolean';
}

/** Probes in a worker; never rejects (a failed probe is "no adapter" with the reason). */
export function probeInWorker(): Promise<AdapterProbe> {
  return new Promise((resolve) => {
    const entry = new URL(import.meta.url.endsWith('.ts') ? '../../engine/backend-probe-worker.ts' : '../../engine/backend-probe-worker.js', import.meta.url);
    let settled = false;
    const done = (p: AdapterProbe): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(p);
    };
    const fail = (why: string): void => done({ available: false, name: null, error: why, software: false });
    const worker = startWorkerModule(entry);
    const timer = setTimeout(() => {
      fail(`the WebGPU probe did not answer within ${PROBE_TIMEOUT_MS / 1000} s`);
      void worker.terminate();
    }, PROBE_TIMEOUT_MS);
    worker.on('message', (m: unknown) => (isProbe(m) ? done(m) : fail('the WebGPU probe sent an unreadable answer')));
    worker.on('error', (e: Error) => fail(`the WebGPU probe failed: ${e.message}`));
    worker.on('exit', (code) => fail(`the WebGPU probe exited (code ${code}) without an answer`));
  });
}

export class BackendProbe {
  private cached: Promise<AdapterProbe> | null = null;

  constructor(private readonly probe: () => Promise<AdapterProbe> = probeInWorker) {}

  async get(refresh = false): Promise<StudioResult<'backends.probe'>> {
    if (refresh || !this.cached) this.cached = this.probe();
    return describeBackends(await this.cached);
  }
}
