/**
 * The process guard (host/process-guard.ts) in a real web host process: a stray rejection and a stray throw
 * left behind by a request are logged with that request, and the host keeps answering. The same process without the
 * guard dies of them, which is what the guard is for (and shows this test can fail).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const tmp = mkdtempSync(join(tmpdir(), 'lora-guard-'));
const children: ChildProcessWithoutNullStreams[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

interface Child {
  proc: ChildProcessWithoutNullStreams;
  port: number;
  token: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

async function startHost(name: string, unguarded = false): Promise<Child> {
  const script = join(import.meta.dirname, 'guarded-host-child.ts');
  const proc = spawn(process.execPath, ['--import', 'tsx', script, join(tmp, name), ...(unguarded ? ['--unguarded'] : [])], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(proc);
  let err = '';
  proc.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const first = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    void exited.then((code) => reject(new Error(`the host exited (${code}) before listening: ${err}`)));
  });
  const { port, token } = JSON.parse(first) as { port: number; token: string };
  return { proc, port, token, stderr: () => err, exited };
}

async function api(c: Child, method: string, params: unknown): Promise<{ status: number; body: { ok: boolean; result?: unknown } }> {
  const r = await fetch(`http://127.0.0.1:${c.port}/api/${method}`, { method: 'POST', headers: { 'x-studio-token': c.token, 'content-type': 'application/json' }, body: JSON.stringify(params) });
  return { status: r.status, body: (await r.json()) as { ok: boolean; result?: unknown } };
}

async function waitFor(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('a stray rejection and a stray throw are logged with their request, and the host keeps serving', async () => {
  const c = await startHost('guarded');
  const set = await api(c, 'settings.set', { checkpointEverySteps: 7 });
  assert.equal(set.status, 200);
  await waitFor('both strays in the log', () => c.stderr().includes('stray throw from a timer') && c.stderr().includes('stray rejection'));
  const log = c.stderr();
  assert.match(log, /unhandled promise rejection while handling POST \/api\/settings\.set \(the studio keeps running\): Error: stray rejection from a settings listener/);
  assert.match(log, /uncaught exception while handling POST \/api\/settings\.set \(the studio keeps running\): Error: stray throw from a timer/);
  // Still up, and still itself: the setting it took is there, and other requests work.
  const info = await api(c, 'app.info', {});
  assert.equal(info.status, 200);
  const settings = await api(c, 'settings.get', {});
  assert.equal((settings.body.result as { checkpointEverySteps: number }).checkpointEverySteps, 7);
  // A second round is survived the same way.
  assert.equal((await api(c, 'settings.set', { checkpointEverySteps: 8 })).status, 200);
  await waitFor('the second round logged', () => (c.stderr().match(/stray throw from a timer/g) ?? []).length >= 2);
  assert.equal((await api(c, 'app.info', {})).status, 200);
  assert.equal(c.proc.exitCode, null);
  c.proc.kill('SIGTERM');
  assert.equal(await c.exited, 0);
});

test('without the guard the same stray takes the host process down', async () => {
  const c = await startHost('unguarded', true);
  await api(c, 'settings.set', { checkpointEverySteps: 7 }).catch(() => null);
  const code = await Promise.race([c.exited, new Promise<'alive'>((r) => setTimeout(() => r('alive'), 10_000))]);
  assert.notEqual(code, 'alive', 'an unguarded host survived an unhandled rejection: this test no longer proves the guard matters');
  assert.notEqual(code, 0);
  assert.match(c.stderr(), /stray rejection from a settings listener/);
});
