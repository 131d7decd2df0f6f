/**
 * One whole training step of the sample model on the native kernels against the same step on the portable
 * TypeScript ops (the reference the fallback runs): all seven LoRA targets, dropout, f32 and f16 frozen weights,
 * several steps of AdamW with clipping through CpuStepBackend. The native kernels sum in f32 and the portable ops in
 * f64, so the two agree to f32 rounding, stated as max |native − portable| / max |portable| per tensor: 1e-5 for
 * the loss, 1e-4 for each gradient and for the LoRA weights after three steps (AdamW divides by √v: where a gradient
 * is near 0, a rounding-level difference in it moves that element's update by a fraction of lr; measured 2.3e-5).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nativeModelOps } from '../../engine/backend/cpu/cpu-ops.ts';
import { portableOps } from '../../engine/backend/cpu/portable-ops.ts';
import { loadModel } from '../../engine/io/hf-model.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import { lossAndGrads, shiftLabels } from '../../engine/model/llama.ts';
import { forEachPair, newLora } from '../../engine/model/lora.ts';
import type { ModelOps } from '../../engine/model/ops.ts';
import type { Batch, FloatArray, LoraTargetName, LoraWeights, ModelWeights } from '../../engine/model/types.ts';
import { AdamW } from '../../engine/train/adamw.ts';
import { CpuStepBackend } from '../../engine/train/cpu-trainer-backend.ts';
import { loraTensors } from '../../engine/train/lora-params.ts';
import { Rng } from '../../engine/util/rng.ts';
import { tinyTrainerSettings } from '../helpers/tiny-trainer.ts';

const sample = await ensureSample();
const native = nativeModelOps();
assert.ok(native, 'the native cpu kernels are not loaded (scripts/test.mjs builds them: npm run build:native)');
const nativeKernels: ModelOps = native;
const portable = portableOps(false);
const TARGETS: LoraTargetName[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

function relDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < want.length; i++) {
    if (!Number.isFinite(got[i])) return Infinity;
    d = Math.max(d, Math.abs(got[i] - want[i]));
    m = Math.max(m, Math.abs(want[i]));
  }
  return d / Math.max(m, 1e-30);
}

function randomLora(model: ModelWeights): LoraWeights {
  const lora = newLora(model.config, { r: 8, alpha: 16, dropout: 0.1, targets: TARGETS, rslora: false }, new Rng(1), Float32Array);
  const rng = new Rng(2);
  // B = 0 at init would make every dA zero: give B values so both halves of every pair are exercised.
  forEachPair(lora, (_t, _l, p) => {
    for (let i = 0; i < p.B.length; i++) p.B[i] = 0.05 * rng.normal();
  });
  return lora;
}

function batch(seed: number, B: number, T: number, vocab: number): Batch {
  const rng = new Rng(seed);
  const inputIds = Int32Array.from({ length: B * T }, () => rng.int(vocab));
  const labels = Int32Array.from(inputIds, (id, i) => (i % T < 3 ? -100 : id));
  return { batchSize: B, seqLen: T, inputIds, labels };
}

for (const frozenF16 of [false, true]) {
  test(`a training step (loss and every LoRA gradient) on the native kernels matches the portable ops${frozenF16 ? ' (f16 frozen weights)' : ''}`, () => {
    const model = loadModel(sample.modelDir, { dtype: Float32Array, frozenF16 });
    const lora = randomLora(model);
    const b = batch(3, 2, 45, model.config.vocabSize);
    const run = (ops: ModelOps) => lossAndGrads(model, lora, b, { training: true, dropoutRng: new Rng(7), checkpointing: true, ops });
    const n = run(nativeKernels);
    const p = run(portable);
    assert.equal(n.tokens, p.tokens);
    assert.ok(Math.abs(n.loss - p.loss) <= 1e-5 * p.loss, `loss: native ${n.loss}, portable ${p.loss}`);
    assert.ok(n.grads && p.grads);
    const pg = p.grads;
    let checked = 0;
    forEachPair(n.grads, (target, layer, pair) => {
      const want = pg.layers[layer][target];
      assert.ok(want);
      for (const half of ['A', 'B'] as const) {
        const rel = relDiff(pair[half], want[half]);
        assert.ok(rel <= 1e-4, `layer ${layer} ${target} d${half}: max |native − portable| / max |portable| = ${rel.toExponential(2)} > 1e-4`);
        checked++;
      }
    });
    assert.equal(checked, model.config.numLayers * TARGETS.length * 2);
  });
}

test('three optimizer steps through CpuStepBackend (accumulation, clipping, AdamW) agree native vs portable', async () => {
  const model = loadModel(sample.modelDir, { dtype: Float32Array });
  const settings = tinyTrainerSettings(sample.modelDir, { r: 8, alpha: 16, dropout: 0.1, targets: TARGETS }, { maxGradNorm: 0.5, weightDecay: 0.01 });
  const runSteps = async (ops: ModelOps): Promise<{ lora: LoraWeights; losses: number[] }> => {
    const lora = randomLora(model);
    const optimizer = new AdamW(loraTensors(lora).map((t) => t.data), { weightDecay: 0.01 });
    const backend = new CpuStepBackend(model, lora, optimizer, settings, ops);
    assert.equal(backend.deviceName, ops.name);
    const dropoutRng = new Rng(11);
    const losses: number[] = [];
    for (let s = 0; s < 3; s++) {
      const micro = [batch(20 + 2 * s, 2, 33, model.config.vocabSize), batch(21 + 2 * s, 1, 50, model.config.vocabSize)];
      const normalizer = micro.reduce((t, m) => t + shiftLabels(m).filter((x) => x !== -100).length, 0);
      const out = await backend.step({ micro, normalizer, lr: 1e-3, lossScale: 1 }, dropoutRng);
      assert.equal(out.skipped, false);
      losses.push(out.lossSum / normalizer);
    }
    return { lora, losses };
  };
  const n = await runSteps(nativeKernels);
  const p = await runSteps(portable);
  n.losses.forEach((l, i) => assert.ok(Math.abs(l - p.losses[i]) <= 1e-5 * p.losses[i], `step ${i + 1} loss: native ${l}, portable ${p.losses[i]}`));
  const pt = loraTensors(p.lora);
  loraTensors(n.lora).forEach((t, i) => {
    const want: FloatArray = pt[i].data;
    const rel = relDiff(t.data, want);
    assert.ok(rel <= 1e-4, `${t.key} after 3 steps: max |native − portable| / max |portable| = ${rel.toExponential(2)} > 1e-4`);
  });
});
