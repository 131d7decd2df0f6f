/**
 * The cpu generation benchmark (run by bench.ts in a child process): a random-weight model of a real shape with f16
 * frozen weights (what a Playground answer on cpu runs), a prompt of --prompt tokens prefilled as one GEMM pass, then
 * --new-tokens tokens decoded greedily one at a time (matrix-vector products against the KV cache). Prints one JSON
 * row: prefill tokens/s, decode tokens/s, peak RSS. The first of --runs runs is a warm-up and is not counted.
 *
 * With --gguf FILE it loads that file instead (a real model, e.g. the SmolLM2 GGUF `npm test` fetches), its weights
 * dequantized to f16 as the Playground does: bench/vs-llama-cpp.ts runs it alternately with llama.cpp on the same file.
 * `--base-weights as-stored` (GGUF only) keeps every Linear, and lm_head, packed in the ggml blocks the file stores
 * (q8_0, q4_0, q4_1, q4_k, q6_k; other types fall back to f16): decoding then reads 4.5–8.5 bits a weight through the
 * native fused matrix-vector products, as llama.cpp does. The default, f16, is what the Playground runs today.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuBackendInfo, cpuSharedMemoryWanted } from '../engine/backend/cpu/cpu-ops.ts';
import { generate } from '../engine/generate/generate.ts';
import { loadModel } from '../engine/io/model-source.ts';
import { Rng } from '../engine/util/rng.ts';
import { loadAsStored } from './as-stored-model.ts';
import { SHAPES, type ShapeName } from './shapes.ts';

const { values } = parseArgs({
  options: {
    shape: { type: 'string', default: 'smollm-135m' },
    prompt: { type: 'string', default: '256' },
    'new-tokens': { type: 'string', default: '128' },
    runs: { type: 'string', default: '3' },
    gguf: { type: 'string' },
    'base-weights': { type: 'string', default: 'f16' },
  },
});
const baseWeights = values['base-weights'];
if (baseWeights !== 'f16' && baseWeights !== 'as-stored') throw new Error(`--base-weights must be f16 or as-stored, not ${baseWeights}`);
if (baseWeights === 'as-stored' && values.gguf === undefined) throw new Error('--base-weights as-stored needs --gguf FILE (the random bench models have no stored blocks)');
const shape = values.shape as ShapeName;
if (!(shape in SHAPES)) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(', ')}, not ${shape}`);
function positiveInt(flag: 'prompt' | 'new-tokens' | 'runs'): number {
  const v = Number(values[flag]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${flag} must be a positive integer, not ${values[flag]}`);
  return v;
}
const promptLen = positiveInt('prompt');
const newTokens = positiveInt('new-tokens');
const runs = Math.max(2, positiveInt('runs'));

// The same random model train-step.ts makes (and caches) for this shape, or the GGUF file asked for.
const gguf = values.gguf;
if (gguf !== undefined && !existsSync(gguf)) throw new Error(`--gguf ${gguf}: no such file`);
const dir = gguf ?? join(tmpdir(), 'lora-studio-bench', shape);
if (!gguf && !existsSync(join(dir, 'model.safetensors'))) {
  const r = spawnSync(process.execPath, [...process.execArgv, join(import.meta.dirname, 'train-step.ts'), '--shape', shape, '--make-only'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`could not make the ${shape} model in ${dir}`);
}
const shared = cpuSharedMemoryWanted();
const loaded = baseWeights === 'as-stored' && gguf !== undefined ? loadAsStored(gguf, shared) : { model: loadModel(dir, { dtype: Float32Array, frozenF16: true, shared }), lmHead: undefined, stored: null };
const model = loaded.model;
const rng = new Rng(5);
const prompt = Array.from({ length: promptLen }, () => rng.int(model.config.vocabSize));

const prefill: number[] = [];
const decode: number[] = [];
for (let run = 0; run < runs; run++) {
  const t0 = performance.now();
  let first = 0;
  let n = 0;
  // No eos: exactly newTokens tokens. The first onToken comes after the prefill and the first token's logits.
  generate(model, null, prompt, {
    maxNewTokens: newTokens,
    temperature: 0,
    topP: 1,
    seed: 1,
    eosTokenIds: [],
    lmHead: loaded.lmHead,
    onToken: () => {
      if (n++ === 0) first = performance.now();
    },
  });
  const end = performance.now();
  if (run === 0) continue;
  prefill.push(first - t0);
  if (newTokens > 1) decode.push((end - first) / (newTokens - 1));
}
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const cpu = cpuBackendInfo();
console.log(
  JSON.stringify({
    bench: 'decode',
    backend: 'cpu',
    shape: gguf ? null : shape,
    model: gguf ?? null,
    weights: baseWeights,
    storedAs: loaded.stored,
    promptTokens: promptLen,
    newTokens,
    runs: runs - 1,
    prefillMs: mean(prefill),
    prefillTokensPerSecond: (promptLen / mean(prefill)) * 1000,
    decodeMsPerToken: decode.length ? mean(decode) : null,
    decodeTokensPerSecond: decode.length ? 1000 / mean(decode) : null,
    kernels: cpu.native ? `native ${cpu.isa}` : 'portable',
    threads: cpu.threads,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  }),
);
