#!/usr/bin/env node
// Makes the Python reference environment the parity tests and benchmarks use (never the app): a .venv with
// tests/python/requirements.txt installed, re-installed only when that file changes.
// LORA_STUDIO_PYTHON=/path/to/python skips this and uses that interpreter (it must have the same packages).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const req = join(root, 'tests/python/requirements.txt');
const venv = join(root, '.venv');
const py = join(venv, 'bin/python');
const stamp = join(venv, '.requirements.sha256');

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`ensure-python: '${cmd} ${args.join(' ')}' failed (exit ${r.status}). The parity tests need Python 3.10+ with pip and access to PyPI.`);
    process.exit(1);
  }
}

if (process.env.LORA_STUDIO_PYTHON) {
  console.log(`using LORA_STUDIO_PYTHON=${process.env.LORA_STUDIO_PYTHON}`);
  process.exit(0);
}
const want = createHash('sha256').update(readFileSync(req)).digest('hex');
if (existsSync(py) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === want) {
  console.log('.venv is up to date');
  process.exit(0);
}
if (!existsSync(py)) sh('python3', ['-m', 'venv', venv]);
sh(py, ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', '-r', req]);
writeFileSync(stamp, want + '\n');
console.log('.venv ready');
