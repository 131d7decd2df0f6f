/**
 * `npm start` (scripts/start-electron.mjs) on machines without Electron's binary: it says what is missing, why and
 * how to fix it, exits 1 and prints no stack trace — including with Electron's real installer and no network.
 * With a binary present it starts it on the app folder and passes its exit code on.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const script = join(repoRoot, 'scripts', 'start-electron.mjs');
const tmp = mkdtempSync(join(tmpdir(), 'lora-start-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The environment of a user who set nothing Electron-related. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/electron|lora_studio/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

function start(env: Record<string, string>, unset: string[] = []) {
  const full = cleanEnv(env);
  for (const k of unset) delete full[k];
  const began = Date.now();
  const r = spawnSync(process.execPath, [script], { cwd: repoRoot, env: full, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - began };
}

/** An `electron` package folder without a binary; its install.js is the given script. */
function fakeElectron(name: string, installJs: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'electron', version: '41.7.1' }));
  writeFileSync(join(dir, 'install.js'), installJs);
  return dir;
}

function assertExplains(r: { status: number | null; stderr: string }, why: RegExp): void {
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /Electron's binary is missing/);
  assert.match(r.stderr, /what: Electron 41\.7\.1 for \S+ should be at \S+/);
  assert.match(r.stderr, why);
  assert.match(r.stderr, /node \S*install\.js/);
  assert.match(r.stderr, /npm run serve/);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
}

describe('npm start without an Electron binary', () => {
  test('a failed download (no network) is explained, not dumped as a stack trace', () => {
    const dir = fakeElectron('offline', `console.error('RequestError: getaddrinfo ENOTFOUND github.com\\n    at ClientRequest.<anonymous> (/x/got/index.js:1:1)\\n    at emit (node:events:1:1)'); process.exit(1);`);
    const r = start({ LORA_STUDIO_ELECTRON_DIR: dir });
    assertExplains(r, /why: +downloading it failed \(RequestError: getaddrinfo ENOTFOUND github\.com\): this machine seems to have no network access/);
  });

  test('LORA_STUDIO_NO_ELECTRON_DOWNLOAD keeps it from even trying', () => {
    const marker = join(tmp, 'installer-ran');
    const dir = fakeElectron('no-download', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran');`);
    const r = start({ LORA_STUDIO_ELECTRON_DIR: dir, LORA_STUDIO_NO_ELECTRON_DOWNLOAD: '1' });
    assertExplains(r, /LORA_STUDIO_NO_ELECTRON_DOWNLOAD is set/);
    assert.equal(existsSync(marker), false, 'the installer must not run');
  });

  test('ELECTRON_SKIP_BINARY_DOWNLOAD is named as the reason, with the fix', () => {
    const dir = fakeElectron('skip', 'process.exit(0);');
    const r = start({ LORA_STUDIO_ELECTRON_DIR: dir, ELECTRON_SKIP_BINARY_DOWNLOAD: '1' });
    assertExplains(r, /ELECTRON_SKIP_BINARY_DOWNLOAD is set/);
    assert.match(r.stderr, /unset ELECTRON_SKIP_BINARY_DOWNLOAD; node \S*install\.js/);
  });

  test("Electron's real installer with an unreachable download server fails fast and is explained", () => {
    const dir = join(tmp, 'real-electron');
    mkdirSync(dir);
    for (const f of ['install.js', 'package.json', 'checksums.json']) copyFileSync(join(repoRoot, 'node_modules', 'electron', f), join(dir, f));
    symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'), 'dir');
    const version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    // Port 9 (discard) on loopback refuses at once, whether or not this machine has a network.
    const r = start({ LORA_STUDIO_ELECTRON_DIR: dir, ELECTRON_MIRROR: 'http://127.0.0.1:9/', electron_config_cache: join(tmp, 'empty-cache') });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`Electron ${version.replaceAll('.', '\\.')} for`));
    assert.match(r.stderr, /why: +downloading it failed \(.*ECONNREFUSED.*\): this machine seems to have no network access/);
    assert.match(r.stderr, /npm run serve/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    assert.equal(existsSync(join(dir, 'dist')), false);
    assert.ok(r.ms < 30_000, `took ${r.ms} ms`);
  });
});

describe('npm start with an Electron binary', () => {
  const dir = join(tmp, 'installed');
  const marker = join(tmp, 'electron-args');
  mkdirSync(join(dir, 'dist'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'electron', version: '41.7.1' }));
  writeFileSync(join(dir, 'path.txt'), 'electron');
  // A stand-in binary: records its arguments and exits with a code start-electron must pass on.
  writeFileSync(join(dir, 'dist', 'electron'), `#!/bin/sh\nprintf '%s\\n' "$@" > "${marker}"\nexit 7\n`);
  chmodSync(join(dir, 'dist', 'electron'), 0o755);

  test('starts it on the app folder and passes its exit code on', () => {
    const r = start({ LORA_STUDIO_ELECTRON_DIR: dir, LORA_STUDIO_SKIP_BUILD: '1', DISPLAY: ':99' });
    assert.equal(r.status, 7, r.stderr);
    const args = readFileSync(marker, 'utf8').trim().split('\n');
    assert.equal(args[0], repoRoot);
  });

  test('with no display on Linux it says so and points to the browser', () => {
    rmSync(marker, { force: true });
    const r = start({ LORA_STUDIO_ELECTRON_DIR: dir, LORA_STUDIO_SKIP_BUILD: '1' }, ['DISPLAY', 'WAYLAND_DISPLAY']);
    if (process.platform === 'linux') {
      assert.equal(r.status, 1);
      assert.match(r.stderr, /there is no display/);
      assert.match(r.stderr, /npm run serve/);
      assert.equal(existsSync(marker), false);
    } else {
      assert.equal(r.status, 7);
    }
  });
});
