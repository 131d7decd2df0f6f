/**
 * The Train form's memory estimate: the request built from the form as typed is one the services accept (their
 * own schemas), mistyped fields that do not size memory do not hide it, sizing fields that do not parse are named;
 * and the stacked bar's parts add up to the engine's total for any run shape.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LORA_TARGETS, LoraSettingsSchema, TrainSettingsSchema, type LoraTarget } from '../../common/protocol.ts';
import { estimateTrainingMemory } from '../../engine/train/memory-estimate.ts';
import { estimateRequest, memoryFit, memorySegments, segmentPercents } from '../../renderer/src/runs/memory-view.ts';
import { defaultForm, type FormValues } from '../../renderer/src/stores/form.ts';
import { tinyConfig } from '../helpers/tiny-weights.ts';

function form(numbers: Partial<FormValues['numbers']>, extra: Partial<FormValues> = {}): FormValues {
  const f = defaultForm();
  return { ...f, ...extra, numbers: { ...f.numbers, ...numbers } };
}

test('estimateRequest: the default form gives params the services accept', () => {
  const r = estimateRequest(defaultForm(), '/models/tiny', 'cpu');
  assert.ok(r.ok);
  assert.equal(r.params.modelPath, '/models/tiny');
  assert.equal(r.params.backend, 'cpu');
  assert.ok(LoraSettingsSchema.safeParse(r.params.lora).success);
  assert.ok(TrainSettingsSchema.safeParse(r.params.train).success);
  const f = defaultForm();
  assert.equal(r.params.train.batchSize, Number(f.numbers['train.batchSize']));
  assert.equal(r.params.lora.r, Number(f.numbers['lora.r']));
  const auto = estimateRequest(defaultForm(), '/m');
  assert.ok(auto.ok && !('backend' in auto.params), 'without a resolved backend the services decide');
});

test('estimateRequest: a mistyped learning rate or step count still gives an estimate; a mistyped rank or batch is named', () => {
  const r = estimateRequest(form({ 'train.learningRate': '1e-', 'train.steps': '', 'lora.alpha': 'x', 'train.seed': '-1' }), '/m', 'cpu');
  assert.ok(r.ok, r.ok ? '' : r.message);
  assert.ok(TrainSettingsSchema.safeParse(r.params.train).success);
  assert.ok(LoraSettingsSchema.safeParse(r.params.lora).success);

  const rank = estimateRequest(form({ 'lora.r': '0' }), '/m', 'cpu');
  assert.equal(rank.ok, false);
  if (!rank.ok) assert.match(rank.message, /^lora\.r: rank must be at least 1/);
  const batch = estimateRequest(form({ 'train.batchSize': 'four' }), '/m', 'cpu');
  assert.equal(batch.ok, false);
  if (!batch.ok) assert.match(batch.message, /^train\.batchSize: /);
  const noTargets = estimateRequest(form({}, { targets: [] }), '/m', 'cpu');
  assert.equal(noTargets.ok, false);
  if (!noTargets.ok) assert.match(noTargets.message, /^lora\.targets: choose at least one target/);
  const noModel = estimateRequest(defaultForm(), '  ', 'cpu');
  assert.equal(noModel.ok, false);
  if (!noModel.ok) assert.match(noModel.message, /choose a model/);
});

test('estimateRequest carries the sizing choices: rank, targets, batch, length, checkpointing, precision', () => {
  const f = form({ 'lora.r': '32', 'train.batchSize': '2', 'train.maxSeqLen': '256', 'lora.dropout': '0' }, { targets: ['q_proj', 'down_proj'] });
  const r = estimateRequest({ ...f, compute: { backend: 'webgpu', precision: 'fp16', gradientCheckpointing: true, baseWeights: 'f32' } }, '/m', 'webgpu');
  assert.ok(r.ok);
  assert.equal(r.params.lora.r, 32);
  assert.deepEqual(r.params.lora.targets, ['q_proj', 'down_proj']);
  assert.equal(r.params.lora.dropout, 0);
  assert.equal(r.params.train.batchSize, 2);
  assert.equal(r.params.train.maxSeqLen, 256);
  assert.equal(r.params.train.gradientCheckpointing, true);
  assert.equal(r.params.train.precision, 'fp16');
});

test('memorySegments add up to the engine total for any shape, backend and checkpointing choice', () => {
  const targetsArb = fc.subarray([...LORA_TARGETS] as LoraTarget[], { minLength: 1 });
  fc.assert(
    fc.property(
      fc.record({
        r: fc.integer({ min: 1, max: 64 }),
        targets: targetsArb,
        dropout: fc.constantFrom(0, 0.1),
        batchSize: fc.integer({ min: 1, max: 8 }),
        maxSeqLen: fc.integer({ min: 8, max: 512 }),
        gradientCheckpointing: fc.boolean(),
        backend: fc.constantFrom('cpu' as const, 'webgpu' as const),
        datasetTokens: fc.integer({ min: 0, max: 100_000 }),
      }),
      (o) => {
        const model = tinyConfig({ family: 'llama', vocab: 97, hidden: 24, intermediate: 40, layers: 3, heads: 4, kvHeads: 2, tie: false });
        const e = estimateTrainingMemory(model, { lora: { r: o.r, targets: o.targets, dropout: o.dropout }, train: { batchSize: o.batchSize, maxSeqLen: o.maxSeqLen, gradientCheckpointing: o.gradientCheckpointing } }, { backend: o.backend, datasetTokens: o.datasetTokens });
        const segs = memorySegments(e);
        const sum = segs.reduce((a, s) => a + s.bytes, 0);
        assert.ok(Math.abs(sum - e.total) <= 1e-9 * e.total, `segments ${sum} vs total ${e.total}`);
        assert.ok(segs.every((s) => s.bytes > 0), 'no empty segment');
        assert.equal(segs.some((s) => s.key === 'data'), o.datasetTokens > 0);
        const pct = segmentPercents(segs);
        assert.ok(Math.abs(pct.reduce((a, b) => a + b, 0) - 100) < 1e-9);
        assert.equal(new Set(segs.map((s) => s.color)).size, segs.length, 'distinct colours');
      },
    ),
    { numRuns: 60 },
  );
});

test('memoryFit: over the machine, over what is free, or fine', () => {
  assert.equal(memoryFit(10, 8, 4), 'over');
  assert.equal(memoryFit(6, 8, 4), 'tight');
  assert.equal(memoryFit(3, 8, 4), 'ok');
  assert.equal(memoryFit(3, 0, 0), 'ok', 'unknown machine sizes never warn');
});
