/**
 * The cpu thread pool: products on shared memory split across 3 threads (rows, or columns for a few rows) give
 * bit-identical results to the single-threaded kernel, for f32 / f16-bits weights, f32 / f64 outputs, bias,
 * accumulate and alpha; and a whole training step of the sample model loaded into shared memory equals the step of
 * the same model loaded normally, loss and every gradient bit for bit.
 */
process.env.LORA_STUDIO_CPU_THREADS = '3';

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { matmulAB, matmulABt } from '../../engine/backend/cpu/matmul.ts';
import { isShared, sharedCtor, toShared } from '../../engine/backend/cpu/shared-arrays.ts';
import { configuredThreads, cpuPool } from '../../engine/backend/cpu/thread-pool.ts';
import { encodeF16 } from '../../engine/io/f16.ts';
import { loadModel } from '../../engine/io/hf-model.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import * as attention from '../../engine/model/attention.ts';
import { lossAndGrads } from '../../engine/model/llama.ts';
import { forEachPair, newLora } from '../../engine/model/lora.ts';
import { F16Array, type Batch, type FloatArray } from '../../engine/model/types.ts';
import { Rng } from '../../engine/util/rng.ts';

const SharedF32 = sharedCtor(Float32Array);
const SharedF64 = sharedCtor(Float64Array);

function randomInto<T extends FloatArray>(a: T, rng: Rng): T {
  for (let i = 0; i < a.length; i++) a[i] = rng.normal();
  return a;
}

function sameBits(got: FloatArray, want: FloatArray, what: string): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) assert.fail(`${what}: element ${i} is ${got[i]}, single-threaded ${want[i]}`);
}

test('the pool runs with the configured threads', () => {
  assert.equal(configuredThreads(), 3);
  assert.equal(cpuPool()?.threads, 3);
  assert.throws(() => configuredThreads({ LORA_STUDIO_CPU_THREADS: 'many' }), /LORA_STUDIO_CPU_THREADS must be a whole number from 1 to 256, got "many"/);
});

test('ABt split by rows: f32 weights, bias, accumulate, alpha', () => {
  const rng = new Rng(1);
  const [M, K, N] = [37, 300, 200];
  const a = randomInto(new SharedF32(M * K), rng);
  const b = randomInto(new SharedF32(N * K), rng);
  const bias = randomInto(new SharedF32(N), rng);
  const start = randomInto(new Float32Array(M * N), rng);
  const want = start.slice();
  matmulABt(want, a.slice(), b.slice(), bias.slice(), M, K, N, true, 0.5);
  const out = new SharedF32(M * N);
  out.set(start);
  matmulABt(out, a, b, bias, M, K, N, true, 0.5);
  sameBits(out, want, 'ABt rows');
});

test('ABt split by columns (two rows): f16-bits weights into an f64 output', () => {
  const rng = new Rng(2);
  const [M, K, N] = [2, 1100, 1000];
  const a = randomInto(new SharedF64(M * K), rng);
  const bits = encodeF16(randomInto(new Float32Array(N * K), rng));
  const want = new Float64Array(M * N);
  matmulABt(want, a.slice(), new F16Array(bits), null, M, K, N);
  const out = new SharedF64(M * N);
  const shared = new F16Array(toShared(bits));
  assert.ok(isShared(shared) && isShared(out) && isShared(a));
  matmulABt(out, a, shared, null, M, K, N);
  sameBits(out, want, 'ABt columns');
});

test('AB (dX = dY·W) split by rows, accumulating', () => {
  const rng = new Rng(3);
  const [M, N, K] = [40, 300, 200];
  const a = randomInto(new SharedF32(M * N), rng);
  const b = randomInto(new SharedF32(N * K), rng);
  const start = randomInto(new Float32Array(M * K), rng);
  const want = start.slice();
  matmulAB(want, a.slice(), b.slice(), M, N, K, true, 2);
  const out = new SharedF32(M * K);
  out.set(start);
  matmulAB(out, a, b, M, N, K, true, 2);
  sameBits(out, want, 'AB rows');
});

test('attention forward and backward split by heads (GQA, sliding window) equal the single-threaded ones', () => {
  for (const window of [null, 37]) {
    const shape = { batch: 2, queryLen: 96, keyLen: 96, nHeads: 6, nKvHeads: 2, headDim: 32, window };
    const rng = new Rng(window ?? 6);
    const qn = 2 * 96 * 6 * 32;
    const kn = 2 * 96 * 2 * 32;
    const [q, dO] = [randomInto(new SharedF64(qn), rng), randomInto(new SharedF64(qn), rng)];
    const [k, v] = [randomInto(new SharedF64(kn), rng), randomInto(new SharedF64(kn), rng)];
    const plain = (x: Float64Array): Float64Array => x.slice();
    const want = { out: new Float64Array(qn), lse: new Float64Array(2 * 6 * 96), dq: new Float64Array(qn), dk: new Float64Array(kn), dv: new Float64Array(kn) };
    attention.forward(want.out, want.lse, plain(q as Float64Array), plain(k as Float64Array), plain(v as Float64Array), shape);
    attention.backward(want.dq, want.dk, want.dv, plain(dO as Float64Array), want.out, want.lse, plain(q as Float64Array), plain(k as Float64Array), plain(v as Float64Array), shape);
    const got = { out: new SharedF64(qn), lse: new SharedF64(2 * 6 * 96), dq: new SharedF64(qn), dk: new SharedF64(kn), dv: new SharedF64(kn) };
    attention.forward(got.out, got.lse, q, k, v, shape);
    attention.backward(got.dq, got.dk, got.dv, dO, got.out, got.lse, q, k, v, shape);
    for (const name of ['out', 'lse', 'dq', 'dk', 'dv'] as const) sameBits(got[name], want[name], `attention ${name} (window ${window})`);
  }
});

test('a training step on the sample model in shared memory equals the single-threaded one bit for bit', async () => {
  const { modelDir } = await ensureSample();
  const plain = loadModel(modelDir);
  const shared = loadModel(modelDir, { shared: true });
  assert.ok(isShared(shared.lmHead) && !isShared(plain.lmHead));
  const lora = newLora(plain.config, { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj', 'down_proj'], rslora: false }, new Rng(4), Float32Array);
  const rng = new Rng(5);
  for (const layer of lora.layers) for (const p of Object.values(layer)) if (p) for (let i = 0; i < p.B.length; i++) p.B[i] = rng.normal() * 0.1;
  // Long enough that attention (4 × 4 heads × 128² × 16) is split too.
  const B = 4;
  const T = 128;
  const inputIds = Int32Array.from({ length: B * T }, () => rng.int(plain.config.vocabSize));
  const batch: Batch = { batchSize: B, seqLen: T, inputIds, labels: inputIds.slice() };
  const ref = lossAndGrads(plain, lora, batch, { training: true });
  const got = lossAndGrads(shared, lora, batch, { training: true });
  assert.ok(Object.is(got.loss, ref.loss), `loss ${got.loss} vs ${ref.loss}`);
  assert.ok(ref.grads && got.grads);
  const g = got.grads;
  forEachPair(ref.grads, (t, l, p) => {
    const q = g.layers[l][t];
    assert.ok(q);
    sameBits(q.A, p.A, `layers.${l}.${t}.lora_A`);
    sameBits(q.B, p.B, `layers.${l}.${t}.lora_B`);
  });
});
