/**
 * Keeping the user's work and telling them the truth, as pure functions: the Train form's localStorage snapshot
 * (round trip, stale values), run settings files, the reasons Train is off, field labels in messages, epochs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeFieldError, fieldLabel } from '../../common/field-labels.ts';
import { DEFAULT_RUN_CONFIG, validateRunConfig, type DatasetSummary, type ModelSummary } from '../../common/protocol.ts';
import { stepsForEpochs, stepsPerEpoch } from '../../renderer/src/stores/epochs.ts';
import { FORM_STORAGE_KEY, loadKeptForm, saveKeptForm, type KeyValueStorage } from '../../renderer/src/stores/form-storage.ts';
import { checkForm, defaultForm, formFromConfig, type FormValues } from '../../renderer/src/stores/form.ts';
import { readSettingsFile, settingsFileText } from '../../renderer/src/stores/settings-file.ts';
import { trainBlockers, type TrainBlockerInput } from '../../renderer/src/stores/train-blockers.ts';

function memoryStorage(initial: Record<string, string> = {}): KeyValueStorage & { data: Map<string, string> } {
  const data = new Map(Object.entries(initial));
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) };
}

function edited(): FormValues {
  const f = defaultForm();
  return {
    numbers: { ...f.numbers, 'lora.r': '32', 'train.learningRate': '1e-', 'train.warmupSteps': '10', 'train.gradAccumulation': '4' },
    targets: ['q_proj', 'k_proj', 'down_proj'],
    data: { ...f.data, format: 'alpaca', packing: true, badRecords: 'skip' },
    compute: { ...f.compute, backend: 'cpu', precision: 'fp16' },
    advanced: { schedule: 'cosine', rslora: true },
  };
}

test('form storage: everything typed comes back after a reload, half-typed numbers included', () => {
  const storage = memoryStorage();
  const form = edited();
  saveKeptForm(storage, { form, modelPath: '/models/smol', datasetPath: '/data/chat.jsonl' });
  const back = loadKeptForm(storage);
  assert.deepEqual(back, { form, modelPath: '/models/smol', datasetPath: '/data/chat.jsonl' });
});

test('form storage: a stale or hand-edited value falls back to its default alone; the rest is kept', () => {
  const storage = memoryStorage();
  saveKeptForm(storage, { form: edited(), modelPath: '/m', datasetPath: '/d' });
  const raw = JSON.parse(storage.data.get(FORM_STORAGE_KEY)!) as Record<string, unknown>;
  raw.targets = ['q_proj', 'attn_fused']; // a target this studio does not know
  (raw.compute as Record<string, unknown>).backend = 'cuda';
  (raw.advanced as Record<string, unknown>).schedule = 42;
  raw.datasetPath = { not: 'a path' };
  storage.setItem(FORM_STORAGE_KEY, JSON.stringify(raw));
  const back = loadKeptForm(storage);
  assert.ok(back);
  const defaults = defaultForm();
  assert.deepEqual(back.form.targets, defaults.targets);
  assert.equal(back.form.compute.backend, defaults.compute.backend);
  assert.equal(back.form.compute.precision, 'fp16', 'the valid neighbour of a bad value is kept');
  assert.equal(back.form.advanced.schedule, defaults.advanced.schedule);
  assert.equal(back.form.advanced.rslora, true);
  assert.equal(back.datasetPath, '');
  assert.equal(back.modelPath, '/m');
  assert.equal(back.form.numbers['lora.r'], '32');
});

test('form storage: unreadable JSON, another version or no entry start from the defaults (null)', () => {
  assert.equal(loadKeptForm(memoryStorage()), null);
  assert.equal(loadKeptForm(memoryStorage({ [FORM_STORAGE_KEY]: '{"version":1,' })), null);
  assert.equal(loadKeptForm(memoryStorage({ [FORM_STORAGE_KEY]: JSON.stringify({ version: 99, modelPath: '/m' }) })), null);
  assert.equal(loadKeptForm(memoryStorage({ [FORM_STORAGE_KEY]: '"just a string"' })), null);
  assert.equal(loadKeptForm(null), null);
  const throwing: KeyValueStorage = {
    getItem: () => {
      throw new Error('SecurityError');
    },
    setItem: () => {
      throw new Error('QuotaExceededError');
    },
  };
  assert.equal(loadKeptForm(throwing), null);
  assert.doesNotThrow(() => saveKeptForm(throwing, { form: defaultForm(), modelPath: '', datasetPath: '' }));
});

test('formFromConfig rebuilds the form that makes the same config (Train again with these settings)', () => {
  const form = edited();
  form.numbers['train.learningRate'] = '0.0005';
  const first = checkForm(form, '/m', '/d');
  assert.ok(first.ok, JSON.stringify(first.errors));
  const again = checkForm(formFromConfig(first.config), first.config.modelPath, first.config.datasetPath);
  assert.ok(again.ok);
  assert.deepEqual(again.config, first.config);
  assert.equal(first.config.train.schedule, 'cosine');
  assert.equal(first.config.lora.rslora, true);
  assert.equal(first.config.train.gradAccumulation, 4);
});

test('settings file: written, read back to the same config, and a bad file names the field by its label', () => {
  const form = edited();
  form.numbers['train.learningRate'] = '0.001';
  const text = settingsFileText(form, ' /m ', '/d');
  const read = readSettingsFile(text, 'run.json', { modelPath: '', datasetPath: '' });
  assert.ok(read.ok);
  const direct = checkForm(form, '/m', '/d');
  assert.ok(direct.ok);
  assert.deepEqual(read.config, direct.config);

  // No paths in the file: the form's own choice is kept.
  const noPaths = JSON.parse(text) as Record<string, unknown>;
  delete noPaths.modelPath;
  delete noPaths.datasetPath;
  const kept = readSettingsFile(JSON.stringify(noPaths), 'run.json', { modelPath: '/mine', datasetPath: '' });
  assert.ok(kept.ok);
  assert.equal(kept.config.modelPath, '/mine');
  assert.equal(kept.config.datasetPath, '');

  const bad = JSON.parse(text) as { train: Record<string, unknown> };
  bad.train.steps = 1e9;
  bad.train.maxGradNorm = 'lots';
  const refused = readSettingsFile(JSON.stringify(bad), 'big.json', { modelPath: '', datasetPath: '' });
  assert.equal(refused.ok, false);
  if (refused.ok) return;
  assert.match(refused.message, /^big\.json cannot be used: /);
  assert.match(refused.message, /Steps must be at most 10,000,000/);
  assert.match(refused.message, /Max grad norm must be a number/);
  assert.doesNotMatch(refused.message, /train\.|maxGradNorm/);

  const notJson = readSettingsFile('{', 'x.json', { modelPath: '', datasetPath: '' });
  assert.equal(notJson.ok, false);
  assert.match(notJson.ok ? '' : notJson.message, /x\.json is not JSON/);
});

test('steps = 1e9 is a range problem, not "must be a number"; every field keeps its own message', () => {
  const r = validateRunConfig({ ...DEFAULT_RUN_CONFIG, modelPath: '/m', datasetPath: '/d', train: { ...DEFAULT_RUN_CONFIG.train, steps: 1e9, warmupSteps: 1.5, weightDecay: Number.NaN } });
  assert.equal(r.ok, false);
  if (r.ok) return;
  const by = Object.fromEntries(r.errors.map((e) => [e.field, e.message]));
  assert.equal(by['train.steps'], 'steps must be at most 10,000,000');
  assert.equal(by['train.warmupSteps'], 'warmup steps must be a whole number');
  assert.equal(by['train.weightDecay'], 'weight decay must be a number');
});

test('field labels: messages name the field as the page does, never by its key', () => {
  assert.equal(describeFieldError({ field: 'maxNewTokens', message: 'must be at most 4096' }), 'Max new tokens: must be at most 4096');
  assert.equal(describeFieldError({ field: 'config.lora.r', message: 'rank must be at least 1' }), 'Rank (r) must be at least 1');
  assert.equal(describeFieldError({ field: 'thresholds.relErr', message: 'must be greater than 0' }), 'Relative-error threshold: must be greater than 0');
  assert.equal(describeFieldError({ field: 'modelPath', message: 'choose a model folder' }), 'Model: choose a model folder');
  assert.equal(describeFieldError({ field: '', message: 'something broke' }), 'Something broke');
  assert.equal(describeFieldError({ field: 'thresholds.kl', message: 'the KL threshold must be a number greater than 0' }), 'KL threshold must be a number greater than 0');
  assert.equal(fieldLabel('lora.targets.3'), 'Target modules');
  assert.equal(fieldLabel('someNewField'), 'Some new field');
});

const MODEL = { path: '/m' } as ModelSummary;
const DATASET = { path: '/d', records: 10, badRecords: [] } as unknown as DatasetSummary;

function blockerInput(over: Partial<TrainBlockerInput> = {}): TrainBlockerInput {
  return {
    connection: 'open',
    check: checkForm(defaultForm(), '/m', '/d'),
    modelPath: '/m',
    model: MODEL,
    modelError: null,
    modelBusy: false,
    datasetPath: '/d',
    dataset: DATASET,
    datasetError: null,
    datasetBusy: false,
    badRecords: 'fail',
    validationPath: '',
    validationError: null,
    ...over,
  };
}

test('train blockers: none once everything is loaded and valid; otherwise each reason, in plain words', () => {
  assert.deepEqual(trainBlockers(blockerInput()), []);
  const messages = (over: Partial<TrainBlockerInput>) => trainBlockers(blockerInput(over)).map((b) => b.message);
  assert.deepEqual(messages({ modelPath: '', model: null, datasetPath: ' ', dataset: null, check: checkForm(defaultForm(), '', '') }), [
    'Model: choose a model folder',
    'Dataset: choose a dataset file',
  ]);
  assert.deepEqual(messages({ model: null, modelError: { message: '/x is not a model folder: no config.json.' } }), ['Model: /x is not a model folder: no config.json']);
  assert.deepEqual(messages({ model: null }), ['Model: press Load to check the folder you typed']);
  assert.deepEqual(messages({ dataset: null, datasetBusy: true }), ['Dataset: still being read']);
  assert.deepEqual(messages({ connection: 'closed' }), ['The studio is not connected: waiting for it to answer']);
  const broken = { ...DATASET, badRecords: [{ line: 3, message: 'bad JSON' }], badRecordCount: 2 } as DatasetSummary;
  assert.deepEqual(messages({ dataset: broken }), ['Dataset: 2 broken records; fix the file or choose to skip them']);
  assert.deepEqual(messages({ dataset: broken, badRecords: 'skip' }), []);
  const f = defaultForm();
  const bad = checkForm({ ...f, numbers: { ...f.numbers, 'lora.r': '0', 'train.maxGradNorm': '-1' } }, '/m', '/d');
  assert.deepEqual(messages({ check: bad }), ['Rank (r) must be at least 1', 'Max grad norm cannot be negative (0 turns clipping off)']);
});

test('epochs: one pass is ceil(examples / (batch × accumulation)), the validation split left out', () => {
  const f = defaultForm();
  const numbers = { ...f.numbers, 'train.batchSize': '4', 'train.gradAccumulation': '2', 'train.validationPercent': '10' };
  assert.equal(stepsPerEpoch(100, numbers), Math.ceil(90 / 8));
  assert.equal(stepsPerEpoch(null, numbers), null);
  assert.equal(stepsPerEpoch(100, { ...numbers, 'train.batchSize': 'x' }), null);
  assert.deepEqual(stepsForEpochs('2.5', 12), { ok: true, steps: 30 });
  assert.equal(stepsForEpochs('0', 12).ok, false);
  assert.equal(stepsForEpochs('1e9', 12).ok, false);
});

test('lab problems: Run is off with 0 formats, a missing calibration file or a bad threshold, each named', async () => {
  const { labProblems } = await import('../../renderer/src/lab/lab-store.ts');
  const ok = { model: null, modelPath: '/m', chosen: ['q8_0'], adapterModes: [], calib: 'sample' as const, calibPath: '', relErrThreshold: '', klThreshold: '' };
  assert.deepEqual(labProblems(ok, false), []);
  const bad = labProblems({ ...ok, modelPath: ' ', chosen: [], calib: 'file', klThreshold: '-1' }, true);
  assert.deepEqual(
    bad.map((p) => describeFieldError(p)),
    [
      'Model: choose a model (or use the sample model)',
      'Formats: choose at least one format',
      'Adapter modes: choose how the adapter meets the quantized base',
      'Calibration text: type the path of a calibration text file, or use the sample',
      'KL threshold must be a number greater than 0 (or empty for automatic)',
    ],
  );
});
