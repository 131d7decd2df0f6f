/**
 * A real llama.cpp for the tests: node-llama-cpp 3.22.1 with its prebuilt x64 Linux cpu binary, provisioned by
 * scripts/ensure-llama-cpp.mjs into .cache/llama-cpp (LORA_STUDIO_LLAMA_CPP overrides). It is not a dependency of the
 * studio, so it is imported dynamically from that folder, through the few calls the tests use, typed here. When it
 * cannot be provisioned (no npm registry, not x64 Linux) the test fails with the script's reason — never skips.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from './python.ts';

/** What the tests read of one position's output of LlamaContextSequence.controlledEvaluate. */
export interface LlamaTokenOutput {
  next: { token?: number | null; logits?: Map<number, number> };
}
export type LlamaEvaluateItem = number | [token: number, options: { generateNext?: { logits?: boolean; token?: boolean; options?: { temperature?: number } } }];

export interface LlamaSequence {
  /** Runs the tokens and yields one new token per iteration (greedy at temperature 0) until the caller stops. */
  evaluate(tokens: number[], options?: { temperature?: number }): AsyncGenerator<number, void, void>;
  controlledEvaluate(input: LlamaEvaluateItem[]): Promise<Array<LlamaTokenOutput | undefined>>;
  clearHistory(): Promise<void>;
}
export interface LlamaContext {
  getSequence(): LlamaSequence;
  dispose(): Promise<void>;
}
export interface LlamaContextOptions {
  contextSize: number;
  batchSize: number;
  threads: number;
  sequences: number;
  lora?: { adapters: Array<{ filePath: string; scale?: number }> };
}
export interface LlamaModel {
  tokenize(text: string, specialTokens?: boolean): number[];
  createContext(o: LlamaContextOptions): Promise<LlamaContext>;
  dispose(): Promise<void>;
}
export interface Llama {
  loadModel(o: { modelPath: string; gpuLayers?: number }): Promise<LlamaModel>;
  dispose(): Promise<void>;
}
interface NodeLlamaCpp {
  getLlama(o: { gpu: false; build: 'never'; skipDownload: true; logLevel?: 'error' | 'warn' | 'info' }): Promise<Llama>;
}

let provisioned: string | null = null;

/** The folder holding node_modules/node-llama-cpp (installed if needed); throws the script's reason when it cannot be. */
export function llamaCppDir(): string {
  if (provisioned) return provisioned;
  const script = join(repoRoot, 'scripts/ensure-llama-cpp.mjs');
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 600_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const dir = (r.stdout ?? '').trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || dir === '' || !existsSync(join(dir, 'node_modules', 'node-llama-cpp'))) {
    throw new Error(
      `llama.cpp (node-llama-cpp) could not be provisioned (${(r.stderr ?? '').trim() || `exit ${r.status ?? r.error?.message}`}); ` +
        `fix it and run 'node scripts/ensure-llama-cpp.mjs' (LORA_STUDIO_LLAMA_CPP picks the folder)`,
    );
  }
  provisioned = dir;
  return dir;
}

let loaded: Promise<Llama> | null = null;

/** llama.cpp on the cpu, from the prebuilt binary only (never builds, never downloads). */
export function getLlamaCpp(): Promise<Llama> {
  loaded ??= (async () => {
    const entry = join(llamaCppDir(), 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
    const lib = (await import(pathToFileURL(entry).href)) as NodeLlamaCpp;
    try {
      return await lib.getLlama({ gpu: false, build: 'never', skipDownload: true, logLevel: 'error' });
    } catch (e) {
      throw new Error(`node-llama-cpp in ${llamaCppDir()} found no usable prebuilt cpu binary (@node-llama-cpp/linux-x64): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  })();
  return loaded;
}

/**
 * Teacher-forced next-token log-probabilities from llama.cpp: ids[0..n-1] evaluated once with every position's raw
 * logits; entry t is log p(ids[t+1] | ids[0..t]) (log-softmax in float64 over the whole vocabulary), and the argmax.
 */
export async function llamaTeacherForced(seq: LlamaSequence, ids: number[]): Promise<{ logProbs: number[]; argmax: number[] }> {
  await seq.clearHistory();
  const out = await seq.controlledEvaluate(ids.map((t, i) => (i < ids.length - 1 ? [t, { generateNext: { logits: true } }] : t)));
  const logProbs: number[] = [];
  const argmax: number[] = [];
  for (let t = 0; t < ids.length - 1; t++) {
    const logits = out[t]?.next.logits;
    if (!logits) throw new Error(`llama.cpp returned no logits at position ${t}`);
    let max = -Infinity;
    let best = -1;
    for (const [id, v] of logits) {
      if (v > max) {
        max = v;
        best = id;
      }
    }
    let sum = 0;
    for (const v of logits.values()) sum += Math.exp(v - max);
    const target = logits.get(ids[t + 1]);
    if (target === undefined) throw new Error(`llama.cpp's logits at position ${t} have no entry for token ${ids[t + 1]}`);
    logProbs.push(target - max - Math.log(sum));
    argmax.push(best);
  }
  return { logProbs, argmax };
}
