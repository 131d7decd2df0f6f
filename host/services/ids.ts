import { randomBytes } from 'node:crypto';

/** Ids name folders on disk, so they are restricted to characters that can never walk out of a folder. */
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

export function isSafeId(id: unknown): id is string {
  return typeof id === 'string' && ID_PATTERN.test(id);
}

/** `run-20261127-153012-3fa9c1`: sorts by creation time and reads well as a folder name. */
export function newId(prefix: string, now: Date = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return `${prefix}-${stamp}-${randomBytes(3).toString('hex')}`;
}
