/**
 * Generation: KV-cached incremental decoding against full recomputation of the whole sequence at every step, greedy
 * and sampled decoding, eos, LoRA, and the top-p sampler's distribution.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { argmax, generate, sampleToken } from '../../engine/generate/generate.ts';
import { KvCache } from '../../engine/generate/kv-cache.ts';
import { forwardLogits } from '../../engine/model/llama.ts';
import { mergeLora } from '../../engine/model/lora.ts';
import { LORA_TARGET_ORDER } from '../../engine/model/lora.ts';
import type { FloatArray, LoraWeights, ModelWeights } from '../../engine/model/types.ts';
import { Rng } from '../../engine/util/rng.ts';
import { randomLora, tinyWeights, type TinyOptions } from '../helpers/tiny-weights.ts';

/** Decodes step by step with the cache and, at each step, compares its logits with a full forward of the prefix. */
function compareCachedWithFull(model: ModelWeights, lora: LoraWeights | null, prompt: number[], steps: number, tol: number): number[] {
  const V = model.config.vocabSize;
  const F = model.embedTokens instanceof Float32Array ? Float32Array : Float64Array;
  const cache = new KvCache(model.config, prompt.length + steps, F);
  const seq = prompt.slice();
  let cached = forwardLogits(model, lora, Int32Array.from(prompt), 1, prompt.length, { cache, lastOnly: true });
  for (let s = 0; s < steps; s++) {
    const full = forwardLogits(model, lora, Int32Array.from(seq), 1, seq.length);
    const last = full.subarray((seq.length - 1) * V, seq.length * V);
    let scale = 0;
    let worst = 0;
    for (let j = 0; j < V; j++) {
      scale = Math.max(scale, Math.abs(last[j]));
      worst = Math.max(worst, Math.abs(last[j] - cached[j]));
    }
    assert.ok(worst <= tol * scale, `step ${s}: cached vs full logits differ by ${worst} (scale ${scale})`);
    const next = argmax(cached);
    assert.equal(next, argmax(last), `step ${s}: greedy token`);
    seq.push(next);
    if (s + 1 < steps) cached = forwardLogits(model, lora, Int32Array.of(next), 1, 1, { cache, lastOnly: true });
  }
  assert.equal(cache.length, prompt.length + steps - 1);
  return seq.slice(prompt.length);
}

const families: { name: string; opts: TinyOptions }[] = [
  { name: 'llama with llama3 scaling', opts: { family: 'llama', seed: 21, ropeScaling: { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8 } } },
  { name: 'qwen2', opts: { family: 'qwen2', seed: 22, tie: true } },
  { name: 'qwen3', opts: { family: 'qwen3', seed: 23 } },
  { name: 'mistral, sliding window 4 shorter than the sequence', opts: { family: 'mistral', seed: 24, slidingWindow: 4 } },
];

describe('KV cache: incremental decoding equals full recomputation', () => {
  for (const f of families) {
    for (const F of [Float64Array, Float32Array]) {
      it(`${f.name} (${F.name}), with LoRA`, () => {
        const model = tinyWeights({ ...f.opts, ArrayCtor: F, vocab: 29 });
        const lora = randomLora(model.config, { r: 2, alpha: 4, dropout: 0.1, targets: [...LORA_TARGET_ORDER], rslora: false }, 5, F);
        const tol = F === Float64Array ? 1e-12 : 1e-5;
        const tokens = compareCachedWithFull(model, lora, [1, 7, 12, 3], 8, tol);
        const generated = generate(model, lora, [1, 7, 12, 3], { maxNewTokens: 8, temperature: 0, topP: 1, seed: 0, eosTokenIds: [] });
        assert.deepEqual(generated, tokens);
      });
    }
  }

  it('rejects decoding past the cache capacity', () => {
    const model = tinyWeights({ family: 'llama', seed: 25 });
    const cache = new KvCache(model.config, 3, Float64Array);
    forwardLogits(model, null, Int32Array.from([1, 2]), 1, 2, { cache, lastOnly: true });
    assert.throws(() => forwardLogits(model, null, Int32Array.from([3, 4]), 1, 2, { cache }), /exceed the capacity of 3/);
  });
});

describe('generate', () => {
  const model = tinyWeights({ family: 'qwen2', seed: 26, vocab: 31 });

  it('greedy decoding with LoRA equals greedy decoding of the merged model, and differs from the base', () => {
    const lora = randomLora(model.config, { r: 4, alpha: 16, dropout: 0, targets: ['q_proj', 'v_proj', 'down_proj'], rslora: false }, 6, Float64Array, 1);
    const opts = { maxNewTokens: 10, temperature: 0, topP: 1, seed: 1, eosTokenIds: [] };
    const withLora = generate(model, lora, [1, 5, 9], opts);
    assert.deepEqual(generate(mergeLora(model, lora), null, [1, 5, 9], opts), withLora);
    assert.equal(withLora.length, 10);
    assert.notDeepEqual(generate(model, null, [1, 5, 9], opts), withLora);
  });

  it('stops after an eos token and honours onToken', () => {
    const opts = { maxNewTokens: 12, temperature: 0, topP: 1, seed: 1, eosTokenIds: [] as number[] };
    const free = generate(model, null, [1, 4], opts);
    const eos = free[3];
    const stopped = generate(model, null, [1, 4], { ...opts, eosTokenIds: [eos] });
    assert.deepEqual(stopped, free.slice(0, free.indexOf(eos) + 1));
    const seen: number[] = [];
    const early = generate(model, null, [1, 4], { ...opts, onToken: (id) => seen.push(id) < 2 });
    assert.deepEqual(early, free.slice(0, 2));
    assert.deepEqual(seen, early);
    assert.deepEqual(generate(model, null, [1, 4], { ...opts, maxNewTokens: 0 }), []);
  });

  it('sampling is reproducible from the seed; a tiny top-p is greedy', () => {
    const opts = { maxNewTokens: 12, temperature: 1.5, topP: 0.95, seed: 42, eosTokenIds: [] };
    const a = generate(model, null, [1, 2, 3], opts);
    assert.deepEqual(generate(model, null, [1, 2, 3], opts), a);
    const others = [43, 44, 45].map((seed) => generate(model, null, [1, 2, 3], { ...opts, seed }));
    assert.ok(others.some((o) => o.join() !== a.join()), 'other seeds sample other tokens');
    const greedy = generate(model, null, [1, 2, 3], { ...opts, temperature: 0 });
    assert.deepEqual(generate(model, null, [1, 2, 3], { ...opts, topP: 1e-9 }), greedy);
  });

  it('rejects bad options with the field name', () => {
    const base = { maxNewTokens: 2, temperature: 0, topP: 1, seed: 0, eosTokenIds: [] };
    assert.throws(() => generate(model, null, [], base), /prompt is empty/);
    assert.throws(() => generate(model, null, [1, 31], base), /prompt token 1 = 31/);
    assert.throws(() => generate(model, null, [1], { ...base, topP: 0 }), /topP/);
    assert.throws(() => generate(model, null, [1], { ...base, temperature: -1 }), /temperature/);
  });
});

describe('sampleToken', () => {
  const logits = (ps: number[]): FloatArray => Float64Array.from(ps.map((p) => Math.log(p)));

  it('samples softmax(logits / T) restricted to the top-p nucleus', () => {
    const rng = new Rng(9);
    const n = 20000;
    const counts = [0, 0, 0, 0];
    // p = [0.1, 0.5, 0.3, 0.1]; nucleus for topP 0.7 = {1, 2} (0.5 < 0.7, then 0.8 ≥ 0.7): probabilities 5/8, 3/8
    for (let i = 0; i < n; i++) counts[sampleToken(logits([0.1, 0.5, 0.3, 0.1]), 1, 0.7, rng)]++;
    assert.equal(counts[0] + counts[3], 0);
    assert.ok(Math.abs(counts[1] / n - 5 / 8) < 0.015, `${counts[1] / n}`);
    // temperature 2 flattens: p ∝ sqrt(p) = sqrt([0.1, 0.5, 0.3, 0.1])
    const flat = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) flat[sampleToken(logits([0.1, 0.5, 0.3, 0.1]), 2, 1, rng)]++;
    const z = [0.1, 0.5, 0.3, 0.1].reduce((s, p) => s + Math.sqrt(p), 0);
    for (let j = 0; j < 4; j++) assert.ok(Math.abs(flat[j] / n - Math.sqrt([0.1, 0.5, 0.3, 0.1][j]) / z) < 0.015, `token ${j}: ${flat[j] / n}`);
  });

  it('is greedy (lowest index on ties) at temperature 0', () => {
    assert.equal(sampleToken(Float64Array.from([0.5, 2, 2, -1]), 0, 1, new Rng(1)), 1);
  });
});
