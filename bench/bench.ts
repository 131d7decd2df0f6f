/**
 * `npm run bench -- [--backend cpu|webgpu] [--shape tiny|smollm-135m|llama-1b|llama-7b] [--seq N] [--batch N]
 *                   [--steps N] [--precision fp32|fp16] [--checkpointing] [--only train|tokenize|quant]
 *                   [--peak-tflops X | --peak-gflops X]`
 *
 * MFU needs the device's peak: --peak-tflops/--peak-gflops, else the table in bench/flops.ts for known GPUs (the cpu
 * backend has none, so its mfu is null unless a peak is given). bench/README.md tells how to compare with PEFT.
 * Prints a table and writes bench/results/bench-<time>.json. Each training case runs in its own child process so
 * its peak RSS is its own.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SHAPES, type ShapeName } from './shapes.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'cpu' },
    shape: { type: 'string' },
    seq: { type: 'string' },
    batch: { type: 'string' },
    steps: { type: 'string' },
    precision: { type: 'string', default: 'fp32' },
    checkpointing: { type: 'boolean', default: false },
    only: { type: 'string' },
    'peak-tflops': { type: 'string' },
    'peak-gflops': { type: 'string' },
  },
  allowPositionals: false,
});

interface Row {
  bench: string;
  [k: string]: string | number | boolean | null;
}

function runChild(script: string, args: string[]): Row {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', join(root, 'bench', script), ...args], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !last.startsWith('{')) {
    return { bench: script, error: `exit ${r.status}: ${last.slice(0, 200)}` };
  }
  return JSON.parse(last) as Row;
}

const rows: Row[] = [];
const only = values.only;
const backend = values.backend ?? 'cpu';
if (backend !== 'cpu' && backend !== 'webgpu') throw new Error(`--backend must be cpu or webgpu, not ${backend}`);

if (!only || only === 'train') {
  const shapes: ShapeName[] = values.shape ? [values.shape as ShapeName] : backend === 'cpu' ? ['tiny', 'smollm-135m'] : ['tiny'];
  for (const shape of shapes) {
    if (!(shape in SHAPES)) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(', ')}`);
    const seq = values.seq ?? String(SHAPES[shape].defaultSeq);
    const batch = values.batch ?? String(SHAPES[shape].defaultBatch);
    const steps = values.steps ?? String(SHAPES[shape].defaultSteps);
    const args = ['--backend', backend, '--shape', shape, '--seq', seq, '--batch', batch, '--steps', steps, '--precision', values.precision ?? 'fp32'];
    if (values.checkpointing) args.push('--checkpointing');
    if (values['peak-tflops'] !== undefined) args.push('--peak-tflops', values['peak-tflops']);
    if (values['peak-gflops'] !== undefined) args.push('--peak-gflops', values['peak-gflops']);
    rows.push(runChild('train-step.ts', args));
  }
}
if (!only || only === 'tokenize') rows.push(runChild('tokenize.ts', []));
if (!only || only === 'quant') rows.push(runChild('quant-report.ts', []));

const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
const fmt = (v: unknown): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v ?? ''));
const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => fmt(r[k]).length)));
console.log(keys.map((k, i) => k.padEnd(widths[i])).join('  '));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(keys.map((k, i) => fmt(r[k]).padEnd(widths[i])).join('  '));

const outDir = join(root, 'bench', 'results');
mkdirSync(outDir, { recursive: true });
const out = join(outDir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: (await import('node:os')).cpus().length, rows }, null, 2) + '\n');
console.log(`\nwrote ${out}`);
if (rows.some((r) => 'error' in r)) process.exitCode = 1;
