/**
 * One studio per data folder, and a data folder the studio can write: a second `lora-studio serve` on a folder a
 * live studio holds refuses, naming that studio's pid and address; a lock left by a dead process is taken over; a
 * read-only data folder (a real read-only bind mount) stops the studio at start with the folder, the reason and
 * the way out.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { lockFileOf } from '../../host/services/home-lock.ts';
import { openHome } from '../../host/services/home.ts';
import { createStudioServices } from '../../host/services/studio-services.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lora-home-lock-'));
const children: ChildProcess[] = [];
const mounts: string[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const m of mounts) execFileSync('umount', ['-l', m]);
  rmSync(tmp, { recursive: true, force: true });
});

const bin = join(import.meta.dirname, '..', '..', 'bin', 'lora-studio.mjs');

interface Serve {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  /** Resolves with the printed URL once it listens, or null if it exits first. */
  listening: Promise<string | null>;
}

function serve(home: string): Serve {
  const proc = spawn(process.execPath, [bin, 'serve', '--port', '0'], { env: { ...process.env, LORA_STUDIO_HOME: home, LORA_STUDIO_FROM_SOURCE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let out = '';
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const listening = new Promise<string | null>((resolve) => {
    const onData = (c: Buffer): void => {
      out += c.toString();
      const m = /running at (http:\/\/\S+)/.exec(out);
      if (m && out.includes('press Ctrl+C')) resolve(m[1]);
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    void exited.then(() => resolve(null));
  });
  return { proc, output: () => out, exited, listening };
}

test('a second serve on the same data folder refuses, naming the first one’s pid and address', async () => {
  const home = join(tmp, 'shared');
  const first = serve(home);
  const url = await first.listening;
  assert.ok(url, `the first studio started: ${first.output()}`);
  const origin = new URL(url).origin;
  const lock = JSON.parse(readFileSync(lockFileOf(home), 'utf8')) as { pid: number; url: string };
  assert.equal(lock.pid, first.proc.pid);
  assert.equal(lock.url, origin);

  const second = serve(home);
  assert.equal(await second.listening, null, 'the second studio must not start');
  assert.equal(await second.exited, 1);
  const message = second.output();
  assert.ok(message.includes(`another LoRA Studio (web host, pid ${first.proc.pid} at ${origin}`), message);
  assert.ok(message.includes(`is using the data folder ${home}`), message);
  assert.match(message, /LORA_STUDIO_HOME/);
  assert.ok(!message.includes('token='), 'the token is not printed to whoever tries');

  // The first one stops: its lock goes with it, and the folder can be used again.
  first.proc.kill('SIGTERM');
  assert.equal(await first.exited, 0);
  assert.equal(existsSync(lockFileOf(home)), false);
  const third = serve(home);
  assert.ok(await third.listening, third.output());
  third.proc.kill('SIGTERM');
  await third.exited;
});

test('a lock left by a process that is gone (kill -9) is taken over', async () => {
  const home = join(tmp, 'stale');
  openHome(home);
  const dead = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((r) => dead.on('exit', r));
  writeFileSync(lockFileOf(home), JSON.stringify({ pid: dead.pid, host: hostname(), kind: 'web', startedAt: '2026-12-01T00:00:00.000Z', url: 'http://127.0.0.1:7420' }));
  const s = serve(home);
  assert.ok(await s.listening, s.output());
  assert.equal((JSON.parse(readFileSync(lockFileOf(home), 'utf8')) as { pid: number }).pid, s.proc.pid);
  s.proc.kill('SIGTERM');
  await s.exited;
});

test('a read-only data folder stops the studio at start, saying which folder, why and what to do', async () => {
  const home = openHome(join(tmp, 'readonly')).root;
  // A real read-only file system over the folder: a read-only bind mount (root ignores permission bits).
  execFileSync('mount', ['--bind', home, home]);
  mounts.push(home);
  execFileSync('mount', ['-o', 'remount,bind,ro', home]);
  assert.throws(() => writeFileSync(join(home, 'x'), 'x'), /EROFS/, 'the mount is read-only');

  assert.throws(
    () => createStudioServices({ home, host: 'web' }),
    (e: Error) => e.message.startsWith(`the studio data folder ${home} is not writable (it is on a read-only file system, EROFS)`) && /LORA_STUDIO_HOME set to a writable folder/.test(e.message),
  );
  const s = serve(home);
  assert.equal(await s.listening, null);
  assert.equal(await s.exited, 1);
  assert.ok(s.output().includes(`lora-studio: the studio data folder ${home} is not writable (it is on a read-only file system, EROFS)`), s.output());
});
