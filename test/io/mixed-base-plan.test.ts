/**
 * A mixed base plan (train.baseWeightsKeep, the quantization lab's "keep these layers at higher precision"): the kept
 * layers' seven linears load as the kept format (f16 bits of the file's values, or q8_0 blocks) and every other layer
 * as the base format; a step's loss and LoRA gradients on that model equal, bit for bit, the step on the same weights
 * dequantized to f32 (native kernels); the memory estimate counts the kept layers' bytes; settings the plan cannot
 * take are refused naming train.baseWeightsKeep; the lab's plan translates to a training base the same way for the
 * page and the CLI.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { labTrainingPlan } from '../../common/lab-plan.ts';
import { BaseWeightsKeepSchema } from '../../common/protocol.ts';
import { nativeModelOps } from '../../engine/backend/cpu/cpu-ops.ts';
import { BaseWeightsError, describeBase, LINEAR_TARGETS, linearName, planBaseWeights } from '../../engine/io/base-weights.ts';
import { tinyHfConfig, writeRandomModel } from '../../engine/io/make-model.ts';
import { basePlanOf, loadModel } from '../../engine/io/model-source.ts';
import { lossAndGrads } from '../../engine/model/llama.ts';
import { forEachPair, newLora } from '../../engine/model/lora.ts';
import { F16Array, type Batch, type Linear, type LinearWeight, type ModelWeights } from '../../engine/model/types.ts';
import { floatWeight } from '../../engine/model/weight-array.ts';
import { encodeF16 } from '../../engine/io/f16.ts';
import { packedSizeBytes, PackedWeight } from '../../engine/quant/packed-weight.ts';
import { estimateTrainingMemory } from '../../engine/train/memory-estimate.ts';
import { Rng } from '../../engine/util/rng.ts';

const root = mkdtempSync(join(tmpdir(), 'mixed-base-'));
after(() => rmSync(root, { recursive: true, force: true }));

// Rows of 128 and 256: every format's block divides them. Three layers, GQA.
const dir = join(root, 'hf');
writeRandomModel(dir, tinyHfConfig('llama', { hidden_size: 128, intermediate_size: 256, head_dim: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 3 }), { seed: 11 });
const f32 = loadModel(dir, { dtype: Float32Array });
const config = f32.config;

const linears = (m: ModelWeights, l: number): Linear[] => {
  const L = m.layers[l];
  return [L.q, L.k, L.v, L.o, L.gate, L.up, L.down];
};

function sameBits(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) assert.fail(`${what}: element ${i} is ${got[i]}, expected ${want[i]}`);
}

test('the plan holds the kept layers as kept and the others as the base; describeBase says so', () => {
  const plan = planBaseWeights(config, 'q4_0', null, { layers: [2, 0], as: 'q8_0' });
  for (const t of LINEAR_TARGETS) {
    assert.equal(plan.linear(0, t), 'q8_0');
    assert.equal(plan.linear(1, t), 'q4_0');
    assert.equal(plan.linear(2, t), 'q8_0');
  }
  assert.equal(plan.embedding, 'q8_0', 'embed_tokens as under the plain setting');
  assert.equal(describeBase({ baseWeights: 'q4_0', keep: { layers: [0, 2], as: 'q8_0' } }), 'q4_0 with layers 0, 2 kept as q8_0');
  assert.equal(describeBase({ baseWeights: 'nf4', keep: null }), 'nf4');
  // basePlanOf (what preflight and the memory estimate use) takes the same plan from the folder's headers.
  assert.equal(basePlanOf(dir, 'q4_0', { layers: [1], as: 'f16' }).linear(1, 'down_proj'), 'f16');
});

test('loaded: kept layers are f16 bits of the file (or q8_0 blocks), the others the base format quantized from the file', () => {
  const mixed = loadModel(dir, { dtype: Float32Array, baseWeights: 'nf4', baseWeightsKeep: { layers: [1], as: 'f16' } });
  for (let l = 0; l < config.numLayers; l++) {
    linears(mixed, l).forEach((lin, i) => {
      const want = floatWeight(linears(f32, l)[i].weight) as Float32Array;
      const name = linearName(l, LINEAR_TARGETS[i]);
      if (l === 1) {
        assert.ok(lin.weight instanceof F16Array, `${name} kept as f16`);
        sameBits(lin.weight.bits, encodeF16(want), name);
      } else {
        assert.ok(lin.weight instanceof PackedWeight && lin.weight.format === 'nf4', `${name} is nf4`);
        assert.deepEqual(lin.weight.bytes, PackedWeight.quantize('nf4', want, lin.outFeatures, lin.inFeatures).bytes, name);
      }
    });
  }
  const q8 = loadModel(dir, { dtype: Float32Array, baseWeights: 'q4_1', baseWeightsKeep: { layers: [0, 2], as: 'q8_0' } });
  assert.deepEqual(
    linears(q8, 0).map((x) => (x.weight as PackedWeight).format),
    LINEAR_TARGETS.map(() => 'q8_0'),
  );
  assert.deepEqual(
    linears(q8, 1).map((x) => (x.weight as PackedWeight).format),
    LINEAR_TARGETS.map(() => 'q4_1'),
  );
});

test('a step on the mixed base equals the step on its weights dequantized to f32, loss and every LoRA gradient bit for bit', () => {
  const ops = nativeModelOps();
  assert.ok(ops, 'the native cpu kernels are not loaded (npm run build:native)');
  const mixed = loadModel(dir, { dtype: Float32Array, baseWeights: 'q4_0', baseWeightsKeep: { layers: [0], as: 'f16' } });
  const toF32 = (w: LinearWeight): Float32Array => floatWeight(w) as Float32Array;
  const twin: ModelWeights = {
    ...mixed,
    embedTokens: toF32(mixed.embedTokens),
    lmHead: mixed.lmHead === mixed.embedTokens ? toF32(mixed.embedTokens) : toF32(mixed.lmHead),
    layers: mixed.layers.map((L) => {
      const lin = (x: Linear): Linear => ({ ...x, weight: toF32(x.weight) });
      return { ...L, q: lin(L.q), k: lin(L.k), v: lin(L.v), o: lin(L.o), gate: lin(L.gate), up: lin(L.up), down: lin(L.down) };
    }),
  };
  if (mixed.lmHead === mixed.embedTokens) twin.lmHead = twin.embedTokens;
  const lora = newLora(config, { r: 4, alpha: 8, dropout: 0, targets: [...LINEAR_TARGETS], rslora: false }, new Rng(1), Float32Array);
  const rng = new Rng(2);
  forEachPair(lora, (_t, _l, p) => {
    for (let i = 0; i < p.B.length; i++) p.B[i] = 0.05 * rng.normal();
  });
  const ids = Int32Array.from({ length: 2 * 19 }, () => rng.int(config.vocabSize));
  const batch: Batch = { batchSize: 2, seqLen: 19, inputIds: ids, labels: Int32Array.from(ids, (id, i) => (i % 19 < 2 ? -100 : id)) };
  const run = (m: ModelWeights) => lossAndGrads(m, lora, batch, { training: true, dropoutRng: new Rng(7), checkpointing: true, ops });
  const a = run(mixed);
  const b = run(twin);
  assert.ok(Number.isFinite(b.loss) && b.loss > 0);
  assert.ok(Object.is(a.loss, b.loss), `loss: mixed ${a.loss}, dequantized ${b.loss}`);
  assert.ok(a.grads && b.grads);
  const want = b.grads;
  forEachPair(a.grads, (t, l, p) => {
    const w = want.layers[l][t];
    assert.ok(w);
    sameBits(p.A, w.A, `layer ${l} ${t} dA`);
    sameBits(p.B, w.B, `layer ${l} ${t} dB`);
  });
  // And the kept layer really changed the model: the all-q4_0 base gives another loss.
  const plain = loadModel(dir, { dtype: Float32Array, baseWeights: 'q4_0' });
  assert.notEqual(run(plain).loss, a.loss);
});

test('the memory estimate counts the kept layers at their own width', () => {
  const run = { lora: { r: 4, alpha: 8, dropout: 0, targets: [...LINEAR_TARGETS] }, train: { batchSize: 1, maxSeqLen: 32, baseWeights: 'q4_0' as const } };
  const plain = estimateTrainingMemory(config, run).weights;
  const mixed = estimateTrainingMemory(config, { ...run, train: { ...run.train, baseWeightsKeep: { layers: [1], as: 'f16' as const } } }).weights;
  let extra = 0;
  for (const lin of linears(f32, 1)) extra += lin.outFeatures * lin.inFeatures * 2 - packedSizeBytes('q4_0', lin.outFeatures, lin.inFeatures);
  assert.equal(mixed - plain, extra);
});

test('settings a mixed plan cannot take are refused naming train.baseWeightsKeep', () => {
  const refused = (f: () => unknown, message: RegExp): void => {
    assert.throws(f, (e: unknown) => e instanceof BaseWeightsError && e.field === 'train.baseWeightsKeep' && message.test(e.message));
  };
  refused(() => planBaseWeights(config, 'as-stored', null, { layers: [0], as: 'f16' }), /needs a base quantized at load .*already quantized/);
  refused(() => planBaseWeights(config, 'f32', null, { layers: [0], as: 'f16' }), /already held as floats/);
  refused(() => planBaseWeights(config, 'nf4', null, { layers: [3], as: 'f16' }), /layer 3 cannot be kept: the model has 3 layers \(0 to 2\)/);
  // A kept format whose block does not divide a row names the layer it was kept for.
  refused(() => planBaseWeights({ ...config, intermediateSize: 200 }, 'nf4', null, { layers: [1], as: 'q8_0' }), /base weights nf4 \(layer 1 kept as q8_0\): tensor 'model\.layers\.1\.mlp\.gate_proj\.weight'|layer 1 kept as q8_0\): tensor 'model\.layers\.1\.mlp\.down_proj\.weight'/);
  assert.equal(BaseWeightsKeepSchema.safeParse({ layers: [1, 1], as: 'f16' }).error?.issues[0].message, 'a layer is named twice');
  assert.equal(BaseWeightsKeepSchema.safeParse({ layers: [], as: 'f16' }).error?.issues[0].message, 'name at least one layer to keep');
  assert.match(BaseWeightsKeepSchema.safeParse({ layers: [0], as: 'int8' }).error?.issues[0].message ?? '', /kept layers must be held as one of f32, f16, q8_0/);
});

test("the lab's plan as a training base: report keys, sorted layers, formats training cannot hold refused with the reason", () => {
  assert.deepEqual(labTrainingPlan({ base: 'q4_0/on-quantized', high: 'q8_0/on-quantized', keepLayers: [5, 1] }), { ok: true, baseWeights: 'q4_0', keep: { layers: [1, 5], as: 'q8_0' } });
  assert.deepEqual(labTrainingPlan({ base: 'nf4', high: 'f16', keepLayers: [] }), { ok: true, baseWeights: 'nf4', keep: null });
  assert.match((labTrainingPlan({ base: 'int8', high: 'f16', keepLayers: [0] }) as { reason: string }).reason, /cannot quantize its base to int8/);
  assert.match((labTrainingPlan({ base: 'q4_0', high: 'int8', keepLayers: [0] }) as { reason: string }).reason, /cannot hold kept layers as int8/);
});
