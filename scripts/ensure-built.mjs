#!/usr/bin/env node
// Builds what the studio serves when it is missing or older than its sources:
//   the renderer (vite build → dist/renderer) always, and the Node side (tsc → dist/electron, dist/engine) with
//   --node or whenever a compiled dist/electron exists but is stale (bin/lora-studio.mjs prefers it to the sources).
// `npm run serve` and `npm start` call it, so a fresh checkout or an edited source never runs a stale build.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

/** Newest modification time (ms) of the files under the given paths, skipping node_modules and build output. */
export function newestMtime(paths) {
  let newest = 0;
  const visit = (p) => {
    let st;
    try {
      st = statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(p)) if (name !== 'node_modules' && name !== 'dist' && !name.startsWith('.')) visit(join(p, name));
    } else if (st.mtimeMs > newest) {
      newest = st.mtimeMs;
    }
  };
  for (const p of paths) visit(p);
  return newest;
}

function mtimeOf(file) {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}

const rendererSources = ['renderer', 'common', 'package.json'].map((p) => join(root, p));
const nodeSources = ['electron', 'host', 'engine', 'common', 'tsconfig.base.json', 'tsconfig.build.json', 'package.json'].map((p) => join(root, p));
export const rendererIndex = join(root, 'dist', 'renderer', 'index.html');
export const nodeMain = join(root, 'dist', 'electron', 'main.js');

export function rendererIsStale() {
  return mtimeOf(rendererIndex) < newestMtime(rendererSources);
}

export function nodeIsStale() {
  return mtimeOf(nodeMain) < newestMtime(nodeSources);
}

function run(title, args) {
  console.log(`▶ ${title}`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${title} failed (exit ${r.status ?? r.signal}); see the messages above`);
}

export function ensureRenderer({ force = false } = {}) {
  if (!existsSync(join(root, 'renderer', 'vite.config.ts'))) throw new Error('renderer/vite.config.ts is missing: this checkout has no renderer to build');
  if (!force && !rendererIsStale()) return false;
  run('building the UI (vite build → dist/renderer)', [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', join(root, 'renderer', 'vite.config.ts'), '--logLevel', 'warn']);
  return true;
}

export function ensureNode({ force = false } = {}) {
  if (!force && !nodeIsStale()) return false;
  run('compiling the app (tsc -p tsconfig.build.json → dist/)', [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')]);
  return true;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  try {
    ensureRenderer({ force: args.includes('--force') });
    if (args.includes('--node') || existsSync(nodeMain)) ensureNode({ force: args.includes('--force') });
  } catch (e) {
    console.error(`ensure-built: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
