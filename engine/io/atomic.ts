/**
 * Atomic writes: a reader sees the old file or the new one, never half of one, even after a crash or a power cut.
 * Write to a temporary sibling, fsync it, rename over the target, then fsync the folder so the rename itself lasts.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

let counter = 0;

/** A unique temporary path next to `path` (same folder, so rename stays on one file system). */
export function tempSiblingPath(path: string): string {
  counter++;
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Date.now()}-${counter}`);
}

/** fsync a folder so a rename inside it survives a crash; some platforms cannot open folders, which is fine. */
export function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Windows cannot fsync a directory handle; the rename is still atomic there.
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/**
 * Writes a file through `write(fd)` into a temporary sibling, fsyncs and renames it to `path`.
 * On any error the temporary file is removed and `path` is untouched.
 */
export function writeFileAtomicWith(path: string, write: (fd: number) => void): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempSiblingPath(path);
  const fd = openSync(tmp, 'w');
  let ok = false;
  try {
    write(fd);
    fsyncSync(fd);
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) rmSync(tmp, { force: true });
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dirname(path));
}

/** Writes all of `data` at the fd's current position. */
export function writeAll(fd: number, data: Uint8Array): void {
  // At most 1 GiB per call: Node refuses lengths of 2 GiB and more.
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, Math.min(data.length - off, 1 << 30));
}

/** Writes `data` (a string is written as UTF-8) to `path` atomically. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  writeFileAtomicWith(path, (fd) => writeAll(fd, bytes));
}

/**
 * Builds a folder atomically: `fill(tmpDir)` writes into a temporary sibling folder, which then replaces `dir`
 * (an existing `dir` is moved aside first and deleted after the swap). A failure in `fill` leaves `dir` as it was.
 */
export function writeDirAtomic(dir: string, fill: (tmpDir: string) => void): void {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const tmp = tempSiblingPath(dir);
  mkdirSync(tmp);
  try {
    fill(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  fsyncDir(tmp);
  let old: string | null = null;
  if (existsSync(dir)) {
    old = tempSiblingPath(dir);
    renameSync(dir, old);
  }
  try {
    renameSync(tmp, dir);
  } catch (e) {
    if (old) renameSync(old, dir);
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  fsyncDir(parent);
  if (old) rmSync(old, { recursive: true, force: true });
}
