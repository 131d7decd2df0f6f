/**
 * The llama.cpp side of the decode comparison (run by vs-llama-cpp.ts in its own process): node-llama-cpp's prebuilt
 * cpu binary on a GGUF file, the same prompt length and number of new tokens as decode.ts, greedy, one sequence.
 * Prints one JSON row in decode.ts's shape: prefill tokens/s, decode tokens/s (from the second token on), peak RSS.
 *
 * node-llama-cpp is not a dependency of the studio (its optional platform packages are not all on every registry,
 * which breaks `npm ci`): install it beside the repository for the benchmark, e.g.
 *   mkdir -p ../llama-peer && cd ../llama-peer && npm init -y && npm install --ignore-scripts node-llama-cpp@3.22.1
 * and pass that folder with --llama-cpp DIR (or LORA_STUDIO_LLAMA_CPP=DIR).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Rng } from '../engine/util/rng.ts';

const { values } = parseArgs({
  options: {
    gguf: { type: 'string' },
    'llama-cpp': { type: 'string' },
    prompt: { type: 'string', default: '256' },
    'new-tokens': { type: 'string', default: '128' },
    runs: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
  },
});
function positiveInt(flag: 'prompt' | 'new-tokens' | 'runs' | 'threads'): number {
  const v = Number(values[flag]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${flag} must be a positive integer, not ${values[flag]}`);
  return v;
}
const gguf = values.gguf;
if (!gguf || !existsSync(gguf)) throw new Error(`--gguf must name a GGUF file (got ${gguf ?? 'nothing'})`);
const peerDir = values['llama-cpp'] ?? process.env.LORA_STUDIO_LLAMA_CPP;
const entry = peerDir ? join(peerDir, 'node_modules', 'node-llama-cpp', 'dist', 'index.js') : '';
if (!peerDir || !existsSync(entry)) {
  throw new Error(`node-llama-cpp not found${peerDir ? ` in ${peerDir}/node_modules` : ''}: install it in a folder beside the repository (see the top of bench/decode-llama-cpp.ts) and pass --llama-cpp DIR`);
}
const promptLen = positiveInt('prompt');
const newTokens = positiveInt('new-tokens');
const runs = Math.max(2, positiveInt('runs'));
const threads = positiveInt('threads');

interface Sequence {
  evaluate(tokens: number[], options?: { temperature?: number }): AsyncGenerator<number, void, void>;
  clearHistory(): Promise<void>;
}
interface NodeLlamaCpp {
  getLlama(o: { gpu: false; build: 'never'; skipDownload: true; logLevel?: string }): Promise<{
    loadModel(o: { modelPath: string; gpuLayers?: number }): Promise<{
      fileInfo: { metadata: { general: { architecture: string } } };
      tokens: { bos: number | null };
      createContext(o: { contextSize: number; batchSize: number; threads: number; sequences: number }): Promise<{ getSequence(): Sequence; dispose(): Promise<void> }>;
      dispose(): Promise<void>;
    }>;
  }>;
  readGgufFileInfo?: unknown;
}
const lib = (await import(pathToFileURL(entry).href)) as NodeLlamaCpp;
const llama = await lib.getLlama({ gpu: false, build: 'never', skipDownload: true, logLevel: 'error' });
const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
const context = await model.createContext({ contextSize: promptLen + newTokens + 8, batchSize: Math.max(512, promptLen), threads, sequences: 1 });
const seq = context.getSequence();

// Token ids as decode.ts draws them (same seed), below the vocabulary's size: random text, never a chat.
const vocab = Number((model.fileInfo.metadata as unknown as Record<string, Record<string, unknown>>).llama?.vocab_size ?? 49152);
const rng = new Rng(5);
const prompt = Array.from({ length: promptLen }, () => rng.int(vocab));

const prefill: number[] = [];
const decode: number[] = [];
for (let run = 0; run < runs; run++) {
  await seq.clearHistory();
  const t0 = performance.now();
  let first = 0;
  let n = 0;
  // evaluate() prefills the prompt, then yields one greedy token per iteration until we stop asking.
  for await (const _token of seq.evaluate(prompt, { temperature: 0 })) {
    if (n++ === 0) first = performance.now();
    if (n >= newTokens) break;
  }
  const end = performance.now();
  if (run === 0) continue;
  prefill.push(first - t0);
  if (newTokens > 1) decode.push((end - first) / (newTokens - 1));
}
await context.dispose();
await model.dispose();
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
console.log(
  JSON.stringify({
    bench: 'decode',
    backend: 'llama.cpp (node-llama-cpp 3.22.1, cpu)',
    model: gguf,
    promptTokens: promptLen,
    newTokens,
    runs: runs - 1,
    prefillMs: mean(prefill),
    prefillTokensPerSecond: (promptLen / mean(prefill)) * 1000,
    decodeMsPerToken: decode.length ? mean(decode) : null,
    decodeTokensPerSecond: decode.length ? 1000 / mean(decode) : null,
    threads,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  }),
);
