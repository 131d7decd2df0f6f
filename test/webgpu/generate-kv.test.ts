/**
 * KV-cached generation on the webgpu backend.
 *
 * Kernels: ropeAt and attentionCached (new queries at a position offset against a cache) vs the cpu rope/attention
 * with the same offset (f32 1e-5, f16 1e-2); cache rows past the filled end hold huge values, so reading them fails.
 * matvec (the one-row products of a decode step) vs an f64 sum, for every split of a row across threads.
 * Session: after prefill and after every decode step, the last position's hidden row and logits equal a full
 * forward of the whole sequence (finalHidden, with lm_head in f64 on the host): fp32 1e-5, fp16 1e-2; GQA, q/k norm
 * (qwen3-style), a sliding window shorter than the sequence, LoRA with B ≠ 0, and a prompt prefilled in chunks
 * (checked against the cpu forwardLogits). Generation: greedy and sampled tokens equal the cpu generate(); the
 * memory estimate of a generation session equals what the allocator holds, KV cache included.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { attentionCached } from '../../engine/backend/webgpu/attention.ts';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { matvec } from '../../engine/backend/webgpu/matvec.ts';
import { estimateMemory, type SessionShape } from '../../engine/backend/webgpu/llama-memory.ts';
import { WebgpuLlama, type GenerationStep } from '../../engine/backend/webgpu/llama-step.ts';
import { ropeAt } from '../../engine/backend/webgpu/rope.ts';
import type { Runner } from '../../engine/backend/webgpu/runner.ts';
import { createTensor, download, tensorFrom, upload, type GpuDtype } from '../../engine/backend/webgpu/tensor.ts';
import { generate } from '../../engine/generate/generate.ts';
import { generateWebgpu } from '../../engine/generate/webgpu-generate.ts';
import * as cpuAttention from '../../engine/model/attention.ts';
import { forwardLogits } from '../../engine/model/llama.ts';
import * as cpuRope from '../../engine/model/rope.ts';
import { IGNORE_INDEX, type LoraWeights, type ModelConfig, type ModelWeights } from '../../engine/model/types.ts';
import { Rng } from '../../engine/util/rng.ts';
import { assertClose, gpuForTest, randn } from './gpu.ts';
import { ALL_TARGETS, randomLora, randomModel, tinyConfig } from './model.ts';

let ctx: GpuContext;
let runner: Runner;
before(async () => ({ ctx, runner } = await gpuForTest()));
after(() => ctx.destroy());

// ---------------------------------------------------------------------------------------------------------------
// Kernels

test('ropeAt rotates new tokens at a position offset like the cpu rope (f32 and f16)', async () => {
  const [T, heads, D, pos] = [3, 2, 16, 9];
  const tables = cpuRope.ropeTables({ headDim: D, ropeTheta: 10000, ropeScaling: null }, pos + T + 4, true);
  const x = randn(new Rng(1), T * heads * D);
  const want = new Float64Array(x.length);
  cpuRope.forward(want, x, tables, 1, T, heads, D, pos);
  for (const [dt, rtol] of [
    ['f32', 1e-5],
    ['f16', 1e-2],
  ] as const) {
    const tx = tensorFrom(ctx, 'x', x, dt);
    const cos = tensorFrom(ctx, 'cos', tables.cos, 'f32');
    const sin = tensorFrom(ctx, 'sin', tables.sin, 'f32');
    // A thunk, as the recorded decode program passes it.
    await runner.runOnce((p) => ropeAt(p, tx, cos, sin, { tokens: T, nHeads: heads, headDim: D }, () => pos));
    const [got] = await download(ctx, [tx]);
    assertClose(`ropeAt ${dt}`, got, want, rtol);
    for (const t of [tx, cos, sin]) ctx.allocator.destroy(t.buffer);
  }
});

async function checkCached(d: { Tq: number; Tk: number; capacity: number; nHeads: number; nKvHeads: number; headDim: number; window: number | null }, dt: GpuDtype, rtol: number): Promise<void> {
  const rng = new Rng(d.Tq * 31 + d.Tk);
  const kvDim = d.nKvHeads * d.headDim;
  const q = randn(rng, d.Tq * d.nHeads * d.headDim);
  const k = randn(rng, d.Tk * kvDim);
  const v = randn(rng, d.Tk * kvDim);
  const want = new Float64Array(q.length);
  cpuAttention.forward(want, null, q, k, v, { batch: 1, queryLen: d.Tq, keyLen: d.Tk, nHeads: d.nHeads, nKvHeads: d.nKvHeads, headDim: d.headDim, window: d.window });
  // Rows past the filled end: a kernel that read them would be dominated by them.
  const garbage = new Float32Array((d.capacity - d.Tk) * kvDim).fill(dt === 'f16' ? 3e4 : 1e6);
  const tk = createTensor(ctx, 'kcache', d.capacity * kvDim, dt);
  const tv = createTensor(ctx, 'vcache', d.capacity * kvDim, dt);
  upload(ctx, tk, k);
  upload(ctx, tv, v);
  if (garbage.length > 0) {
    upload(ctx, tk, garbage, d.Tk * kvDim);
    upload(ctx, tv, garbage, d.Tk * kvDim);
  }
  const tq = tensorFrom(ctx, 'q', q, dt);
  const to = createTensor(ctx, 'out', q.length, dt);
  await runner.runOnce((p) => attentionCached(p, to, tq, tk, tv, { queries: d.Tq, nHeads: d.nHeads, nKvHeads: d.nKvHeads, headDim: d.headDim, window: d.window }, d.Tk - d.Tq));
  const [got] = await download(ctx, [to]);
  assertClose(`attentionCached Tq=${d.Tq} Tk=${d.Tk} window=${d.window} ${dt}`, got, want, rtol);
  for (const t of [tk, tv, tq, to]) ctx.allocator.destroy(t.buffer);
}

test('attentionCached: queries at positions pos.. attend cached keys 0..pos+Tq−1 (GQA, window, f16)', async () => {
  // Keys span more than one 64-key tile; a decode step (Tq 1) and a prefill chunk after earlier ones (Tq 5).
  await checkCached({ Tq: 1, Tk: 70, capacity: 80, nHeads: 4, nKvHeads: 2, headDim: 16, window: null }, 'f32', 1e-5);
  await checkCached({ Tq: 5, Tk: 70, capacity: 72, nHeads: 4, nKvHeads: 1, headDim: 8, window: null }, 'f32', 1e-5);
  await checkCached({ Tq: 3, Tk: 75, capacity: 90, nHeads: 2, nKvHeads: 1, headDim: 8, window: 7 }, 'f32', 1e-5);
  // A whole prefill from position 0, head_dim above the 64 threads (two channels per thread).
  await checkCached({ Tq: 9, Tk: 9, capacity: 12, nHeads: 2, nKvHeads: 2, headDim: 80, window: null }, 'f32', 1e-5);
  await checkCached({ Tq: 2, Tk: 20, capacity: 24, nHeads: 2, nKvHeads: 2, headDim: 32, window: null }, 'f16', 1e-2);
});

test('matvec (the decode step\'s one-row products): every lane split, bias, alpha, accumulate, f16', async () => {
  const rng = new Rng(81);
  for (const [N, K, dt, rtol] of [
    [300, 40, 'f32', 1e-5],
    [7, 600, 'f32', 1e-5],
    [70, 33, 'f16', 1e-2],
  ] as const) {
    const x = randn(rng, K);
    const w = randn(rng, N * K);
    const bias = randn(rng, N);
    const y0 = randn(rng, N);
    const want = Float64Array.from({ length: N }, (_, n) => {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[k] * w[n * K + k];
      return 0.5 * s + bias[n] + y0[n];
    });
    for (const lanes of [1, 2, 8, 32, 256]) {
      const [tx, tw, tb, ty] = [tensorFrom(ctx, 'x', x, dt), tensorFrom(ctx, 'w', w, dt), tensorFrom(ctx, 'bias', bias, dt), tensorFrom(ctx, 'y', y0, dt)];
      await runner.runOnce((p) => matvec(p, { y: ty, x: tx, w: tw, N, K, alpha: 0.5, bias: tb, accumulate: true, lanes }));
      const [got] = await download(ctx, [ty]);
      assertClose(`matvec ${N}×${K} ${dt} lanes ${lanes}`, got, want, rtol);
      for (const t of [tx, tw, tb, ty]) ctx.allocator.destroy(t.buffer);
    }
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Session: prefill + decode against the full forward

/** lm_head · h in f64. */
function hostLogits(model: ModelWeights, h: ArrayLike<number>): Float64Array {
  const { vocabSize: V, hiddenSize: H } = model.config;
  const out = new Float64Array(V);
  const W = model.lmHead;
  if (!(W instanceof Float32Array || W instanceof Float64Array)) throw new Error('test models keep lm_head as a float array');
  for (let v = 0; v < V; v++) {
    let s = 0;
    for (let c = 0; c < H; c++) s += h[c] * W[v * H + c];
    out[v] = s;
  }
  return out;
}

async function fullLastRow(s: WebgpuLlama, seq: number[]): Promise<Float32Array> {
  const T = seq.length;
  const H = s.config.hiddenSize;
  const hidden = await s.finalHidden({ batchSize: 1, seqLen: T, inputIds: Int32Array.from(seq), labels: new Int32Array(T).fill(IGNORE_INDEX) });
  return hidden.slice((T - 1) * H, T * H);
}

async function stepsMatchFull(name: string, cfg: ModelConfig, lora: LoraWeights | null, precision: 'fp32' | 'fp16', rtol: number): Promise<void> {
  const model = randomModel(cfg, 41);
  const rng = new Rng(42);
  const prompt = Array.from({ length: 5 }, () => rng.int(cfg.vocabSize));
  const more = Array.from({ length: 6 }, () => rng.int(cfg.vocabSize));
  const total = prompt.length + more.length;
  const s = await WebgpuLlama.create({ kind: 'host', model }, lora, { precision, checkpointing: false, maxBatchSize: 1, maxSeqLen: total, training: false, kvCacheLen: total, gpu: ctx });
  try {
    const seq = [...prompt];
    const check = async (step: GenerationStep, at: string): Promise<void> => {
      const h = await fullLastRow(s, seq);
      assertClose(`${name} ${at}: hidden`, step.hidden, h, rtol);
      assertClose(`${name} ${at}: logits`, step.logits, hostLogits(model, h), rtol);
      if (precision === 'fp32') {
        // And against the cpu backend, which knows nothing of the device's kernels (fp32 rounding differs more).
        const cpu = forwardLogits(model, lora, Int32Array.from(seq), 1, seq.length, { lastOnly: true });
        assertClose(`${name} ${at}: logits vs cpu`, step.logits, cpu, 1e-4);
      }
    };
    await check(await s.prefill(prompt), 'prefill');
    assert.equal(s.cacheLength, prompt.length);
    for (const [i, id] of more.entries()) {
      seq.push(id);
      await check(await s.decode(id), `decode ${i}`);
    }
    assert.equal(s.cacheLength, total);
    await assert.rejects(s.decode(0), /11 cached \+ 1 new tokens exceed the capacity of 11/);
  } finally {
    s.destroy();
  }
}

const gqa = tinyConfig();
const qwen3 = tinyConfig({ family: 'qwen3', qkNorm: true, qkvBias: true, tieWordEmbeddings: true, numKvHeads: 1 });

test('fp32: prefill and every decode step equal a full forward (llama GQA, LoRA with B ≠ 0 on all targets)', async () => {
  assert.ok(gqa.numKvHeads < gqa.numHeads);
  await stepsMatchFull('llama', gqa, randomLora(gqa, { r: 4, alpha: 8, dropout: 0.1, targets: ALL_TARGETS, rslora: false }, 43), 'fp32', 1e-5);
});

test('fp32: the same with q/k norm, q/k/v bias and tied embeddings (qwen3-style), and with a sliding window', async () => {
  await stepsMatchFull('qwen3', qwen3, randomLora(qwen3, { r: 2, alpha: 4, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'down_proj'], rslora: false }, 44), 'fp32', 1e-5);
  await stepsMatchFull('mistral window 3', tinyConfig({ family: 'mistral', slidingWindow: 3 }), null, 'fp32', 1e-5);
});

test('fp16: prefill and decode equal the fp16 full forward within 1e-2', async () => {
  await stepsMatchFull('llama fp16', gqa, randomLora(gqa, { r: 4, alpha: 8, dropout: 0, targets: ALL_TARGETS, rslora: false }, 45), 'fp16', 1e-2);
  await stepsMatchFull('qwen3 fp16', qwen3, null, 'fp16', 1e-2);
});

test('a prompt longer than the activations is prefilled in chunks at increasing offsets', async () => {
  const model = randomModel(gqa, 51);
  const lora = randomLora(gqa, { r: 2, alpha: 4, dropout: 0, targets: ['q_proj', 'v_proj', 'o_proj'], rslora: false }, 52);
  const rng = new Rng(53);
  const prompt = Array.from({ length: 10 }, () => rng.int(gqa.vocabSize));
  // Rows for 4 tokens: chunks of 4, 4 and 2.
  const s = await WebgpuLlama.create({ kind: 'host', model }, lora, { precision: 'fp32', checkpointing: false, maxBatchSize: 1, maxSeqLen: 4, training: false, kvCacheLen: 12, gpu: ctx });
  try {
    const seq = [...prompt];
    const want = (): Float64Array | Float32Array => forwardLogits(model, lora, Int32Array.from(seq), 1, seq.length, { lastOnly: true });
    assertClose('chunked prefill logits', (await s.prefill(prompt)).logits, want(), 1e-4);
    seq.push(7);
    assertClose('decode after a chunked prefill', (await s.decode(7)).logits, want(), 1e-4);
    // A second prefill starts over.
    seq.splice(0, seq.length, 3, 1, 4);
    assertClose('prefill again', (await s.prefill(seq)).logits, want(), 1e-4);
    assert.equal(s.cacheLength, 3);
    await assert.rejects(s.prefill(Array.from({ length: 13 }, () => 1)), /13 prompt tokens exceed the KV cache capacity of 12/);
    await assert.rejects(s.decode(gqa.vocabSize), /decode: token 0 = 61 is outside the vocabulary \[0, 61\)/);
  } finally {
    s.destroy();
  }
  const plain = await WebgpuLlama.create({ kind: 'host', model }, null, { precision: 'fp32', checkpointing: false, maxBatchSize: 1, maxSeqLen: 4, training: false, gpu: ctx });
  try {
    await assert.rejects(plain.prefill([1]), /no KV cache \(create it with kvCacheLen/);
  } finally {
    plain.destroy();
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Generation against the cpu backend

test('generateWebgpu: greedy and sampled tokens equal the cpu generate() for 20 tokens (fp32, LoRA)', async () => {
  const model = randomModel(gqa, 61);
  const lora = randomLora(gqa, { r: 4, alpha: 16, dropout: 0, targets: ['q_proj', 'v_proj', 'gate_proj', 'down_proj'], rslora: false }, 62);
  const prompt = [1, 17, 5];
  const greedy = { maxNewTokens: 20, temperature: 0, topP: 1, seed: 1, eosTokenIds: [] };
  const want = generate(model, lora, prompt, greedy);
  assert.equal(want.length, 20);
  assert.ok(new Set(want).size > 3, `a varied continuation makes the comparison meaningful: ${want.join(' ')}`);
  assert.deepEqual(await generateWebgpu(model, lora, prompt, { ...greedy, gpu: ctx }), want);
  const sampled = { maxNewTokens: 20, temperature: 0.9, topP: 0.95, seed: 7, eosTokenIds: [] };
  const wantSampled = generate(model, lora, prompt, sampled);
  assert.notDeepEqual(wantSampled, want, 'sampling departs from greedy');
  assert.deepEqual(await generateWebgpu(model, lora, prompt, { ...sampled, gpu: ctx }), wantSampled);
  // Stops after an eos id and when onToken says so, as the cpu generate does.
  const eos = want[4];
  assert.deepEqual(await generateWebgpu(model, lora, prompt, { ...greedy, eosTokenIds: [eos], gpu: ctx }), want.slice(0, want.indexOf(eos) + 1));
  const seen: number[] = [];
  assert.deepEqual(await generateWebgpu(model, lora, prompt, { ...greedy, onToken: (id) => seen.push(id) < 3, gpu: ctx }), want.slice(0, 3));
  assert.deepEqual(seen, want.slice(0, 3));
  await assert.rejects(generateWebgpu(model, null, [], { ...greedy, gpu: ctx }), /prompt is empty/);
  await assert.rejects(generateWebgpu(model, null, [1], { ...greedy, topP: 0, gpu: ctx }), /topP must be in \(0, 1\]/);
  assert.equal(ctx.allocator.liveBytes, 0, 'every session released its buffers');
});

test('generateWebgpu greedy on a qwen3-style model equals the cpu generate()', async () => {
  const model = randomModel(qwen3, 63);
  const opts = { maxNewTokens: 20, temperature: 0, topP: 1, seed: 1, eosTokenIds: [] };
  assert.deepEqual(await generateWebgpu(model, null, [2, 9], { ...opts, gpu: ctx }), generate(model, null, [2, 9], opts));
});

// ---------------------------------------------------------------------------------------------------------------
// Memory

test('the memory estimate of a generation session equals the bytes it allocates, KV cache included', async () => {
  const cfg = tinyConfig({ numLayers: 3 });
  const model = randomModel(cfg, 71);
  const loraCfg = { r: 4, alpha: 8, dropout: 0, targets: ['q_proj' as const, 'v_proj' as const], rslora: false };
  const lora = randomLora(cfg, loraCfg, 72);
  const [seq, kvLen] = [8, 40];
  for (const precision of ['fp32', 'fp16'] as const) {
    const before = ctx.allocator.liveBytes;
    const shape: SessionShape = { precision, checkpointing: false, training: false, batch: 1, seq, ceChunkBytes: 64 * 1024 * 1024, kvCacheLen: kvLen };
    const s = await WebgpuLlama.create({ kind: 'host', model }, lora, { precision, checkpointing: false, maxBatchSize: 1, maxSeqLen: seq, training: false, kvCacheLen: kvLen, gpu: ctx });
    try {
      const est = estimateMemory(cfg, loraCfg, shape);
      assert.equal(ctx.allocator.liveBytes - before, est.total, `${precision}: estimate vs allocator`);
      // What the cache adds, in closed form: K and V per layer, and RoPE tables for the positions past `seq`.
      const kvDim = cfg.numKvHeads * cfg.headDim;
      const bytes = precision === 'fp16' ? 2 : 4;
      const withoutCache = estimateMemory(cfg, loraCfg, { ...shape, kvCacheLen: undefined }).total;
      assert.equal(est.total - withoutCache, 2 * cfg.numLayers * kvLen * kvDim * bytes + 2 * (kvLen - seq) * (cfg.headDim / 2) * 4);
      await s.prefill([1, 2, 3]);
      await s.decode(4);
    } finally {
      s.destroy();
    }
    assert.equal(ctx.allocator.liveBytes, before, `${precision}: destroy releases every buffer`);
  }
});
