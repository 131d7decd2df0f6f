#!/usr/bin/env node
// Builds the cpu backend's native kernels (native/ → native/build/Release/lora_studio_cpu.node) with node-gyp, the
// way better-sqlite3 builds itself on `npm install`. Run by package.json's `install` script, by `npm run
// build:native`, and by scripts/test.mjs when the addon is missing or older than its sources.
//
// A failed build never fails `npm install`: the cpu backend then runs the portable TypeScript kernels and says so
// ("cpu (portable, slow)"). `--strict` (scripts/test.mjs under CI=true) exits 1 instead, so CI never tests the slow path
// by accident. `--if-stale` does nothing when the addon is newer than every file in native/src and binding.gyp.
//
// Node's headers: node-gyp downloads them unless told where they are. This machine (and Debian/Ubuntu's nodejs) has
// them under /usr/include/node, and npm may have no `nodedir` set, so without one we point node-gyp at the prefix of
// the running node when <prefix>/include/node/node_api.h exists — the build then needs no network.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const nativeDir = join(root, 'native');
export const addonPath = join(nativeDir, 'build', 'Release', 'lora_studio_cpu.node');

/** The node-gyp entry script: npm's (set for lifecycle scripts), then a local install, then the one bundled with npm. */
function nodeGypScript() {
  const candidates = [process.env.npm_config_node_gyp];
  try {
    candidates.push(createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed locally
  }
  const npmCli = process.env.npm_execpath;
  if (npmCli) candidates.push(join(dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => c && existsSync(c)) ?? null;
}

/** --nodedir for node-gyp: npm's setting when there is one, else the running node's own headers when installed. */
function nodeDir() {
  const set = process.env.npm_config_nodedir;
  if (set) return set;
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : null;
}

function newestSource() {
  let newest = statSync(join(nativeDir, 'binding.gyp')).mtimeMs;
  for (const name of readdirSync(join(nativeDir, 'src'))) newest = Math.max(newest, statSync(join(nativeDir, 'src', name)).mtimeMs);
  return newest;
}

/** Whether the addon is there and newer than its sources. */
export function addonUpToDate() {
  return existsSync(addonPath) && statSync(addonPath).mtimeMs >= newestSource();
}

/** Builds the addon; returns null on success or the reason it failed. */
export function buildNative({ quiet = false } = {}) {
  const gyp = nodeGypScript();
  if (gyp === null) return 'node-gyp was not found (it comes with npm; run this through npm, or npm install node-gyp)';
  const dir = nodeDir();
  // An existing configuration is rebuilt incrementally (only the changed sources compile); a fresh one is configured.
  const configured = existsSync(join(nativeDir, 'build', 'config.gypi'));
  const args = [gyp, configured ? 'build' : 'rebuild', ...(dir ? [`--nodedir=${dir}`] : [])];
  const r = spawnSync(process.execPath, args, { cwd: nativeDir, stdio: quiet ? 'pipe' : 'inherit', encoding: 'utf8' });
  if (r.status === 0 && existsSync(addonPath)) {
    // make may find nothing to redo (a source touched, not changed): mark the addon current so --if-stale stays quiet.
    const now = new Date();
    utimesSync(addonPath, now, now);
    return null;
  }
  const tail = quiet ? `\n${`${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n')}` : '';
  return `node-gyp ${args.slice(1).join(' ')} in native/ exited with ${r.status ?? r.signal}${r.error ? ` (${r.error.message})` : ''}${tail}`;
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const strict = process.argv.includes('--strict');
  if (process.argv.includes('--if-stale') && addonUpToDate()) process.exit(0);
  console.log('building the native cpu kernels (native/, node-gyp)…');
  const failed = buildNative();
  if (failed === null) {
    console.log(`native cpu kernels built: ${addonPath}`);
  } else {
    const msg = [
      '',
      `WARNING: the native cpu kernels did not build: ${failed}`,
      'The cpu backend will run the portable TypeScript kernels instead — correct, but about 25× slower ("cpu (portable, slow)").',
      'To fix: install a C++17 compiler, make and python3 (Linux: build-essential; macOS: xcode-select --install;',
      'Windows: Visual Studio Build Tools), then run `npm run build:native`.',
      '',
    ].join('\n');
    console.error(msg);
    process.exit(strict ? 1 : 0);
  }
}
