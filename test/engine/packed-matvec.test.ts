/**
 * Generation on packed weights (issue 11's decode, issue 12's packed throughput): the native matrix-vector products
 * for a few rows of x (M ≤ 4, decoding and the Playground) that decode each weight block in registers and dot it at
 * once. They take the panel path's values in its summation order, so for every format, ISA and thread count they
 * equal the f32 product on PackedWeight.dequantize() bit for bit (and, independently, the float64 product within f32
 * rounding), on odd shapes that cross the tiles, the tasks and the formats' blocks. Then a packed lm_head for the
 * logits (forwardLogits / generate `lmHead`), and bench/as-stored-model.ts on the real SmolLM2 Q4_1 GGUF: its Linears
 * and lm_head kept in the file's blocks give the logits and greedy tokens of the same file loaded dequantized.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nativeModelOps } from '../../engine/backend/cpu/cpu-ops.ts';
import { nativeStatus, type NativeCpu } from '../../engine/backend/cpu/native.ts';
import { generate, type GenerateOptions } from '../../engine/generate/generate.ts';
import { loadModel } from '../../engine/io/model-source.ts';
import { forwardLogits } from '../../engine/model/llama.ts';
import { PACKED_WTYPE } from '../../engine/model/packed-rows.ts';
import { floatWeight } from '../../engine/model/weight-array.ts';
import type { ModelOps } from '../../engine/model/ops.ts';
import type { ModelWeights } from '../../engine/model/types.ts';
import { PACKED_FORMATS, PackedWeight, type PackedFormat } from '../../engine/quant/packed-weight.ts';
import { Rng } from '../../engine/util/rng.ts';
import { loadAsStored } from '../../bench/as-stored-model.ts';
import { linearsOf, packModel, randomPacked } from '../helpers/packed-weights.ts';
import { realModelPath } from '../helpers/real-model.ts';
import { tinyWeights } from '../helpers/tiny-weights.ts';

const status = nativeStatus();
assert.ok(status.native, `the native cpu kernels are not loaded: ${status.reason} (build them with npm run build:native)`);
const native: NativeCpu = status.native;
const ops: ModelOps = nativeModelOps() ?? assert.fail('the native op set is not there');

function rand(n: number, rng: Rng, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = scale * rng.normal();
  return a;
}

function sameBits(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) assert.fail(`${what}: element ${i} is ${got[i]}, on the dequantized f32 weight ${want[i]}`);
}

/** [rows, cols]: rows odd and above one task's 32 (several tasks, tile edges); cols whole blocks, an odd count of them. */
function shapeOf(f: PackedFormat): [number, number] {
  if (f === 'q4_k' || f === 'q6_k') return [301, 768];
  if (f === 'nf4' || f === 'int4-g128') return [301, 201];
  return [301, 544];
}

interface Case {
  M: number;
  bias: Float32Array | null;
  alpha: number;
  accumulate: boolean;
}

function caseProduct(w: PackedWeight | Float32Array, x: Float32Array, c: Case, start: Float32Array, N: number, K: number, format: number | null): Float32Array {
  const out = Float32Array.from(start);
  native.gemmAbt(out, x, w instanceof PackedWeight ? w.bytes : w, c.bias, c.M, K, N, c.alpha, c.accumulate, format);
  return out;
}

test('native x·Wᵀ for M = 1–4 rows (the fused decode-and-dot) equals the f32 product on the dequantized W bit for bit: every format, ISA, 1/2/3 threads, bias/alpha/accumulate', () => {
  const threads = native.info().threads;
  const isa = native.info().isa;
  const rng = new Rng(3);
  try {
    for (const f of PACKED_FORMATS) {
      const [N, K] = shapeOf(f);
      const w = randomPacked(f, N, K, 40 + PACKED_FORMATS.indexOf(f));
      const deq = w.dequantize();
      for (const M of [1, 2, 3, 4, 5]) {
        const x = rand(M * K, rng);
        const start = rand(M * N, rng);
        const cases: Case[] = [
          { M, bias: null, alpha: 1, accumulate: false },
          { M, bias: rand(N, rng), alpha: 0.75, accumulate: true },
        ];
        for (const c of cases) {
          native.setIsa(isa);
          native.setThreads(1);
          const want = caseProduct(deq, x, c, start, N, K, null);
          // Independently: the float64 product, within f32 rounding of the sums.
          for (let i = 0; i < M; i++)
            for (let j = 0; j < N; j++) {
              let s = 0;
              let mag = 0;
              for (let k = 0; k < K; k++) {
                const t = x[i * K + k] * deq[j * K + k];
                s += t;
                mag += Math.abs(t);
              }
              const b = c.bias ? c.bias[j] : 0;
              const ref = (c.accumulate ? start[i * N + j] : 0) + c.alpha * s + b;
              const err = Math.abs(want[i * N + j] - ref);
              const bound = 1e-5 * (mag + Math.abs(b) + Math.abs(start[i * N + j])) + 1e-30;
              if (!(err <= bound)) assert.fail(`${f} M=${M}: output (${i}, ${j}) = ${want[i * N + j]}, float64 ${ref} (error ${err} > ${bound})`);
            }
          for (const other of native.info().isas) {
            assert.ok(native.setIsa(other));
            for (const t of [1, 2, 3]) {
              native.setThreads(t);
              sameBits(caseProduct(w, x, c, start, N, K, PACKED_WTYPE[f]), want, `${f} [${N}, ${K}] M=${M} ${other} ${t} threads${c.bias ? ' bias, alpha, accumulate' : ''}`);
            }
          }
        }
      }
    }
  } finally {
    native.setThreads(threads);
    native.setIsa(isa);
  }
});

test('a packed lm_head for the logits (forwardLogits / generate lmHead) gives the logits and greedy tokens of its dequantized twin; a wrong shape is refused', () => {
  const base = tinyWeights({ family: 'llama', vocab: 96, hidden: 256, intermediate: 512, layers: 2, heads: 4, kvHeads: 2, headDim: 64, ArrayCtor: Float32Array, seed: 8 });
  const { packed } = packModel(base, 'q4_1', 3);
  const V = base.config.vocabSize;
  const H = base.config.hiddenSize;
  for (const f of ['q8_0', 'q4_k'] as const) {
    const lmHead = f === 'q4_k' ? randomPacked(f, V, H, 9, 0.3) : PackedWeight.quantize(f, floatWeight(base.lmHead) as Float32Array, V, H);
    const twin: ModelWeights = { ...packed, lmHead: lmHead.dequantize() };
    const ids = Int32Array.of(3, 14, 15, 92, 6);
    sameBits(forwardLogits(packed, null, ids, 1, 5, { ops, lmHead }), forwardLogits(twin, null, ids, 1, 5, { ops }), `${f} lm_head logits`);
    const opts: GenerateOptions = { maxNewTokens: 10, temperature: 0, topP: 1, seed: 1, eosTokenIds: [], ops };
    const want = generate(twin, null, [5, 9, 17], opts);
    assert.equal(want.length, 10);
    assert.deepEqual(generate(packed, null, [5, 9, 17], { ...opts, lmHead }), want, `${f} lm_head: greedy tokens`);
  }
  const wrong = PackedWeight.quantize('q8_0', new Float32Array((V - 1) * H), V - 1, H);
  assert.throws(() => forwardLogits(packed, null, Int32Array.of(1), 1, 1, { ops, lmHead: wrong }), /lm_head given for the logits is a q8_0 \[95, 256\] matrix, expected \[vocab 96, hidden 256\]/);
});

test('bench as-stored on the real SmolLM2 Q4_1 GGUF: Linears and lm_head in the file\'s blocks give the logits and greedy tokens of the dequantized load', () => {
  const path = realModelPath();
  const stored = loadAsStored(path, false);
  const linears = linearsOf(stored.model);
  assert.ok(linears.every((l) => l.weight instanceof PackedWeight && l.weight.format === 'q4_1'), 'every Linear of the file is q4_1, kept packed');
  assert.ok(stored.lmHead instanceof PackedWeight && stored.lmHead.format === 'q8_0', 'the tied lm_head (token_embd) is q8_0, kept packed');
  assert.deepEqual(stored.stored, { f16: 1, q4_1: linears.length, 'lm_head q8_0': 1 });
  // The same file dequantized to f32 (q/k rows unpermuted by the loader's own path), with the as-stored model's f16
  // embedding table (the one thing as-stored rounds) and the dequantized lm_head: the same numbers in f32.
  const f32 = loadModel(path, { dtype: Float32Array });
  const twin: ModelWeights = { ...f32, embedTokens: stored.model.embedTokens, lmHead: f32.lmHead };
  const ids = Int32Array.of(1, 504, 3458, 314, 260, 3575, 30);
  sameBits(forwardLogits(stored.model, null, ids, 1, ids.length, { ops, lmHead: stored.lmHead, lastOnly: true }), forwardLogits(twin, null, ids, 1, ids.length, { ops, lastOnly: true }), 'real model last logits');
  const opts: GenerateOptions = { maxNewTokens: 8, temperature: 0, topP: 1, seed: 1, eosTokenIds: [], ops };
  const want = generate(twin, null, [...ids], opts);
  assert.equal(want.length, 8);
  assert.deepEqual(generate(stored.model, null, [...ids], { ...opts, lmHead: stored.lmHead }), want);
});
