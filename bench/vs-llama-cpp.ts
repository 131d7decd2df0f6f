/**
 * `npm run bench -- --backend cpu --only decode --vs-llama-cpp DIR [--gguf FILE] [--pairs N] [--prompt N]
 *                   [--new-tokens N] [--threads N]`: greedy generation on cpu, the studio (decode.ts) against llama.cpp
 * (decode-llama-cpp.ts, node-llama-cpp's prebuilt binary installed in DIR), ALTERNATELY in one invocation, each side
 * its own process, the side that goes first alternating from pair to pair. Two files by default: the real SmolLM2
 * Q4_1 GGUF `npm test` fetches (llama.cpp decodes Q4_1 blocks directly; the studio runs it twice: dequantized to f16
 * at load, as the Playground does, and `--base-weights as-stored`, its Linears and lm_head kept in the file's blocks
 * and read by the native fused matrix-vector products) and the same weights rewritten as an f16 GGUF by
 * bench/gguf_to_f16.py (the PyPI gguf package), so both sides read the same f16 numbers. Reported: per pair both decode tokens/s and the ratio studio / llama.cpp;
 * per file the medians (decode and prefill) and each side's larger peak RSS.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { GgufModelSource } from '../engine/io/gguf-model.ts';
import { pythonPath } from '../test/helpers/python.ts';
import { benchRoot, median, rowNumber, runNodeBench, type Row } from './run-child.ts';

export interface VsLlamaCppOptions {
  llamaCppDir: string;
  gguf?: string;
  pairs: number;
  threads: number;
  prompt: number;
  newTokens: number;
}

const REAL_MODEL = join(benchRoot, '.cache', 'models', 'SmolLM2-135M-Instruct.Q4_1.gguf');

/** The f16 twin of a quantized GGUF (cached beside the other bench models). */
function f16Twin(gguf: string): string {
  const dir = join(tmpdir(), 'lora-studio-bench');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `${basename(gguf, '.gguf')}.f16.gguf`);
  if (existsSync(out)) return out;
  const r = spawnSync(pythonPath(), [join(benchRoot, 'bench', 'gguf_to_f16.py'), gguf, `${out}.partial`], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`bench/gguf_to_f16.py could not rewrite ${gguf} as f16`);
  spawnSync('mv', [`${out}.partial`, out]);
  return out;
}

/** Whether any Linear of the file is stored quantized (then the studio also runs it with its blocks as stored). */
function isQuantized(gguf: string): boolean {
  const src = GgufModelSource.open(gguf);
  return src.info('model.layers.0.mlp.down_proj.weight').typeName.startsWith('Q');
}

/** The studio's ways of running a file: f16 always, and the stored blocks for a quantized file. */
function studioRuns(gguf: string): ('f16' | 'as-stored')[] {
  return isQuantized(gguf) ? ['f16', 'as-stored'] : ['f16'];
}

export function runVsLlamaCpp(o: VsLlamaCppOptions): Row[] {
  const source = o.gguf ?? REAL_MODEL;
  if (!existsSync(source)) throw new Error(`${source} is missing: run \`node scripts/ensure-real-model.mjs\` (npm test does) or pass --gguf FILE`);
  const files = (o.gguf ? [o.gguf] : [REAL_MODEL, f16Twin(REAL_MODEL)]).flatMap((file) => studioRuns(file).map((weights) => ({ file, weights })));
  const common = ['--prompt', String(o.prompt), '--new-tokens', String(o.newTokens)];
  const env = { LORA_STUDIO_CPU_THREADS: String(o.threads) };
  const rows: Row[] = [];
  for (const { file, weights } of files) {
    const pairs: { studio: Row; peer: Row }[] = [];
    for (let i = 0; i < o.pairs; i++) {
      const studio = (): Row => runNodeBench('decode.ts', ['--gguf', file, '--base-weights', weights, ...common], env);
      const peer = (): Row => runNodeBench('decode-llama-cpp.ts', ['--gguf', file, '--llama-cpp', o.llamaCppDir, '--threads', String(o.threads), ...common], env);
      let s: Row;
      let p: Row;
      if (i % 2 === 0) {
        s = studio();
        p = peer();
      } else {
        p = peer();
        s = studio();
      }
      pairs.push({ studio: s, peer: p });
      const sd = rowNumber(s, 'decodeTokensPerSecond');
      const pd = rowNumber(p, 'decodeTokensPerSecond');
      rows.push({
        bench: 'vs-llama-cpp pair',
        file: basename(file),
        studioWeights: weights,
        pair: i + 1,
        studioFirst: i % 2 === 0,
        studioDecodeTokS: sd,
        llamaCppDecodeTokS: pd,
        decodeRatio: sd !== null && pd ? sd / pd : null,
        studioPrefillTokS: rowNumber(s, 'prefillTokensPerSecond'),
        llamaCppPrefillTokS: rowNumber(p, 'prefillTokensPerSecond'),
        error: (s.error ?? p.error ?? null) as string | null,
      });
    }
    const ok = pairs.filter((x) => rowNumber(x.studio, 'decodeTokensPerSecond') !== null && rowNumber(x.peer, 'decodeTokensPerSecond') !== null);
    const col = (side: 'studio' | 'peer', key: string): number[] => ok.map((x) => rowNumber(x[side], key) as number);
    const ratios = ok.map((x) => (rowNumber(x.studio, 'decodeTokensPerSecond') as number) / (rowNumber(x.peer, 'decodeTokensPerSecond') as number));
    rows.push({
      bench: 'vs-llama-cpp',
      file: basename(file),
      studioWeights: weights,
      pairs: ok.length,
      threads: o.threads,
      promptTokens: o.prompt,
      newTokens: o.newTokens,
      studioDecodeTokS: ok.length ? median(col('studio', 'decodeTokensPerSecond')) : null,
      llamaCppDecodeTokS: ok.length ? median(col('peer', 'decodeTokensPerSecond')) : null,
      decodeRatioMedian: ok.length ? median(ratios) : null,
      decodeRatioMin: ok.length ? Math.min(...ratios) : null,
      decodeRatioMax: ok.length ? Math.max(...ratios) : null,
      studioPrefillTokS: ok.length ? median(col('studio', 'prefillTokensPerSecond')) : null,
      llamaCppPrefillTokS: ok.length ? median(col('peer', 'prefillTokensPerSecond')) : null,
      studioPeakRssMiB: ok.length ? Math.max(...col('studio', 'peakRssMiB')) : null,
      llamaCppPeakRssMiB: ok.length ? Math.max(...col('peer', 'peakRssMiB')) : null,
      kernels: (ok[0]?.studio.kernels ?? null) as string | null,
    });
  }
  return rows;
}

export function printVsLlamaCppSummary(rows: Row[]): void {
  const f = (v: unknown, d = 1): string => (typeof v === 'number' ? v.toFixed(d) : String(v ?? '—'));
  console.log('\nfile                                   side                 decode tok/s  prefill tok/s  peak RSS MiB');
  for (const r of rows.filter((x) => x.bench === 'vs-llama-cpp')) {
    const file = String(r.file).padEnd(38);
    const studio = `studio (${String(r.studioWeights)})`.padEnd(20);
    console.log(`${file} ${studio} ${f(r.studioDecodeTokS).padStart(12)}  ${f(r.studioPrefillTokS).padStart(13)}  ${f(r.studioPeakRssMiB, 0).padStart(12)}`);
    console.log(`${''.padEnd(38)} ${'llama.cpp'.padEnd(20)} ${f(r.llamaCppDecodeTokS).padStart(12)}  ${f(r.llamaCppPrefillTokS).padStart(13)}  ${f(r.llamaCppPeakRssMiB, 0).padStart(12)}`);
    console.log(`${''.padEnd(38)} decode ratio studio/llama.cpp: median ${f(r.decodeRatioMedian, 2)} (${f(r.decodeRatioMin, 2)}–${f(r.decodeRatioMax, 2)}) over ${r.pairs} pairs`);
  }
}
