/**
 * One studio process per data folder. The long-lived studio processes (the web host `serve`, the desktop app) take
 * `<home>/studio.lock`, a small JSON file with their pid, kind and address; a second one on the same folder refuses
 * to start, naming the first (its pid and address), instead of both queueing and training the same runs. A lock
 * whose process is gone (kill -9, a crash) is taken over. The CLI's run commands take no lock: they reach a running
 * studio through the database (presence.ts).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pidAlive } from './db.ts';

export interface HomeLockInfo {
  pid: number;
  host: string;
  kind: string;
  startedAt: string;
  /** The address it serves at, once known (web host). */
  url: string | null;
}

export interface HomeLock {
  readonly file: string;
  /** Records the address the studio serves at. */
  setUrl(url: string): void;
  release(): void;
}

export class HomeLockedError extends Error {
  readonly holder: HomeLockInfo;
  constructor(message: string, holder: HomeLockInfo) {
    super(message);
    this.name = 'HomeLockedError';
    this.holder = holder;
  }
}

export function lockFileOf(homeRoot: string): string {
  return join(homeRoot, 'studio.lock');
}

function readLock(file: string): HomeLockInfo | null {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as Partial<HomeLockInfo>;
    if (typeof v.pid !== 'number' || !Number.isInteger(v.pid) || v.pid <= 0) return null;
    return { pid: v.pid, host: String(v.host ?? ''), kind: String(v.kind ?? 'studio'), startedAt: String(v.startedAt ?? ''), url: typeof v.url === 'string' ? v.url : null };
  } catch {
    return null; // unreadable or half-written: nobody holds it
  }
}

/** Takes the data folder's lock for this process, or throws HomeLockedError naming the studio that has it. */
export function acquireHomeLock(homeRoot: string, kind: 'web' | 'electron'): HomeLock {
  const file = lockFileOf(homeRoot);
  const info: HomeLockInfo = { pid: process.pid, host: hostname(), kind, startedAt: new Date().toISOString(), url: null };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      // 'wx': created only if absent, atomically, so two studios starting at once cannot both get it.
      writeFileSync(file, `${JSON.stringify(info)}\n`, { flag: 'wx' });
      let held = true;
      return {
        file,
        setUrl(url) {
          info.url = url;
          if (held) writeFileSync(file, `${JSON.stringify(info)}\n`);
        },
        release() {
          if (!held) return;
          held = false;
          if (readLock(file)?.pid === process.pid) rmSync(file, { force: true });
        },
      };
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw new Error(`cannot create the lock file ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const holder = readLock(file);
    const live = holder !== null && holder.pid !== process.pid && (holder.host !== hostname() || pidAlive(holder.pid));
    if (holder && live) {
      const what = holder.kind === 'web' ? 'web host' : holder.kind === 'electron' ? 'desktop app' : holder.kind;
      const where = holder.url ? ` at ${holder.url.replace(/\?token=.*$/, '')}` : '';
      const machine = holder.host !== hostname() ? ` on ${holder.host}` : '';
      throw new HomeLockedError(
        `another LoRA Studio (${what}, pid ${holder.pid}${machine}${where}, started ${holder.startedAt}) is using the data folder ${homeRoot}; ` +
          `use that one, stop it first, or start this one on another folder with LORA_STUDIO_HOME=<folder> (lock: ${file})`,
        holder,
      );
    }
    // Its process is gone (or the file is unreadable): take it over.
    rmSync(file, { force: true });
  }
  throw new Error(`cannot take the lock file ${file}: it keeps coming back; is another studio starting right now?`);
}
