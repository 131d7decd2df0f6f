/**
 * One download of a Hugging Face cache blob at a time, across processes: the studio and `lora-studio models pull`
 * beside it, or two studios whose homes share one HF cache, would otherwise append to the same blobs/{etag}.incomplete
 * and interleave its bytes. The lock is a file created exclusively (O_EXCL) under the cache's .locks/ folder — where
 * huggingface_hub keeps its own, with a name of ours, since its filelock files stay behind after use and mean nothing
 * to an O_EXCL reader — holding the owner's pid and host. A waiter polls until the file is gone; a lock whose owner
 * process is gone (killed mid-download) is taken over, as is one from another host older than a day.
 */
import { openSync, readFileSync, unlinkSync, writeSync, closeSync, mkdirSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

export interface BlobLockOwner {
  pid: number;
  host: string;
  since: string;
}

const POLL_MS = 200;
const FOREIGN_STALE_MS = 24 * 3600 * 1000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, owned by another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function owner(path: string): BlobLockOwner | null {
  try {
    const o = JSON.parse(readFileSync(path, 'utf8')) as Partial<BlobLockOwner>;
    return typeof o.pid === 'number' && typeof o.host === 'string' && typeof o.since === 'string' ? { pid: o.pid, host: o.host, since: o.since } : null;
  } catch {
    return null; // being written this instant, or not ours: judged by its age below
  }
}

/** Whether a lock can be taken over: its owner is gone (this host), or it is a day old (another host, or unreadable). */
function stale(path: string, o: BlobLockOwner | null): boolean {
  if (o && o.host === hostname()) return !alive(o.pid);
  try {
    return Date.now() - statSync(path).mtimeMs > (o ? FOREIGN_STALE_MS : 10_000);
  } catch {
    return false; // gone meanwhile: the next try takes it
  }
}

/**
 * Runs `fn` holding the lock at `path`; while another live process holds it, waits (calling `onWait` once with that
 * owner), and throws what `aborted()` returns when the signal fires meanwhile.
 */
export async function withBlobLock<T>(path: string, fn: () => Promise<T>, opts: { signal?: AbortSignal; aborted?: () => Error; onWait?: (o: BlobLockOwner | null) => void } = {}): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  let told = false;
  for (;;) {
    if (opts.signal?.aborted) throw opts.aborted ? opts.aborted() : new Error('aborted');
    let fd: number | null = null;
    try {
      fd = openSync(path, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (fd !== null) {
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() } satisfies BlobLockOwner));
      } finally {
        closeSync(fd);
      }
      try {
        return await fn();
      } finally {
        try {
          unlinkSync(path);
        } catch {
          // already gone (a cleanup of the cache): nothing to release
        }
      }
    }
    const o = owner(path);
    if (stale(path, o)) {
      // Read again just before removing it: a second waiter that took the stale lock over meanwhile has written its
      // own owner, which must not be removed (the window left is the few microseconds between these two calls).
      const again = owner(path);
      if (again?.pid === o?.pid && again?.since === o?.since) {
        try {
          unlinkSync(path);
        } catch {
          // another waiter took it over first
        }
      }
      continue;
    }
    if (!told) {
      told = true;
      opts.onWait?.(o);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
