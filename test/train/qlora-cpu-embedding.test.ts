/**
 * QLoRA on the cpu with embed_tokens and lm_head packed too (issue 12's memory target): the lookup decodes just the
 * rows it reads, to exactly dequantize()'s floats; the chunked cross-entropy multiplies by the packed lm_head a panel
 * at a time (portable) or through the packed gemms (native, replaying the addon's cross_entropy); so a step — loss,
 * every LoRA gradient, AdamW steps — and greedy generation on a model with a packed embedding / lm_head (tied and
 * untied, with packed or f32 linears) equal those on the model holding the dequantized copies, bit for bit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nativeChunkRows } from '../../engine/backend/cpu/native-ops.ts';
import { nativeModelOps } from '../../engine/backend/cpu/cpu-ops.ts';
import { portableOps } from '../../engine/backend/cpu/portable-ops.ts';
import { generate } from '../../engine/generate/generate.ts';
import { lossAndGrads } from '../../engine/model/llama.ts';
import { forEachPair, newLora } from '../../engine/model/lora.ts';
import { referenceOps, type ModelOps } from '../../engine/model/ops.ts';
import type { Batch, LoraTargetName, LoraWeights, ModelWeights } from '../../engine/model/types.ts';
import { floatWeight } from '../../engine/model/weight-array.ts';
import { PACKED_FORMATS, PackedWeight, type PackedFormat } from '../../engine/quant/packed-weight.ts';
import { AdamW } from '../../engine/train/adamw.ts';
import { CpuStepBackend } from '../../engine/train/cpu-trainer-backend.ts';
import { loraTensors } from '../../engine/train/lora-params.ts';
import { Rng } from '../../engine/util/rng.ts';
import { packModel, randomPacked } from '../helpers/packed-weights.ts';
import { tinyTrainerSettings } from '../helpers/tiny-trainer.ts';
import { tinyWeights } from '../helpers/tiny-weights.ts';

const native = nativeModelOps();
assert.ok(native, 'the native cpu kernels are not loaded (scripts/test.mjs builds them: npm run build:native)');
const OPS: [string, ModelOps][] = [['native', native], ['portable', portableOps(false)]];
const TARGETS: LoraTargetName[] = ['q_proj', 'v_proj', 'o_proj', 'gate_proj', 'down_proj'];
const V = 96;
const H = 256;

function sameBits(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) assert.fail(`${what}: element ${i} is ${got[i]} with the packed embedding, ${want[i]} with its dequantized copy`);
}

/** A [V, H] packed matrix of format f: quantized from the f32 one (K-quants: random blocks, which the studio only reads). */
function packedOf(f: PackedFormat, w: ArrayLike<number>, seed: number): PackedWeight {
  return f === 'q4_k' || f === 'q6_k' ? randomPacked(f, V, H, seed, 0.3) : PackedWeight.quantize(f, Float32Array.from(w), V, H);
}

/** The model with embed_tokens (and lm_head: the same matrix when tied, its own otherwise) packed, and its dequantized twin. */
function withPackedEmbedding(m: ModelWeights, f: PackedFormat): { packed: ModelWeights; dequantized: ModelWeights } {
  const embed = packedOf(f, floatWeight(m.embedTokens), 5);
  const head = m.config.tieWordEmbeddings ? embed : packedOf(f, floatWeight(m.lmHead), 6);
  const embedD = embed.dequantize();
  const headD = head === embed ? embedD : head.dequantize();
  return { packed: { ...m, embedTokens: embed, lmHead: head }, dequantized: { ...m, embedTokens: embedD, lmHead: headD } };
}

function base(tied: boolean): ModelWeights {
  const m = tinyWeights({ family: 'llama', vocab: V, hidden: H, intermediate: 512, layers: 2, heads: 4, kvHeads: 2, headDim: 64, ArrayCtor: Float32Array, seed: 8 });
  return { ...m, config: { ...m.config, tieWordEmbeddings: tied }, lmHead: tied ? m.embedTokens : Float32Array.from(floatWeight(m.embedTokens), (x, i) => 0.7 * x + 0.01 * Math.sin(i)) };
}

function randomLora(model: ModelWeights): LoraWeights {
  const lora = newLora(model.config, { r: 4, alpha: 8, dropout: 0.1, targets: TARGETS, rslora: false }, new Rng(1), Float32Array);
  const rng = new Rng(2);
  forEachPair(lora, (_t, _l, p) => {
    for (let i = 0; i < p.B.length; i++) p.B[i] = 0.05 * rng.normal();
  });
  return lora;
}

function batch(seed: number, B: number, T: number): Batch {
  const rng = new Rng(seed);
  const inputIds = Int32Array.from({ length: B * T }, () => rng.int(V));
  const labels = Int32Array.from(inputIds, (id, i) => (i % T < 2 ? -100 : id));
  return { batchSize: B, seqLen: T, inputIds, labels };
}

test('the embedding lookup of a packed table gives its dequantize() rows, every format and every ops; an id outside is refused', () => {
  const ids = Int32Array.from([0, 95, 17, 17, 3, 64, 1]);
  for (const f of PACKED_FORMATS) {
    const t = randomPacked(f, V, H, 3, 0.2);
    const d = t.dequantize();
    const want = new Float32Array(ids.length * H);
    ids.forEach((id, n) => want.set(d.subarray(id * H, (id + 1) * H), n * H));
    for (const [name, ops] of [...OPS, ['reference', referenceOps] as [string, ModelOps]]) {
      const got = new Float32Array(ids.length * H);
      ops.embedding(got, ids, t, ids.length, H);
      sameBits(got, want, `${f} ${name} lookup`);
      assert.throws(() => ops.embedding(new Float32Array(H), Int32Array.of(V), t, 1, H), /token id 96 at position 0 is outside the vocabulary \[0, 96\)/, `${name}`);
    }
  }
});

test('the cross-entropy with a packed lm_head, several chunks, forward and backward, equals it with the dequantized lm_head', () => {
  const rows = 23;
  const rng = new Rng(4);
  const hidden = Float32Array.from({ length: rows * H }, () => rng.normal());
  const targets = Int32Array.from({ length: rows }, (_, i) => (i % 5 === 1 ? -100 : rng.int(V)));
  for (const f of ['q8_0', 'q4_0', 'q6_k', 'nf4'] as const) {
    const w = randomPacked(f, V, H, 9, 0.2);
    const d = w.dequantize();
    for (const [name, ops] of OPS) {
      for (const chunkRows of [4, nativeChunkRows(V)]) {
        const s = { rows, hidden: H, vocab: V, chunkRows };
        const dp = new Float32Array(rows * H).fill(0.25);
        const dd = new Float32Array(rows * H).fill(0.25);
        const p = ops.crossEntropy(dp, hidden, w, targets, s, 0.125);
        const q = ops.crossEntropy(dd, hidden, d, targets, s, 0.125);
        assert.ok(Object.is(p.sumLoss, q.sumLoss) && p.count === q.count, `${f} ${name} chunk ${chunkRows}: loss ${p.sumLoss} vs ${q.sumLoss}`);
        sameBits(dp, dd, `${f} ${name} chunk ${chunkRows} dHidden`);
        assert.ok(Object.is(ops.crossEntropy(null, hidden, w, targets, s, 1).sumLoss, q.sumLoss), `${f} ${name}: loss only`);
      }
    }
  }
  assert.throws(() => native.crossEntropy(null, hidden, randomPacked('q8_0', V - 1, H, 1), targets, { rows, hidden: H, vocab: V, chunkRows: 4 }, 1), /lm_head has 24320 values, expected vocab 96 × hidden 256/);
});

for (const [name, ops] of OPS) {
  test(`${name}: loss and every LoRA gradient with a packed embedding / lm_head (tied, untied; f32 and packed linears) equal those with the dequantized copies`, () => {
    const b = batch(3, 2, 19);
    for (const tied of [true, false]) {
      for (const [f, linears] of [['q8_0', null], ['q4_0', 'q4_0'], ['q6_k', 'q4_k'], ['q4_1', null]] as const) {
        const start = linears === null ? base(tied) : packModel(base(tied), linears, 30).packed;
        const { packed, dequantized } = withPackedEmbedding(start, f);
        const lora = randomLora(start);
        const run = (m: ModelWeights) => lossAndGrads(m, lora, b, { training: true, dropoutRng: new Rng(7), checkpointing: true, ops });
        const p = run(packed);
        const d = run(dequantized);
        const what = `${tied ? 'tied' : 'untied'} ${f} embedding, ${linears ?? 'f32'} linears`;
        assert.ok(Number.isFinite(d.loss) && d.loss > 0, `${what}: a real loss`);
        assert.ok(Object.is(p.loss, d.loss), `${what} loss: packed ${p.loss}, dequantized ${d.loss}`);
        assert.ok(p.grads && d.grads);
        const dg = d.grads;
        let n = 0;
        forEachPair(p.grads, (t, l, pair) => {
          const want = dg.layers[l][t];
          assert.ok(want);
          sameBits(pair.A, want.A, `${what} layer ${l} ${t} dA`);
          sameBits(pair.B, want.B, `${what} layer ${l} ${t} dB`);
          n++;
        });
        assert.equal(n, 2 * TARGETS.length);
        const evalP = lossAndGrads(packed, lora, b, { training: false, ops });
        assert.ok(Object.is(evalP.loss, lossAndGrads(dequantized, lora, b, { training: false, ops }).loss), `${what}: evaluation loss`);
      }
    }
  });
}

test('two AdamW steps through CpuStepBackend with a packed q8_0 embedding and q4_0 linears equal those on the dequantized copies', async () => {
  const settings = tinyTrainerSettings('unused-model', { r: 4, alpha: 8, dropout: 0.1, targets: TARGETS }, { maxGradNorm: 0.5, weightDecay: 0.01 });
  const { packed, dequantized } = withPackedEmbedding(packModel(base(true), 'q4_0', 30).packed, 'q8_0');
  const steps = async (m: ModelWeights): Promise<{ lora: LoraWeights; losses: number[] }> => {
    const lora = randomLora(m);
    const backend = new CpuStepBackend(m, lora, new AdamW(loraTensors(lora).map((t) => t.data), { weightDecay: 0.01 }), settings);
    const rng = new Rng(11);
    const losses: number[] = [];
    for (let s = 0; s < 2; s++) {
      const out = await backend.step({ micro: [batch(20 + 2 * s, 2, 17), batch(21 + 2 * s, 1, 25)], normalizer: 50, lr: 1e-2, lossScale: 1 }, rng);
      assert.equal(out.skipped, false);
      losses.push(out.lossSum);
    }
    return { lora, losses };
  };
  const p = await steps(packed);
  const d = await steps(dequantized);
  assert.deepEqual(p.losses, d.losses);
  const dt = loraTensors(d.lora);
  loraTensors(p.lora).forEach((t, i) => sameBits(t.data, dt[i].data, `${t.key} after 2 steps`));
});

test('greedy generation with a packed embedding / lm_head gives the tokens of the dequantized copies (tied and untied)', () => {
  for (const tied of [true, false]) {
    for (const f of ['q8_0', 'q6_k'] as const) {
      const { packed, dequantized } = withPackedEmbedding(base(tied), f);
      const lora = randomLora(packed);
      for (const [name, ops] of OPS) {
        const opts = { maxNewTokens: 10, temperature: 0, topP: 1, seed: 1, eosTokenIds: [], ops };
        const want = generate(dequantized, lora, [5, 9, 17, 33], opts);
        assert.equal(want.length, 10);
        assert.deepEqual(generate(packed, lora, [5, 9, 17, 33], opts), want, `${tied ? 'tied' : 'untied'} ${f} ${name}`);
      }
    }
  }
});

test('a packed embedding of the wrong shape (same element count) is refused before anything runs, naming the tensor', () => {
  const m = base(false);
  const bad = PackedWeight.quantize('q8_0', Float32Array.from(floatWeight(m.embedTokens)), V / 2, H * 2);
  assert.throws(() => lossAndGrads({ ...m, embedTokens: bad }, null, batch(1, 1, 5), { training: false }), /model: model\.embed_tokens\.weight is a q8_0 \[48, 512\] matrix, expected \[96, 256\]/);
  assert.throws(() => lossAndGrads({ ...m, lmHead: bad }, null, batch(1, 1, 5), { training: false }), /model: lm_head\.weight is a q8_0 \[48, 512\] matrix, expected \[96, 256\]/);
});
