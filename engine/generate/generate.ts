/**
 * Text generation with a KV cache: the prompt is run once (prefill: one matrix product per weight over all its
 * tokens), then one token per step (a matrix-vector product per weight, reading it from memory once); greedy at
 * temperature 0, otherwise temperature + nucleus (top-p) sampling from a seeded Rng. LoRA is applied unmerged, as in
 * training. On the cpu backend's kernels (native when built) unless `ops` says otherwise.
 */
import { cpuOps } from '../backend/cpu/cpu-ops.ts';
import { forwardLogits, Workspace } from '../model/llama.ts';
import type { ModelOps } from '../model/ops.ts';
import type { FloatArray, LinearWeight, LoraWeights, ModelWeights } from '../model/types.ts';
import { Rng } from '../util/rng.ts';
import { KvCache } from './kv-cache.ts';

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 = greedy. */
  temperature: number;
  /** Nucleus mass in (0, 1]; 1 = no truncation. */
  topP: number;
  seed: number;
  /** Generation stops after emitting one of these (the eos id is included in the result). */
  eosTokenIds: number[];
  /** Called with each new token; return false to stop early. */
  onToken?: (id: number) => boolean | void;
  /** The kernels (default: the cpu backend's for this model). */
  ops?: ModelOps;
  /**
   * The logits' weight instead of model.lmHead (the same [vocab, hidden] matrix in another form): e.g. lm_head kept
   * packed as a GGUF stores it, which decoding then reads as blocks (the native fused matrix-vector products).
   */
  lmHead?: LinearWeight;
}

/** The checks both backends' generation make before anything runs. */
export function validateGenerate(model: ModelWeights, promptIds: number[], opts: GenerateOptions): void {
  if (promptIds.length === 0) throw new Error('generate: the prompt is empty (needs at least one token, e.g. bos)');
  const V = model.config.vocabSize;
  promptIds.forEach((id, i) => {
    if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new Error(`generate: prompt token ${i} = ${id} is outside the vocabulary [0, ${V})`);
  });
  if (!(Number.isInteger(opts.maxNewTokens) && opts.maxNewTokens >= 0)) throw new Error(`generate: maxNewTokens must be a non-negative integer, got ${opts.maxNewTokens}`);
  if (!(opts.temperature >= 0 && Number.isFinite(opts.temperature))) throw new Error(`generate: temperature must be ≥ 0, got ${opts.temperature}`);
  if (!(opts.topP > 0 && opts.topP <= 1)) throw new Error(`generate: topP must be in (0, 1], got ${opts.topP}`);
  if (!Number.isFinite(opts.seed)) throw new Error(`generate: seed must be a finite number, got ${opts.seed}`);
}

/** Argmax (lowest index on ties). */
export function argmax(logits: FloatArray, offset = 0, n = logits.length - offset): number {
  let best = 0;
  let bestV = -Infinity;
  for (let j = 0; j < n; j++) {
    const v = logits[offset + j];
    if (v > bestV) {
      bestV = v;
      best = j;
    }
  }
  return best;
}

/**
 * One token from logits[offset .. offset+n): greedy when temperature is 0, else softmax(logits/temperature) truncated to
 * the smallest most-probable set whose mass reaches topP (transformers' TopPLogitsWarper), renormalised, sampled.
 */
export function sampleToken(logits: FloatArray, temperature: number, topP: number, rng: Rng, offset = 0, n = logits.length - offset): number {
  if (temperature === 0) return argmax(logits, offset, n);
  let max = -Infinity;
  for (let j = 0; j < n; j++) if (logits[offset + j] > max) max = logits[offset + j];
  const p = new Float64Array(n);
  let sum = 0;
  for (let j = 0; j < n; j++) {
    const e = Math.exp((logits[offset + j] - max) / temperature);
    p[j] = e;
    sum += e;
  }
  for (let j = 0; j < n; j++) p[j] /= sum;
  let order: number[];
  let kept = n;
  let mass = 1;
  if (topP < 1) {
    order = Array.from({ length: n }, (_, j) => j).sort((a, b) => p[b] - p[a] || a - b);
    // Keep a token while the mass of the tokens before it is below topP (so the one that crosses it stays).
    let before = 0;
    kept = 0;
    while (kept < n && before < topP) {
      before += p[order[kept]];
      kept++;
    }
    mass = before;
  } else {
    order = Array.from({ length: n }, (_, j) => j);
  }
  const u = rng.uniform() * mass;
  let acc = 0;
  for (let i = 0; i < kept; i++) {
    acc += p[order[i]];
    if (u < acc) return order[i];
  }
  return order[kept - 1];
}

/** New token ids (the prompt excluded); stops at maxNewTokens or after an eos id. */
export function generate(model: ModelWeights, lora: LoraWeights | null, promptIds: number[], opts: GenerateOptions): number[] {
  validateGenerate(model, promptIds, opts);
  const out: number[] = [];
  if (opts.maxNewTokens === 0) return out;
  const ArrayCtor = model.embedTokens instanceof Float64Array ? Float64Array : Float32Array;
  const cache = new KvCache(model.config, promptIds.length + opts.maxNewTokens, ArrayCtor);
  const rng = new Rng(opts.seed);
  const eos = new Set(opts.eosTokenIds);
  // One workspace for the prompt and every decoded token: the activations are allocated once.
  const run = { ops: opts.ops ?? cpuOps(model), workspace: new Workspace(), cache, lastOnly: true, lmHead: opts.lmHead };
  let logits = forwardLogits(model, lora, Int32Array.from(promptIds), 1, promptIds.length, run);
  for (;;) {
    const id = sampleToken(logits, opts.temperature, opts.topP, rng);
    out.push(id);
    const goOn = opts.onToken?.(id);
    if (goOn === false || eos.has(id) || out.length >= opts.maxNewTokens) return out;
    logits = forwardLogits(model, lora, Int32Array.of(id), 1, 1, run);
  }
}
