/**
 * QLoRA on the cpu backend, end to end: a model whose seven Linears per layer are PackedWeights (every packed format)
 * trains exactly as the same model with those weights dequantized to f32 — loss and every LoRA gradient bit for bit,
 * on the native kernels and on the portable ops; three AdamW steps through CpuStepBackend; a Trainer run stopped with a
 * checkpoint and resumed gives the adapter of the uninterrupted run (and of the run on the dequantized base); greedy
 * generation on the packed base gives the tokens of the dequantized one. Bit-identity holds because the kernels
 * decode panels to exactly dequantize()'s floats and run the f32 products in their usual order.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cpuOps, nativeModelOps } from '../../engine/backend/cpu/cpu-ops.ts';
import { portableOps } from '../../engine/backend/cpu/portable-ops.ts';
import { generate } from '../../engine/generate/generate.ts';
import { saveAdapter } from '../../engine/io/peft-adapter.ts';
import { countParameters, lossAndGrads } from '../../engine/model/llama.ts';
import { forEachPair, newLora } from '../../engine/model/lora.ts';
import type { ModelOps } from '../../engine/model/ops.ts';
import type { Batch, LoraTargetName, LoraWeights, ModelWeights } from '../../engine/model/types.ts';
import { PACKED_FORMATS, PackedWeight, type PackedFormat } from '../../engine/quant/packed-weight.ts';
import { AdamW } from '../../engine/train/adamw.ts';
import { CpuStepBackend } from '../../engine/train/cpu-trainer-backend.ts';
import { loraTensors } from '../../engine/train/lora-params.ts';
import { Trainer } from '../../engine/train/trainer.ts';
import { Rng } from '../../engine/util/rng.ts';
import { linearsOf, packModel } from '../helpers/packed-weights.ts';
import { randomExamples, tinyTrainerSettings } from '../helpers/tiny-trainer.ts';
import { tinyWeights } from '../helpers/tiny-weights.ts';

const native = nativeModelOps();
assert.ok(native, 'the native cpu kernels are not loaded (scripts/test.mjs builds them: npm run build:native)');
const OPS: [string, ModelOps][] = [['native', native], ['portable', portableOps(false)]];
const TARGETS: LoraTargetName[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** Every Linear's input a whole number of K-quant super-blocks (256), so every format fits; 2 layers, GQA. */
const base = tinyWeights({ family: 'llama', vocab: 64, hidden: 256, intermediate: 512, layers: 2, heads: 4, kvHeads: 2, headDim: 64, ArrayCtor: Float32Array, seed: 4 });
const models = new Map<PackedFormat, { packed: ModelWeights; dequantized: ModelWeights }>();
function modelsOf(f: PackedFormat): { packed: ModelWeights; dequantized: ModelWeights } {
  let m = models.get(f);
  if (!m) {
    m = packModel(base, f, 30);
    models.set(f, m);
  }
  return m;
}

function sameBits(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) assert.fail(`${what}: element ${i} is ${got[i]} on the packed base, ${want[i]} on the dequantized one`);
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
  const inputIds = Int32Array.from({ length: B * T }, () => rng.int(64));
  const labels = Int32Array.from(inputIds, (id, i) => (i % T < 2 ? -100 : id));
  return { batchSize: B, seqLen: T, inputIds, labels };
}

test('the packed models really are packed, and their dequantized twins hold different values than the f32 base', () => {
  for (const f of PACKED_FORMATS) {
    const { packed, dequantized } = modelsOf(f);
    assert.ok(linearsOf(packed).every((l) => l.weight instanceof PackedWeight && l.weight.format === f));
    assert.ok(linearsOf(dequantized).every((l) => l.weight instanceof Float32Array));
    const w0 = linearsOf(dequantized)[0].weight as Float32Array;
    const b0 = linearsOf(base)[0].weight as Float32Array;
    assert.ok(w0.some((x, i) => x !== b0[i]), `${f}: quantization changed the weights (the test compares against the dequantized base, not the f32 one)`);
  }
});

for (const [name, ops] of OPS) {
  test(`${name}: loss and every LoRA gradient of a step on a packed base equal the step on the dequantized base, every format`, () => {
    const b = batch(3, 2, 21);
    for (const f of PACKED_FORMATS) {
      const { packed, dequantized } = modelsOf(f);
      const lora = randomLora(base);
      const run = (m: ModelWeights) => lossAndGrads(m, lora, b, { training: true, dropoutRng: new Rng(7), checkpointing: true, ops });
      const p = run(packed);
      const d = run(dequantized);
      assert.ok(Number.isFinite(d.loss) && d.loss > 0, `${f}: a real loss`);
      assert.ok(Object.is(p.loss, d.loss), `${f} loss: packed ${p.loss}, dequantized ${d.loss}`);
      assert.ok(p.grads && d.grads);
      const dg = d.grads;
      let n = 0;
      forEachPair(p.grads, (t, l, pair) => {
        const want = dg.layers[l][t];
        assert.ok(want);
        sameBits(pair.A, want.A, `${f} layer ${l} ${t} dA`);
        sameBits(pair.B, want.B, `${f} layer ${l} ${t} dB`);
        n++;
      });
      assert.equal(n, 2 * TARGETS.length);
    }
  });
}

test('three AdamW steps through CpuStepBackend (accumulation, clipping) on a packed base equal those on the dequantized base', async () => {
  const settings = tinyTrainerSettings('unused-model', { r: 4, alpha: 8, dropout: 0.1, targets: TARGETS }, { maxGradNorm: 0.5, weightDecay: 0.01 });
  for (const f of ['q4_0', 'q4_k', 'nf4'] as const) {
    const { packed, dequantized } = modelsOf(f);
    const steps = async (m: ModelWeights): Promise<{ lora: LoraWeights; losses: number[] }> => {
      const lora = randomLora(base);
      const optimizer = new AdamW(loraTensors(lora).map((t) => t.data), { weightDecay: 0.01 });
      const backend = new CpuStepBackend(m, lora, optimizer, settings);
      assert.equal(backend.deviceName, cpuOps(m).name);
      const rng = new Rng(11);
      const losses: number[] = [];
      for (let s = 0; s < 3; s++) {
        const micro = [batch(20 + 2 * s, 2, 17), batch(21 + 2 * s, 1, 25)];
        const out = await backend.step({ micro, normalizer: 50, lr: 1e-2, lossScale: 1 }, rng);
        assert.equal(out.skipped, false);
        losses.push(out.lossSum);
      }
      return { lora, losses };
    };
    const p = await steps(packed);
    const d = await steps(dequantized);
    assert.deepEqual(p.losses, d.losses, `${f}: losses step by step`);
    const dt = loraTensors(d.lora);
    loraTensors(p.lora).forEach((t, i) => sameBits(t.data, dt[i].data, `${f} ${t.key} after 3 steps`));
  }
});

test('a Trainer on a packed base: stop at step 3 with a checkpoint, resume ⇒ the adapter of the uninterrupted run, equal to the dequantized run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qlora-cpu-'));
  try {
    const { packed, dequantized } = modelsOf('q4_1');
    const s = tinyTrainerSettings('unused-model', { dropout: 0.1, targets: ['q_proj', 'v_proj', 'down_proj', 'gate_proj'] }, { steps: 6, warmupSteps: 1, evalEverySteps: 3, validationPercent: 20, checkpointEverySteps: 2 });
    const train = randomExamples(11, 1);
    const validation = randomExamples(3, 2);
    const trainer = (m: ModelWeights, extra: Partial<ConstructorParameters<typeof Trainer>[0]> = {}): Trainer =>
      new Trainer({ model: m, settings: s, train, validation, padTokenId: 0, ...extra }, countParameters(m));
    const bytesOf = (t: Trainer, name: string): Buffer => {
      saveAdapter(join(dir, name), t.lora, { baseModelNameOrPath: 'base' });
      return readFileSync(join(dir, name, 'adapter_model.safetensors'));
    };
    const full = trainer(packed);
    const fr = await full.run();
    assert.equal(fr.status, 'done');
    const want = bytesOf(full, 'full');
    const deq = trainer(dequantized);
    const dr = await deq.run();
    assert.ok(bytesOf(deq, 'dequantized').equals(want), 'the packed run equals the run on the dequantized base');
    assert.deepEqual(fr.metrics.map((m) => m.loss), dr.metrics.map((m) => m.loss));

    const runDir = join(dir, 'run');
    let seen = 0;
    const first = trainer(packed, { runDir, onMetric: () => seen++, shouldStop: () => (seen === 3 ? { save: true } : null) });
    const r1 = await first.run();
    assert.equal(r1.status, 'stopped');
    assert.equal(r1.step, 3);
    const second = trainer(packed, { runDir, resume: true });
    assert.equal(second.resumedFromStep, 3);
    const r2 = await second.run();
    assert.equal(r2.status, 'done');
    assert.ok(bytesOf(second, 'resumed').equals(want), 'resumed adapter equals the uninterrupted one');
    assert.deepEqual(r2.metrics.map((m) => m.loss), fr.metrics.map((m) => m.loss), 'same losses, step by step');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('greedy generation on the cpu with a packed base (and a LoRA) gives the tokens of the dequantized base', () => {
  for (const f of PACKED_FORMATS) {
    const { packed, dequantized } = modelsOf(f);
    const lora = randomLora(base);
    for (const [name, ops] of OPS) {
      const opts = { maxNewTokens: 12, temperature: 0, topP: 1, seed: 1, eosTokenIds: [], ops };
      const want = generate(dequantized, lora, [5, 9, 17, 33], opts);
      assert.equal(want.length, 12);
      assert.deepEqual(generate(packed, lora, [5, 9, 17, 33], opts), want, `${f} ${name}`);
    }
  }
});

test('a packed Linear of the wrong shape is refused before anything runs, naming the tensor', () => {
  const { packed } = modelsOf('q8_0');
  const L = packed.layers[1];
  const w = L.q.weight as PackedWeight;
  // Same element count, rows and columns swapped differently: [128, 512] instead of [256, 256].
  const bad = new PackedWeight('q8_0', w.rows / 2, w.cols * 2, w.bytes);
  const model: ModelWeights = { ...packed, layers: [packed.layers[0], { ...L, q: { ...L.q, weight: bad } }] };
  assert.throws(() => lossAndGrads(model, null, batch(1, 1, 5), { training: false }), /model\.layers\.1\.self_attn\.q_proj\.weight is a q8_0 \[128, 512\] matrix, expected \[256, 256\]/);
});
