/** Runs one benchmark case in its own process (so its peak RSS is its own) and reads the JSON row it prints last. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const benchRoot = fileURLToPath(new URL('..', import.meta.url));

export interface Row {
  bench: string;
  [k: string]: string | number | boolean | null;
}

/** `cmd args…` in the repository root; a failed case becomes a row with `error` (the table shows it, the exit code is 1). */
export function runJsonChild(what: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30 * 60_000): Row {
  const r = spawnSync(cmd, args, {
    cwd: benchRoot,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
    timeout: timeoutMs,
  });
  const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !last.startsWith('{')) {
    return { bench: what, error: `${r.error ? r.error.message : `exit ${r.status ?? r.signal}`}: ${last.slice(0, 200)}` };
  }
  return JSON.parse(last) as Row;
}

/** A benchmark script of this folder under node + tsx. */
export function runNodeBench(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Row {
  return runJsonChild(script, process.execPath, ['--import', 'tsx', '--expose-gc', `${benchRoot}bench/${script}`, ...args], env);
}

/** The median of a non-empty list (the benchmarks' per-pair figures). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A row's finite number at `key`, else null (a failed case has none). */
export function rowNumber(r: Row, key: string): number | null {
  const v = r[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
