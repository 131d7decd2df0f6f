/**
 * `npm run bench -- --backend cpu --vs-peft [--pairs N] [--shape S] [--seq N] [--batch N] [--steps N] [--threads N]
 *                   [--peak-gflops X]`: the studio's cpu step (train-step.ts) and transformers + PEFT on cpu
 * (peft_reference.py) on the same shape, batch, sequence, LoRA settings (r 8, alpha 16, all seven projections, fp32)
 * and thread count, ALTERNATELY in one invocation: pair i runs both sides back to back, the side that goes first
 * alternating from pair to pair, so a machine that gets busier or cooler part-way weighs on both alike. Each side is
 * its own process (its own peak RSS, no warm caches from the other). Reported: per pair, both tokens/s and the ratio
 * studio / PEFT; per shape, the medians and the larger peak RSS of each side.
 *
 * Threads: the studio gets LORA_STUDIO_CPU_THREADS, PyTorch OMP_NUM_THREADS / MKL_NUM_THREADS, both --threads
 * (default: the studio's own setting). Run it with nothing else on the machine: PyTorch's OpenMP threads collapse
 * when the cores are oversubscribed, which is how a PEFT step of 1.5 s was once measured as 24.8 s.
 */
import { configuredThreads } from '../engine/backend/cpu/thread-pool.ts';
import { pythonPath } from '../test/helpers/python.ts';
import { benchRoot, median, rowNumber, runJsonChild, runNodeBench, type Row } from './run-child.ts';
import { SHAPES, type ShapeName } from './shapes.ts';

/** The two shapes of the comparison (issue 11): the sample model's 4×128 and SmolLM-135M's 1×256. */
export const VS_PEFT_CASES: { shape: ShapeName; batch: number; seq: number; steps: number }[] = [
  { shape: 'tiny', batch: 4, seq: 128, steps: 6 },
  { shape: 'smollm-135m', batch: 1, seq: 256, steps: 4 },
];

export interface VsPeftOptions {
  pairs: number;
  threads: number;
  shape?: ShapeName;
  seq?: number;
  batch?: number;
  /** Steps per process, the first one a warm-up (not timed). */
  steps?: number;
  peakGflops?: number;
  /** A real model's GGUF (both sides read its weights: the studio dequantized to f32, transformers' gguf loader); its shape is smollm-135m unless `shape` says otherwise. */
  gguf?: string;
}

/** Runs the pairs; returns every row (pairs, then one summary per shape) for the table and the JSON file. */
export function runVsPeft(o: VsPeftOptions): Row[] {
  const python = pythonPath();
  const shape = o.shape ?? (o.gguf ? 'smollm-135m' : undefined);
  const cases = shape
    ? [{ ...(VS_PEFT_CASES.find((c) => c.shape === shape) ?? { shape, batch: SHAPES[shape].defaultBatch, seq: SHAPES[shape].defaultSeq, steps: 3 }) }]
    : VS_PEFT_CASES.map((c) => ({ ...c }));
  const rows: Row[] = [];
  for (const c of cases) {
    const batch = o.batch ?? c.batch;
    const seq = o.seq ?? c.seq;
    const steps = Math.max(2, o.steps ?? c.steps);
    const common = ['--shape', c.shape, '--seq', String(seq), '--batch', String(batch), '--steps', String(steps), '--precision', 'fp32', ...(o.gguf ? ['--gguf', o.gguf] : [])];
    const studioArgs = [...common, '--backend', 'cpu', ...(o.peakGflops ? ['--peak-gflops', String(o.peakGflops)] : [])];
    const peftArgs = [`${benchRoot}bench/peft_reference.py`, ...common, '--device', 'cpu', ...(o.peakGflops ? ['--peak-tflops', String(o.peakGflops / 1000)] : [])];
    const threads = String(o.threads);
    const studio = (): Row => runNodeBench('train-step.ts', studioArgs, { LORA_STUDIO_CPU_THREADS: threads });
    const peft = (): Row => runJsonChild('peft_reference.py', python, peftArgs, { OMP_NUM_THREADS: threads, MKL_NUM_THREADS: threads });
    const ratios: number[] = [];
    const studioTps: number[] = [];
    const peftTps: number[] = [];
    const studioRss: number[] = [];
    const peftRss: number[] = [];
    const errors: string[] = [];
    for (let pair = 1; pair <= o.pairs; pair++) {
      // Odd pairs start with the studio, even pairs with PEFT.
      let s: Row;
      let p: Row;
      if (pair % 2 === 1) {
        s = studio();
        p = peft();
      } else {
        p = peft();
        s = studio();
      }
      const st = rowNumber(s, 'tokensPerSecond');
      const pt = rowNumber(p, 'tokensPerSecond');
      const ratio = st !== null && pt !== null ? st / pt : null;
      if (ratio !== null && st !== null && pt !== null) {
        ratios.push(ratio);
        studioTps.push(st);
        peftTps.push(pt);
      }
      const sr = rowNumber(s, 'peakRssMiB');
      const pr = rowNumber(p, 'peakRssMiB');
      if (sr !== null) studioRss.push(sr);
      if (pr !== null) peftRss.push(pr);
      const error = [s.error, p.error].filter((e) => typeof e === 'string').join('; ') || null;
      if (error) errors.push(`pair ${pair}: ${error}`);
      const row: Row = {
        bench: 'vs-peft',
        shape: c.shape,
        batch,
        seq,
        pair,
        first: pair % 2 === 1 ? 'studio' : 'peft',
        studioStepMs: rowNumber(s, 'stepMs'),
        peftStepMs: rowNumber(p, 'stepMs'),
        studioTokS: st,
        peftTokS: pt,
        ratio,
        studioRssMiB: sr,
        peftRssMiB: pr,
        studioMfu: rowNumber(s, 'mfu'),
        peftMfu: rowNumber(p, 'mfu'),
        studioLoss: rowNumber(s, 'loss'),
        peftLoss: rowNumber(p, 'loss'),
        kernels: typeof s.kernels === 'string' ? s.kernels : null,
        threads: o.threads,
        ...(error ? { error } : {}),
      };
      rows.push(row);
      printPair(row);
    }
    rows.push({
      bench: 'vs-peft median',
      shape: c.shape,
      batch,
      seq,
      pairs: ratios.length,
      medianRatio: ratios.length ? median(ratios) : null,
      minRatio: ratios.length ? Math.min(...ratios) : null,
      maxRatio: ratios.length ? Math.max(...ratios) : null,
      studioTokS: studioTps.length ? median(studioTps) : null,
      peftTokS: peftTps.length ? median(peftTps) : null,
      studioPeakRssMiB: studioRss.length ? Math.max(...studioRss) : null,
      peftPeakRssMiB: peftRss.length ? Math.max(...peftRss) : null,
      threads: o.threads,
      ...(errors.length ? { error: errors.join('; ') } : {}),
    });
  }
  return rows;
}

const f = (v: unknown, d = 1): string => (typeof v === 'number' ? v.toFixed(d) : String(v ?? '—'));

function printPair(r: Row): void {
  console.log(
    `${String(r.shape)} ${String(r.batch)}×${String(r.seq)} pair ${String(r.pair)} (${String(r.first)} first): studio ${f(r.studioTokS)} tok/s (${f(r.studioStepMs, 0)} ms, ${f(r.studioRssMiB, 0)} MiB)  ` +
      `peft ${f(r.peftTokS)} tok/s (${f(r.peftStepMs, 0)} ms, ${f(r.peftRssMiB, 0)} MiB)  ratio ${f(r.ratio, 3)}${r.error ? `  ERROR ${String(r.error)}` : ''}`,
  );
}

/** The summary table: one line per shape. */
export function printVsPeftSummary(rows: Row[]): void {
  const heads = ['shape', 'batch×seq', 'pairs', 'median ratio', 'min–max', 'studio tok/s', 'peft tok/s', 'studio peak RSS MiB', 'peft peak RSS MiB'];
  const lines = rows
    .filter((r) => r.bench === 'vs-peft median')
    .map((r) => [String(r.shape), `${String(r.batch)}×${String(r.seq)}`, String(r.pairs), f(r.medianRatio, 3), `${f(r.minRatio, 3)}–${f(r.maxRatio, 3)}`, f(r.studioTokS), f(r.peftTokS), f(r.studioPeakRssMiB, 0), f(r.peftPeakRssMiB, 0)]);
  const widths = heads.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  console.log(`\nstudio (cpu) vs transformers + PEFT (cpu), ${String(rows[0]?.threads ?? configuredThreads())} threads each; ratio = studio tokens/s ÷ PEFT tokens/s`);
  console.log(heads.map((h, i) => h.padEnd(widths[i])).join('  '));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(l.map((c, i) => c.padEnd(widths[i])).join('  '));
}
