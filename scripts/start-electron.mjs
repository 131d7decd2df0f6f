#!/usr/bin/env node
// `npm start`: opens the desktop studio. Finds Electron's binary (running Electron's own installer once when it is
// missing), builds what is stale, then starts Electron on this folder (package.json "main" → dist/electron/main.js).
// When the binary cannot be had, it says what is missing, why and how to fix it — exit 1, no stack trace.
//
// Environment: LORA_STUDIO_NO_ELECTRON_DOWNLOAD=1 never runs the installer; LORA_STUDIO_ELECTRON_DIR points at another
// `electron` package folder; LORA_STUDIO_ELECTRON_INSTALL_TIMEOUT_MS bounds the download (default 5 minutes);
// LORA_STUDIO_SKIP_BUILD=1 starts whatever dist/ holds.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const env = process.env;

function show(p) {
  const rel = relative(process.cwd(), p);
  return rel && !rel.startsWith('..') ? rel : p;
}

function fail(lines) {
  console.error(lines.join('\n'));
  process.exit(1);
}

function electronPackageDir() {
  if (env.LORA_STUDIO_ELECTRON_DIR) return env.LORA_STUDIO_ELECTRON_DIR;
  try {
    return dirname(createRequire(join(root, 'package.json')).resolve('electron/package.json'));
  } catch {
    return null;
  }
}

/** The binary as Electron's own index.js finds it (path.txt + dist/), or null when it is not on disk. */
function electronBinary(dir) {
  let rel;
  try {
    rel = readFileSync(join(dir, 'path.txt'), 'utf8').trim();
  } catch {
    return null;
  }
  const bin = env.ELECTRON_OVERRIDE_DIST_PATH ? join(env.ELECTRON_OVERRIDE_DIST_PATH, rel) : join(dir, 'dist', rel);
  return existsSync(bin) ? bin : null;
}

function expectedBinary(dir) {
  const name = process.platform === 'darwin' ? 'Electron.app/Contents/MacOS/Electron' : process.platform === 'win32' ? 'electron.exe' : 'electron';
  return join(dir, 'dist', name);
}

/** The one line of an installer failure worth showing (the error, not its stack). */
function errorLine(output) {
  const lines = output.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('at ') && !/^\^+$/.test(l) && !l.startsWith('Node.js v'));
  return lines.find((l) => /(Error|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ENETUNREACH|ETIMEDOUT|HTTPError|status code)/.test(l)) ?? lines[lines.length - 1] ?? '';
}

const OFFLINE = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ENETUNREACH|EHOSTUNREACH|ETIMEDOUT|ECONNRESET|getaddrinfo|socket hang up/;

function runInstaller(dir) {
  const timeout = Number(env.LORA_STUDIO_ELECTRON_INSTALL_TIMEOUT_MS) || 300_000;
  console.log(`Electron's binary is missing; fetching it with Electron's installer (node ${show(join(dir, 'install.js'))})…`);
  const r = spawnSync(process.execPath, [join(dir, 'install.js')], { cwd: dir, encoding: 'utf8', timeout, env });
  if (r.error && r.error.code === 'ETIMEDOUT') return `downloading it did not finish within ${Math.round(timeout / 1000)} s (slow or no network?)`;
  if (r.error) return `Electron's installer could not run: ${r.error.message}`;
  if (r.status !== 0) {
    const line = errorLine(`${r.stderr ?? ''}\n${r.stdout ?? ''}`);
    return OFFLINE.test(line) ? `downloading it failed (${line}): this machine seems to have no network access` : `downloading it failed: ${line || `installer exit code ${r.status}`}`;
  }
  return null;
}

function main() {
  const dir = electronPackageDir();
  if (!dir) {
    fail(['npm start: cannot open the desktop window — the `electron` package is not installed.', '  fix:  npm install', '        or use the studio in a browser instead:  npm run serve']);
  }
  let bin = electronBinary(dir);
  if (!bin) {
    let why;
    if (env.ELECTRON_SKIP_BINARY_DOWNLOAD) {
      why = 'ELECTRON_SKIP_BINARY_DOWNLOAD is set, so `npm install` skipped the download (and Electron\'s installer does nothing while it is set)';
    } else if (env.LORA_STUDIO_NO_ELECTRON_DOWNLOAD) {
      why = 'it was never downloaded, and LORA_STUDIO_NO_ELECTRON_DOWNLOAD is set, so this start did not try';
    } else if (!existsSync(join(dir, 'install.js'))) {
      why = `Electron's installer (${show(join(dir, 'install.js'))}) is missing too`;
    } else {
      why = runInstaller(dir);
      bin = electronBinary(dir);
      if (!bin && !why) why = "Electron's installer finished but left no binary behind";
    }
    if (!bin) {
      let version = '';
      try {
        version = ` ${JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version}`;
      } catch {
        // the version only decorates the message
      }
      fail([
        "npm start: cannot open the desktop window — Electron's binary is missing.",
        `  what: Electron${version} for ${process.platform}-${process.arch} should be at ${show(expectedBinary(dir))}`,
        `  why:  ${why}`,
        '  fix:  on a machine with internet access run',
        `          ${env.ELECTRON_SKIP_BINARY_DOWNLOAD ? 'unset ELECTRON_SKIP_BINARY_DOWNLOAD; ' : ''}node ${show(join(dir, 'install.js'))}`,
        '        then npm start again — or use the studio in a browser instead:',
        '          npm run serve',
      ]);
    }
  }

  if (process.platform === 'linux' && !env.DISPLAY && !env.WAYLAND_DISPLAY) {
    fail([
      'npm start: cannot open the desktop window — there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set).',
      '  fix:  run it from a desktop session (or through xvfb-run), or use the studio in a browser instead:',
      '          npm run serve',
    ]);
  }

  if (!env.LORA_STUDIO_SKIP_BUILD) {
    // Imported here so a missing binary is reported before anything slow happens.
    return import('./ensure-built.mjs').then(({ ensureRenderer, ensureNode }) => {
      try {
        ensureRenderer();
        ensureNode();
      } catch (e) {
        fail([`npm start: ${e instanceof Error ? e.message : String(e)}`]);
      }
      launch(bin);
    });
  }
  launch(bin);
}

function launch(bin) {
  const args = [root, ...process.argv.slice(2)];
  // Chromium's sandbox refuses to start as root on Linux (containers, CI); say so instead of failing obscurely.
  if (process.platform === 'linux' && typeof process.getuid === 'function' && process.getuid() === 0) {
    console.warn('npm start: running as root, so Electron starts with --no-sandbox');
    args.push('--no-sandbox');
  }
  const childEnv = { ...env };
  delete childEnv.ELECTRON_RUN_AS_NODE;
  const child = spawn(bin, args, { stdio: 'inherit', env: childEnv });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('error', (e) => fail([`npm start: could not start Electron (${show(bin)}): ${e.message}`]));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

await main();
