import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writeDirAtomic, writeFileAtomic, writeFileAtomicWith } from '../../engine/io/atomic.ts';

const root = mkdtempSync(join(tmpdir(), 'atomic-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('writeFileAtomic writes, replaces, creates parent folders and leaves nothing else behind', () => {
  const p = join(root, 'a', 'b', 'f.txt');
  writeFileAtomic(p, 'one');
  writeFileAtomic(p, new TextEncoder().encode('two'));
  assert.equal(readFileSync(p, 'utf8'), 'two');
  assert.deepEqual(readdirSync(join(root, 'a', 'b')), ['f.txt']);
});

test('a failing write leaves the old file untouched and no temporary file', () => {
  const p = join(root, 'keep.txt');
  writeFileAtomic(p, 'old');
  assert.throws(() => writeFileAtomicWith(p, () => {
    throw new Error('disk full');
  }), /disk full/);
  assert.equal(readFileSync(p, 'utf8'), 'old');
  assert.deepEqual(readdirSync(root).filter((f) => f.includes('keep')), ['keep.txt']);
});

test('writeDirAtomic swaps whole folders, and a failing fill keeps the old one', () => {
  const d = join(root, 'dir');
  mkdirSync(d);
  writeFileSync(join(d, 'stale.txt'), 'x');
  writeDirAtomic(d, (tmp) => writeFileSync(join(tmp, 'new.txt'), 'y'));
  assert.deepEqual(readdirSync(d), ['new.txt']);
  assert.throws(() => writeDirAtomic(d, (tmp) => {
    writeFileSync(join(tmp, 'half.txt'), 'z');
    throw new Error('boom');
  }), /boom/);
  assert.deepEqual(readdirSync(d), ['new.txt']);
  assert.ok(!readdirSync(root).some((f) => f.startsWith('.dir')), 'no temporary folders left');
  writeDirAtomic(join(root, 'fresh'), (tmp) => writeFileSync(join(tmp, 'a'), ''));
  assert.ok(existsSync(join(root, 'fresh', 'a')));
});
