/**
 * The Train form's Base weights field: every choice has words, the form sends it as train.baseWeights, the memory
 * estimate the services answer for the form follows each choice (packed formats far below f32), a format the model
 * cannot hold is refused naming the field and the tensor, and forms and run configs kept before the field existed
 * (frozenWeightsF16) come back as f16.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BASE_WEIGHTS, DEFAULT_RUN_CONFIG, type RunConfig } from '../../common/protocol.ts';
import { migrateTrainFormSnapshot, TRAIN_FORM_SNAPSHOT_VERSION } from '../../common/train-form-snapshot.ts';
import { SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { BASE_WEIGHT_CHOICES, baseWeightsHint, missingBaseWeightChoices } from '../../renderer/src/components/base-weights-view.ts';
import { estimateRequest } from '../../renderer/src/runs/memory-view.ts';
import { keptFromSnapshot, snapshotOf } from '../../renderer/src/stores/form-storage.ts';
import { checkForm, defaultForm, formFromConfig, type FormValues } from '../../renderer/src/stores/form.ts';
import { refusal, tempStudios } from '../helpers/temp-studio.ts';

const { services } = tempStudios('base-weights-form-');
const s = services('estimate');

const withBase = (b: FormValues['compute']['baseWeights']): FormValues => {
  const f = defaultForm();
  return { ...f, compute: { ...f.compute, baseWeights: b } };
};

test('every base-weights setting has a label and a one-line hint', () => {
  assert.deepEqual(missingBaseWeightChoices(), []);
  assert.deepEqual(BASE_WEIGHT_CHOICES.map((c) => c.value), [...BASE_WEIGHTS]);
  for (const b of BASE_WEIGHTS) assert.ok(baseWeightsHint(b).length > 10, b);
  assert.match(BASE_WEIGHT_CHOICES.find((c) => c.value === 'nf4')!.label, /quantize at load to NF4/);
  assert.equal(BASE_WEIGHT_CHOICES.find((c) => c.value === 'as-stored')!.label, 'as stored');
});

test('the form sends its choice as train.baseWeights; the default is f32', () => {
  const d = checkForm(defaultForm(), '/m', '/d.jsonl');
  assert.ok(d.ok && d.config.train.baseWeights === 'f32');
  const q = checkForm(withBase('int4-g128'), '/m', '/d.jsonl');
  assert.ok(q.ok && q.config.train.baseWeights === 'int4-g128' && q.config.train.frozenWeightsF16 === false);
});

test('the memory estimate of the form follows each choice (sample model, cpu and webgpu)', async () => {
  for (const backend of ['cpu', 'webgpu'] as const) {
    const weights = new Map<string, number>();
    for (const b of ['f32', 'f16', 'as-stored', 'nf4'] as const) {
      const r = estimateRequest(withBase(b), SAMPLE_MODEL_DIR, backend);
      assert.ok(r.ok);
      assert.equal(r.params.train.baseWeights, b);
      weights.set(b, (await s.handle('runs.estimateMemory', r.params)).estimate.weights);
    }
    const [f32, f16, stored, nf4] = ['f32', 'f16', 'as-stored', 'nf4'].map((b) => weights.get(b)!);
    assert.equal(stored, f32, `${backend}: the sample folder is stored in F32`);
    // webgpu holds float weights in the activation dtype (fp32 here), whatever the host held them as.
    if (backend === 'cpu') assert.ok(f16 < f32, `cpu: f16 ${f16} < f32 ${f32}`);
    else assert.equal(f16, f32, 'webgpu fp32: float weights in f32 on the device');
    assert.ok(nf4 < f16, `${backend}: nf4 ${nf4} < f16 ${f16}`);
  }
});

test('a format the model cannot hold is refused by the estimate, naming the field and the tensor', async () => {
  const r = estimateRequest(withBase('q4_0'), SAMPLE_MODEL_DIR, 'cpu');
  assert.ok(r.ok);
  const e = await refusal(() => s.handle('runs.estimateMemory', r.params));
  assert.equal(e.info.field, 'train.baseWeights');
  assert.match(e.message, /mlp\.down_proj\.weight' \[64, 176\]/);
});

test('a form kept before base weights (frozenWeightsF16) and an old run config come back as f16', () => {
  const kept = migrateTrainFormSnapshot({ version: TRAIN_FORM_SNAPSHOT_VERSION, modelPath: '/m', datasetPath: '/d', numbers: {}, data: {}, compute: { frozenWeightsF16: true }, advanced: {} });
  assert.ok(kept);
  assert.equal(keptFromSnapshot(kept).form.compute.baseWeights, 'f16');
  const round = keptFromSnapshot(migrateTrainFormSnapshot(JSON.parse(JSON.stringify(snapshotOf({ modelPath: '', datasetPath: '', form: withBase('q8_0') }))))!);
  assert.equal(round.form.compute.baseWeights, 'q8_0');
  const old: RunConfig = { ...DEFAULT_RUN_CONFIG, modelPath: '/m', datasetPath: '/d', train: { ...DEFAULT_RUN_CONFIG.train, frozenWeightsF16: true } };
  assert.equal(formFromConfig(old).compute.baseWeights, 'f16');
});
