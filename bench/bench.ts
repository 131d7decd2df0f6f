/**
 * `npm run bench -- [--backend cpu|webgpu] [--shape tiny|smollm-135m|llama-1b|llama-7b] [--seq N] [--batch N]
 *                   [--steps N] [--precision fp32|fp16] [--checkpointing] [--only train|tokenize|quant|decode]
 *                   [--peak-tflops X | --peak-gflops X] [--base q8_0|q4_0|q4_1|nf4|int4-g128]`
 *   --base (cpu): each training case runs twice, on the f32 base and on the base quantized to that format (QLoRA).
 * `npm run bench -- --backend cpu --vs-peft [--pairs N] [--threads N] [--shape S] [--seq N] [--batch N] [--steps N]`:
 *   the studio against transformers + PEFT, alternately (bench/vs-peft.ts).
 * `npm run bench -- --backend cpu --only decode --vs-llama-cpp DIR [--gguf FILE] [--pairs N] [--threads N]`:
 *   generation against llama.cpp (node-llama-cpp installed in DIR), alternately (bench/vs-llama-cpp.ts).
 *
 * MFU needs the device's peak: --peak-tflops/--peak-gflops, else the table in bench/flops.ts for known GPUs (the cpu
 * backend has none, so its mfu is null unless a peak is given). bench/README.md tells how to compare with PEFT.
 * Prints a table and writes bench/results/bench-<time>.json. Each training case runs in its own child process so
 * its peak RSS is its own.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runNodeBench, type Row } from './run-child.ts';
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
    'vs-peft': { type: 'boolean', default: false },
    pairs: { type: 'string', default: '5' },
    threads: { type: 'string' },
    prompt: { type: 'string' },
    'new-tokens': { type: 'string' },
    'vs-llama-cpp': { type: 'string' },
    gguf: { type: 'string' },
    base: { type: 'string' },
  },
  allowPositionals: false,
});

const rows: Row[] = [];
const only = values.only;
const backend = values.backend ?? 'cpu';
if (backend !== 'cpu' && backend !== 'webgpu') throw new Error(`--backend must be cpu or webgpu, not ${backend}`);

function positive(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`--${flag} must be a positive integer, not ${v}`);
  return n;
}

if (values.base !== undefined && backend !== 'cpu') throw new Error('--base (a packed frozen base) is a cpu bench option; the webgpu bench has its own packed path');
if (values.shape !== undefined && !(values.shape in SHAPES)) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(', ')}`);
if (values['vs-peft']) {
  if (backend !== 'cpu') throw new Error('--vs-peft compares the cpu backend with PEFT on cpu: use --backend cpu (bench/device.sh compares webgpu with PEFT on cuda)');
  const { printVsPeftSummary, runVsPeft } = await import('./vs-peft.ts');
  const { configuredThreads } = await import('../engine/backend/cpu/thread-pool.ts');
  const peakGflops = values['peak-gflops'] === undefined ? undefined : Number(values['peak-gflops']);
  const vs = runVsPeft({
    gguf: values.gguf,
    pairs: positive('pairs', values.pairs) ?? 5,
    threads: positive('threads', values.threads) ?? configuredThreads(),
    shape: values.shape as ShapeName | undefined,
    seq: positive('seq', values.seq),
    batch: positive('batch', values.batch),
    steps: positive('steps', values.steps),
    peakGflops,
  });
  rows.push(...vs);
  printVsPeftSummary(vs);
} else if (!only || only === 'train') {
  // With --base, SmolLM-135M only by default: tiny's intermediate size (176) is not a whole number of 32-blocks.
  const shapes: ShapeName[] = values.shape ? [values.shape as ShapeName] : values.base !== undefined ? ['smollm-135m'] : backend === 'cpu' ? ['tiny', 'smollm-135m'] : ['tiny'];
  for (const shape of shapes) {
    const seq = values.seq ?? String(SHAPES[shape].defaultSeq);
    const batch = values.batch ?? String(SHAPES[shape].defaultBatch);
    const steps = values.steps ?? String(SHAPES[shape].defaultSteps);
    const args = ['--backend', backend, '--shape', shape, '--seq', seq, '--batch', batch, '--steps', steps, '--precision', values.precision ?? 'fp32'];
    if (values.checkpointing) args.push('--checkpointing');
    if (values['peak-tflops'] !== undefined) args.push('--peak-tflops', values['peak-tflops']);
    if (values['peak-gflops'] !== undefined) args.push('--peak-gflops', values['peak-gflops']);
    rows.push(runNodeBench('train-step.ts', args));
    // QLoRA: the same case on a packed base, in its own process, next to the f32 row.
    if (values.base !== undefined && values.base !== 'f32') rows.push(runNodeBench('train-step.ts', [...args, '--base', values.base]));
  }
}
if (!values['vs-peft'] && (!only || only === 'tokenize')) rows.push(runNodeBench('tokenize.ts', []));
if (!values['vs-peft'] && (!only || only === 'quant')) rows.push(runNodeBench('quant-report.ts', []));
// Generation on cpu: asked for by name only (it takes a minute on SmolLM-135M).
if (values['vs-llama-cpp'] !== undefined) {
  if (backend !== 'cpu' || only !== 'decode') throw new Error('--vs-llama-cpp compares generation on cpu: use --backend cpu --only decode');
  const { printVsLlamaCppSummary, runVsLlamaCpp } = await import('./vs-llama-cpp.ts');
  const vs = runVsLlamaCpp({
    llamaCppDir: values['vs-llama-cpp'],
    gguf: values.gguf,
    pairs: positive('pairs', values.pairs) ?? 5,
    threads: positive('threads', values.threads) ?? (await import('../engine/backend/cpu/thread-pool.ts')).configuredThreads(),
    prompt: positive('prompt', values.prompt) ?? 256,
    newTokens: positive('new-tokens', values['new-tokens']) ?? 128,
  });
  rows.push(...vs);
  printVsLlamaCppSummary(vs);
} else if (!values['vs-peft'] && only === 'decode' && backend === 'cpu') {
  const args = [...(values.gguf ? ['--gguf', values.gguf] : []), ...(values.shape ? ['--shape', values.shape] : []), ...(values.prompt ? ['--prompt', values.prompt] : []), ...(values['new-tokens'] ? ['--new-tokens', values['new-tokens']] : [])];
  rows.push(runNodeBench('decode.ts', args));
}

if (!values['vs-peft']) {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const fmt = (v: unknown): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v ?? ''));
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => fmt(r[k]).length)));
  console.log(keys.map((k, i) => k.padEnd(widths[i])).join('  '));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(keys.map((k, i) => fmt(r[k]).padEnd(widths[i])).join('  '));
}

const outDir = join(root, 'bench', 'results');
mkdirSync(outDir, { recursive: true });
const out = join(outDir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: (await import('node:os')).cpus().length, rows }, null, 2) + '\n');
console.log(`\nwrote ${out}`);
if (rows.some((r) => 'error' in r)) process.exitCode = 1;
