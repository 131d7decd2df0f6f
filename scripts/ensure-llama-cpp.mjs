#!/usr/bin/env node
// Provisions a real llama.cpp for the tests that check our GGUF exports and GGUF LoRAs in it: node-llama-cpp with its
// prebuilt cpu binary for x64 Linux, in a folder of its own with its own package.json. It cannot be a dependency of
// the studio: its lockfile lists optional platform packages that are not on every registry, which breaks `npm ci`.
// The install runs without scripts (nothing is built or downloaded besides the two packages and their dependencies)
// and without node-llama-cpp's optional platform packages (CUDA, Vulkan: ~600 MB we do not use); the linux-x64 binary
// is named explicitly. Idempotent: when the folder already holds the pinned versions nothing touches the network.
// Folder: LORA_STUDIO_LLAMA_CPP, else <repo>/.cache/llama-cpp. Prints the folder on its last line.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export const LLAMA_CPP = {
  version: '3.22.1',
  package: 'node-llama-cpp',
  binary: '@node-llama-cpp/linux-x64',
};

export function llamaCppDir() {
  return resolve(process.env.LORA_STUDIO_LLAMA_CPP ?? join(root, '.cache/llama-cpp'));
}

function installedVersion(dir, name) {
  try {
    const pkg = JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8'));
    return typeof pkg.version === 'string' ? pkg.version : null;
  } catch {
    return null;
  }
}

/** What is wrong with the folder's install, or null when both packages are there at the pinned version. */
function installProblem(dir) {
  for (const name of [LLAMA_CPP.package, LLAMA_CPP.binary]) {
    const v = installedVersion(dir, name);
    if (v !== LLAMA_CPP.version) return `${name} ${v === null ? 'is not installed' : `is ${v}, not ${LLAMA_CPP.version}`} in ${join(dir, 'node_modules')}`;
  }
  if (!existsSync(join(dir, 'node_modules', LLAMA_CPP.package, 'dist', 'index.js'))) return `${LLAMA_CPP.package} in ${dir} has no dist/index.js`;
  return null;
}

export function ensureLlamaCpp({ quiet = false } = {}) {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `the llama.cpp tests use node-llama-cpp's prebuilt cpu binary for x64 Linux (${LLAMA_CPP.binary}@${LLAMA_CPP.version}); ` +
        `this machine is ${process.platform}-${process.arch}, for which that binary is missing, so those tests cannot run here (run them on x64 Linux)`,
    );
  }
  const dir = llamaCppDir();
  if (installProblem(dir) === null) return dir;
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new Error(`cannot create the folder ${dir} for node-llama-cpp (${e?.code ?? String(e)}); make it writable or point LORA_STUDIO_LLAMA_CPP at another folder`, { cause: e });
  }
  // Its own package.json, so npm never walks up to the studio's package.json and lockfile.
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'lora-studio-llama-cpp', private: true, description: 'node-llama-cpp for the llama.cpp tests of LoRA Studio (scripts/ensure-llama-cpp.mjs)', dependencies: { [LLAMA_CPP.package]: LLAMA_CPP.version, [LLAMA_CPP.binary]: LLAMA_CPP.version } }, null, 2) + '\n',
  );
  const args = ['install', '--ignore-scripts', '--omit=optional', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error'];
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  if (!quiet) console.log(`installing ${LLAMA_CPP.package}@${LLAMA_CPP.version} and ${LLAMA_CPP.binary}@${LLAMA_CPP.version} into ${dir}`);
  const r = spawnSync(npm, args, { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, npm_config_package_lock: 'false' } });
  if (r.status !== 0) {
    throw new Error(
      `'npm ${args.join(' ')}' in ${dir} failed (exit ${r.status ?? r.error?.message}); the llama.cpp tests need npm and access to its registry ` +
        `for ${LLAMA_CPP.package}@${LLAMA_CPP.version} and ${LLAMA_CPP.binary}@${LLAMA_CPP.version}; fix that and run 'node scripts/ensure-llama-cpp.mjs' ` +
        `(or point LORA_STUDIO_LLAMA_CPP at a folder where both are installed)`,
    );
  }
  const problem = installProblem(dir);
  if (problem !== null) throw new Error(`after npm install: ${problem}; remove ${dir} and run 'node scripts/ensure-llama-cpp.mjs' again`);
  return dir;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    console.log(ensureLlamaCpp());
  } catch (e) {
    console.error(`ensure-llama-cpp: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
