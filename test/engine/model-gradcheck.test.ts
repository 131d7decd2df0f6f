/**
 * Whole-model checks on tiny random models of each family: LoRA gradients from lossAndGrads against central finite
 * differences of the loss (float64), and the invariants the trainer relies on (checkpointing and dropout determinism,
 * padding, normalizer/lossScale, gradient accumulation, merging).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countParameters, evalLoss, forwardLogits, lossAndGrads } from '../../engine/model/llama.ts';
import { forEachPair, LORA_TARGET_ORDER, mergeLora, newLora, zerosLike } from '../../engine/model/lora.ts';
import { IGNORE_INDEX, type Batch, type FloatArray, type LoraConfig, type LoraPair, type LoraWeights, type ModelWeights, type RopeScaling } from '../../engine/model/types.ts';
import { Rng } from '../../engine/util/rng.ts';
import { assertGradClose, numericGrad } from '../helpers/finite-diff.ts';
import { randomLora, tinyWeights, type TinyOptions } from '../helpers/tiny-weights.ts';

const llama3: RopeScaling = { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 };
const ALL: LoraConfig['targets'] = [...LORA_TARGET_ORDER];

/** Two sequences of 6: the second is right-padded (pad id 0, label −100) and has a masked prompt. */
function makeBatch(vocab: number, seed: number): Batch {
  const rng = new Rng(seed);
  const T = 6;
  const ids = Array.from({ length: 2 * T }, () => 3 + rng.int(vocab - 3));
  const labels = ids.slice();
  labels[T] = IGNORE_INDEX; // prompt token of sequence 2
  labels[T + 1] = IGNORE_INDEX;
  for (const p of [T + 4, T + 5]) {
    ids[p] = 0;
    labels[p] = IGNORE_INDEX;
  }
  return { batchSize: 2, seqLen: T, inputIds: Int32Array.from(ids), labels: Int32Array.from(labels) };
}

function sampleIndices(n: number, k: number, rng: Rng): number[] {
  const all = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  return all.slice(0, Math.min(n, k));
}

interface Case {
  name: string;
  model: TinyOptions;
  lora: LoraConfig;
}

const cases: Case[] = [
  { name: 'llama (llama3 rope scaling, untied)', model: { family: 'llama', ropeScaling: llama3, seed: 1 }, lora: { r: 2, alpha: 4, dropout: 0, targets: ALL, rslora: false } },
  { name: 'qwen2 (q/k/v bias, tied embeddings)', model: { family: 'qwen2', tie: true, seed: 2 }, lora: { r: 3, alpha: 8, dropout: 0, targets: ALL, rslora: false } },
  { name: 'qwen3 (q_norm/k_norm, rsLoRA)', model: { family: 'qwen3', seed: 3, heads: 4, kvHeads: 1, headDim: 6 }, lora: { r: 4, alpha: 8, dropout: 0, targets: ALL, rslora: true } },
  { name: 'mistral (sliding window 3 < T, tied)', model: { family: 'mistral', slidingWindow: 3, tie: true, seed: 4 }, lora: { r: 2, alpha: 2, dropout: 0, targets: ALL, rslora: false } },
];

/** Finite differences on a sample of every A and B entry of every adapted module. */
function checkLoraGrads(label: string, model: ModelWeights, lora: LoraWeights, grads: LoraWeights, loss: () => number, perTensor: number, seed: number): void {
  const rng = new Rng(seed);
  forEachPair(lora, (target, l, p) => {
    const g = grads.layers[l][target] as LoraPair;
    for (const which of ['A', 'B'] as const) {
      const idx = sampleIndices(p[which].length, perTensor, rng);
      const numeric = numericGrad(loss, p[which], idx);
      assertGradClose(`${label} layers.${l}.${target}.lora_${which}`, idx.map((i) => g[which][i]), numeric, 1e-6);
    }
  });
  void model;
}

describe('whole-model LoRA gradients vs finite differences (float64)', () => {
  for (const c of cases) {
    it(c.name, () => {
      const model = tinyWeights(c.model);
      const lora = randomLora(model.config, c.lora, 100);
      const batch = makeBatch(model.config.vocabSize, 7);
      const r = lossAndGrads(model, lora, batch, { training: true });
      assert.equal(r.tokens, 5 + 2); // seq 1: 5 targets; seq 2: labels at positions 2, 3 (positions 0, 1 masked; 4, 5 padding)
      assert.ok(r.grads !== null);
      const loss = (): number => evalLoss(model, lora, batch).loss;
      assert.ok(Math.abs(loss() - r.loss) < 1e-13);
      checkLoraGrads(c.name, model, lora, r.grads, loss, 5, 9);
    });
  }

  it('with LoRA dropout (training; the same dropout seed in every evaluation)', () => {
    const model = tinyWeights({ family: 'llama', ropeScaling: llama3, seed: 5 });
    const lora = randomLora(model.config, { r: 2, alpha: 4, dropout: 0.3, targets: ALL, rslora: false }, 101);
    const batch = makeBatch(model.config.vocabSize, 8);
    const state = new Rng(55).state();
    const run = (): ReturnType<typeof lossAndGrads> => lossAndGrads(model, lora, batch, { training: true, dropoutRng: Rng.fromState(state) });
    const r = run();
    assert.ok(r.grads !== null);
    // dropout is really on: the training loss differs from the eval loss
    assert.ok(Math.abs(r.loss - evalLoss(model, lora, batch).loss) > 1e-6);
    checkLoraGrads('dropout', model, lora, r.grads, () => run().loss, 4, 10);
  });
});

function bytesOf(a: FloatArray): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function assertSameBits(label: string, a: LoraWeights, b: LoraWeights): void {
  forEachPair(a, (target, l, p) => {
    const q = b.layers[l][target] as LoraPair;
    assert.ok(bytesOf(p.A).equals(bytesOf(q.A)), `${label}: layers.${l}.${target}.lora_A differs`);
    assert.ok(bytesOf(p.B).equals(bytesOf(q.B)), `${label}: layers.${l}.${target}.lora_B differs`);
  });
}

function maxRelDiff(a: LoraWeights, b: LoraWeights, factor = 1): number {
  let worst = 0;
  forEachPair(a, (target, l, p) => {
    const q = b.layers[l][target] as LoraPair;
    for (const w of ['A', 'B'] as const) for (let i = 0; i < p[w].length; i++) worst = Math.max(worst, Math.abs(p[w][i] - factor * q[w][i]) / Math.max(1e-12, Math.abs(p[w][i])));
  });
  return worst;
}

describe('training invariants', () => {
  for (const F of [Float64Array, Float32Array]) {
    it(`checkpointing gives bit-identical gradients with dropout (${F.name})`, () => {
      const model = tinyWeights({ family: 'qwen3', seed: 6, ArrayCtor: F, layers: 3 });
      const lora = randomLora(model.config, { r: 2, alpha: 4, dropout: 0.2, targets: ALL, rslora: false }, 102, F);
      const batch = makeBatch(model.config.vocabSize, 9);
      const plain = lossAndGrads(model, lora, batch, { training: true, dropoutRng: new Rng(77) });
      const ckpt = lossAndGrads(model, lora, batch, { training: true, dropoutRng: new Rng(77), checkpointing: true });
      assert.equal(plain.loss, ckpt.loss);
      assertSameBits('checkpointing', plain.grads as LoraWeights, ckpt.grads as LoraWeights);
      const again = lossAndGrads(model, lora, batch, { training: true, dropoutRng: new Rng(77) });
      assertSameBits('same dropout seed', plain.grads as LoraWeights, again.grads as LoraWeights);
      const other = lossAndGrads(model, lora, batch, { training: true, dropoutRng: new Rng(78) });
      assert.notEqual(other.loss, plain.loss, 'another dropout seed draws other masks');
    });
  }

  it('padding (label −100) changes neither loss nor gradients, whatever the pad ids', () => {
    const model = tinyWeights({ family: 'llama', seed: 7 });
    const lora = randomLora(model.config, { r: 2, alpha: 4, dropout: 0, targets: ['q_proj', 'v_proj', 'down_proj'], rslora: false }, 103);
    const ids = [5, 9, 4, 17, 8];
    const labels = [IGNORE_INDEX, 9, 4, 17, 8];
    const short: Batch = { batchSize: 1, seqLen: 5, inputIds: Int32Array.from(ids), labels: Int32Array.from(labels) };
    const padded = (pad: number): Batch => ({
      batchSize: 1,
      seqLen: 8,
      inputIds: Int32Array.from([...ids, pad, pad, pad]),
      labels: Int32Array.from([...labels, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]),
    });
    const a = lossAndGrads(model, lora, short, { training: true });
    for (const pad of [0, 21]) {
      const b = lossAndGrads(model, lora, padded(pad), { training: true });
      assert.equal(b.tokens, a.tokens);
      assert.ok(Math.abs(a.loss - b.loss) < 1e-13, `pad ${pad}: ${a.loss} vs ${b.loss}`);
      assert.ok(maxRelDiff(a.grads as LoraWeights, b.grads as LoraWeights) < 1e-10);
    }
  });

  it('lossScale and normalizer scale the gradient (not the loss); gradsInto accumulates', () => {
    const model = tinyWeights({ family: 'qwen2', seed: 8 });
    const lora = randomLora(model.config, { r: 2, alpha: 4, dropout: 0, targets: ALL, rslora: false }, 104);
    const batch = makeBatch(model.config.vocabSize, 10);
    const base = lossAndGrads(model, lora, batch, { training: true });
    const scaled = lossAndGrads(model, lora, batch, { training: true, lossScale: 6, normalizer: 3 * base.tokens });
    assert.equal(scaled.loss, base.loss);
    assert.ok(maxRelDiff(scaled.grads as LoraWeights, base.grads as LoraWeights, 2) < 1e-12);
    const acc = zerosLike(lora);
    lossAndGrads(model, lora, batch, { training: true, gradsInto: acc });
    const r = lossAndGrads(model, lora, batch, { training: true, gradsInto: acc });
    assert.equal(r.grads, acc);
    assert.ok(maxRelDiff(acc, base.grads as LoraWeights, 2) < 1e-12);
  });

  it('a fresh adapter (B = 0) leaves the model unchanged; merging equals the unmerged forward', () => {
    const model = tinyWeights({ family: 'qwen2', seed: 9 });
    const batch = makeBatch(model.config.vocabSize, 11);
    const fresh = newLora(model.config, { r: 4, alpha: 8, dropout: 0, targets: ALL, rslora: false }, new Rng(5), Float64Array);
    assert.equal(evalLoss(model, fresh, batch).loss, evalLoss(model, null, batch).loss);
    const noLora = lossAndGrads(model, null, batch, { training: true });
    assert.equal(noLora.grads, null);
    assert.equal(noLora.loss, evalLoss(model, null, batch).loss);
    const freshGrads = lossAndGrads(model, fresh, batch, { training: true }).grads as LoraWeights;
    // with B = 0 the A gradient is 0 and the B gradient is not (PEFT's init)
    let aNorm = 0;
    let bNorm = 0;
    forEachPair(freshGrads, (_t, _l, p) => {
      for (const v of p.A) aNorm += v * v;
      for (const v of p.B) bNorm += v * v;
    });
    assert.equal(aNorm, 0);
    assert.ok(bNorm > 0);
    const lora = randomLora(model.config, { r: 4, alpha: 8, dropout: 0, targets: ALL, rslora: true }, 105);
    const merged = mergeLora(model, lora);
    const a = forwardLogits(model, lora, batch.inputIds, 2, 6);
    const b = forwardLogits(merged, null, batch.inputIds, 2, 6);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    assert.ok(worst < 1e-12, `merged vs unmerged logits differ by ${worst}`);
    assert.notEqual(merged.layers[0].q.weight, model.layers[0].q.weight);
  });

  it('newLora draws A from U(−1/√in, 1/√in) and zero B', () => {
    const model = tinyWeights({ family: 'llama', seed: 10, hidden: 32, intermediate: 64, heads: 4 });
    const lora = newLora(model.config, { r: 8, alpha: 16, dropout: 0.05, targets: ['q_proj', 'down_proj'], rslora: false }, new Rng(1));
    assert.equal(lora.scaling, 2);
    const q = lora.layers[0].q_proj as LoraPair;
    const down = lora.layers[1].down_proj as LoraPair;
    assert.ok(q.A instanceof Float32Array && q.A.length === 8 * 32 && q.B.length === 32 * 8);
    assert.ok(q.B.every((v) => v === 0));
    for (const [p, inF] of [[q, 32], [down, 64]] as const) {
      const bound = 1 / Math.sqrt(inF);
      let max = 0;
      let sumSq = 0;
      for (const v of p.A) {
        max = Math.max(max, Math.abs(v));
        sumSq += v * v;
      }
      assert.ok(max <= bound && max > 0.9 * bound);
      const variance = sumSq / p.A.length; // U(−b, b) has variance b²/3
      assert.ok(Math.abs(variance / (bound * bound / 3) - 1) < 0.2, `variance ratio ${variance / (bound * bound / 3)}`);
    }
    assert.equal(lora.layers[0].k_proj, undefined);
  });

  it('counts parameters (tied lm_head once) and rejects bad input with names', () => {
    const untied = tinyWeights({ family: 'llama', seed: 11 });
    const tied = tinyWeights({ family: 'llama', seed: 11, tie: true });
    const c = untied.config;
    const H = c.hiddenSize;
    const perLayer = 2 * H + H * c.numHeads * c.headDim * 2 + 2 * H * c.numKvHeads * c.headDim + 3 * H * c.intermediateSize;
    assert.equal(countParameters(tied), c.vocabSize * H + H + c.numLayers * perLayer);
    assert.equal(countParameters(untied), countParameters(tied) + c.vocabSize * H);
    const batch = makeBatch(c.vocabSize, 12);
    const bad = { ...batch, inputIds: batch.inputIds.slice() };
    bad.inputIds[7] = c.vocabSize;
    assert.throws(() => evalLoss(untied, null, bad), /batch\.inputIds\[7\] \(sequence 1, position 1\) = 23/);
    const lora = randomLora(c, { r: 2, alpha: 4, dropout: 0, targets: ['v_proj'], rslora: false }, 1);
    (lora.layers[1].v_proj as LoraPair).B = new Float64Array(3);
    assert.throws(() => evalLoss(untied, lora, batch), /layers\.1\.v_proj\.lora_B has 3 values/);
    const dropLora = randomLora(c, { r: 2, alpha: 4, dropout: 0.1, targets: ['v_proj'], rslora: false }, 1);
    assert.throws(() => lossAndGrads(untied, dropLora, batch, { training: true }), /dropoutRng/);
    const broken = tinyWeights({ family: 'qwen2', seed: 12 });
    broken.layers[1].k.bias = null;
    assert.throws(() => evalLoss(broken, null, batch), /model\.layers\.1\.self_attn\.k_proj\.bias is missing/);
  });
});
