/**
 * The services every host drives: bad input comes back as a StudioError naming what and where (field, file, line),
 * and a real short run on the sample model goes through the whole state machine and registers a PEFT adapter.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { MetricPoint, RunConfigInput, RunSummary, StudioEventMessage } from '../../common/protocol.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { openHome } from '../../host/services/home.ts';
import { assertPeftAdapter, readFolder } from '../helpers/peft-folder.ts';
import { refusal, tempStudios } from '../helpers/temp-studio.ts';

const { tmp, services } = tempStudios('lora-services-');

function config(overrides: { lora?: Partial<RunConfigInput['lora']>; train?: Partial<RunConfigInput['train']>; modelPath?: string; datasetPath?: string } = {}): RunConfigInput {
  return {
    modelPath: overrides.modelPath ?? SAMPLE_MODEL_DIR,
    datasetPath: overrides.datasetPath ?? SAMPLE_DATASET_PATH,
    lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'], ...overrides.lora },
    train: { learningRate: 3e-3, steps: 4, batchSize: 2, maxSeqLen: 96, ...overrides.train },
  };
}

describe('bad input gets a clear StudioError', () => {
  const s = services('bad-input');
  const notModel = join(tmp, 'just-a-folder');
  mkdirSync(notModel, { recursive: true });
  writeFileSync(join(notModel, 'notes.txt'), 'hello');

  test('a folder that is not a model: field and folder named, config.json missing', async () => {
    const e = await refusal(() => s.handle('models.inspect', { path: notModel }));
    assert.equal(e.info.field, 'path');
    assert.match(e.info.message, new RegExp(`${notModel}.*config\\.json`));
    const start = await refusal(() => s.handle('runs.start', { config: config({ modelPath: notModel }) }));
    assert.equal(start.info.field, 'modelPath');
    assert.match(start.info.message, /config\.json/);
    const missing = await refusal(() => s.handle('runs.start', { config: config({ modelPath: join(tmp, 'nowhere') }) }));
    assert.equal(missing.info.field, 'modelPath');
    assert.match(missing.info.message, /does not exist/);
  });

  test('a dataset with a broken line: file and line number', async () => {
    const lines = readFileSync(SAMPLE_DATASET_PATH, 'utf8').split('\n').filter(Boolean).slice(0, 6);
    lines[3] = '{"instruction": "Say hi", "output": "hi"'; // line 4: JSON cut short
    const file = join(tmp, 'broken.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const e = await refusal(() => s.handle('runs.start', { config: config({ datasetPath: file }) }));
    assert.equal(e.info.field, 'datasetPath');
    assert.equal(e.info.file, file);
    assert.equal(e.info.line, 4);
    assert.match(e.info.message, /broken\.jsonl line 4/);
    // Inspecting lists the broken line instead of refusing the file.
    const summary = await s.handle('datasets.inspect', { path: file, modelPath: SAMPLE_MODEL_DIR });
    assert.equal(summary.records, 5);
    assert.deepEqual(summary.badRecords.map((b) => b.line), [4]);
    assert.equal(s.hasActiveRuns(), false);
    assert.deepEqual(await s.handle('runs.list', {}), []);
    // Asked to skip broken records, the same file starts a run.
    const skipping = await s.handle('runs.start', { config: { ...config({ datasetPath: file }), data: { badRecords: 'skip' } } });
    assert.equal(skipping.state, 'pending');
    await s.handle('runs.cancel', { id: skipping.id });
    await s.whenIdle();
    const noValidation = await refusal(() => s.handle('runs.start', { config: { ...config(), data: { validationPath: join(tmp, 'missing-validation.jsonl') } } }));
    assert.equal(noValidation.info.field, 'data.validationPath');
  });

  test('rank 0 and a negative learning rate: one field error each', async () => {
    const e = await refusal(() => s.handle('runs.start', { config: config({ lora: { r: 0 }, train: { learningRate: -0.1 } }) }));
    const fields = Object.fromEntries((e.info.fieldErrors ?? []).map((f) => [f.field, f.message]));
    assert.match(fields['lora.r'] ?? '', /rank must be at least 1/);
    assert.match(fields['train.learningRate'] ?? '', /learning rate must be greater than 0/);
    // The summary names the fields by the labels the form shows, not by their keys (those stay in fieldErrors).
    assert.match(e.info.message, /Rank \(r\) must be at least 1; Learning rate must be greater than 0/);
    assert.doesNotMatch(e.info.message, /lora\.r|train\.learningRate/);
    assert.equal((await s.handle('runs.list', {})).filter((r) => r.state !== 'cancelled').length, 0);
  });

  test('a max sequence length that leaves nothing to train on is refused before the run exists', async () => {
    const e = await refusal(() => s.handle('runs.start', { config: config({ train: { maxSeqLen: 8 } }) }));
    assert.equal(e.info.field, 'datasetPath');
    assert.equal(e.info.file, SAMPLE_DATASET_PATH);
    assert.match(e.info.message, /within the first 8 tokens/);
    assert.equal((await s.handle('runs.list', {})).filter((r) => r.state !== 'cancelled').length, 0);
  });

  test('malformed requests name the missing parameter; desktop-only requests say so', async () => {
    assert.equal((await refusal(() => s.handle('runs.get', {}))).info.field, 'id');
    assert.match((await refusal(() => s.handle('runs.get', { id: '../../etc' }))).info.message, /no run with id/);
    assert.match((await refusal(() => s.handle('adapters.startDrag', { id: 'x' }))).info.message, /only in the desktop app/);
    assert.match((await refusal(() => s.handle('dialog.pickFile', {}))).info.message, /only in the desktop app/);
    assert.match((await refusal(() => s.handle('no.such' as 'app.info', {}))).info.message, /unknown request/);
  });

  test('an uploaded dataset is stored under the studio home, whatever its name says', async () => {
    const content = readFileSync(SAMPLE_DATASET_PATH, 'utf8').split('\n').slice(0, 3).join('\n');
    const summary = await s.handle('datasets.upload', { fileName: '../../escape.jsonl', content });
    assert.equal(summary.path, join(s.home.datasets, 'escape.jsonl'));
    assert.equal(summary.records, 3);
    assert.equal(existsSync(join(tmp, 'escape.jsonl')), false);
  });
});

describe('a real run on the sample model', () => {
  test('goes pending → validating → queuing → executing → finalizing → completed, streams metrics and registers the adapter', async () => {
    const s = services('run');
    const events: StudioEventMessage[] = [];
    s.onEvent((m) => events.push(m));
    // Enough steps that progress is pushed while executing (points are batched every 100 ms; the native kernels
    // train the sample model in a few milliseconds a step).
    const steps = 120;
    const run = await s.handle('runs.start', { config: config({ train: { steps } }) });
    assert.equal(run.state, 'pending');
    await s.whenIdle();

    const done = await s.handle('runs.get', { id: run.id });
    assert.equal(done.state, 'completed', done.error ?? '');
    assert.equal(done.step, steps);
    assert.ok(done.adapterId);
    const states = events.filter((m) => m.event === 'run.updated').map((m) => (m.data as RunSummary).state);
    const order = ['pending', 'validating', 'queuing', 'executing', 'finalizing', 'completed'];
    assert.deepEqual(states.filter((x, i) => x !== states[i - 1]), order);

    const executing = events.filter((m) => m.event === 'run.updated' && (m.data as RunSummary).state === 'executing').map((m) => m.data as RunSummary);
    assert.ok(executing.some((r) => r.step > 0 && r.step < steps && r.etaMs !== null && r.etaMs > 0 && r.lastLoss !== null && r.tokensPerSecond !== null), 'progress with an ETA while executing');
    const pushed = events.filter((m) => m.event === 'run.metrics').flatMap((m) => (m.data as { points: MetricPoint[] }).points);
    assert.deepEqual(pushed.map((p) => p.step), Array.from({ length: steps }, (_, i) => i + 1));
    const stored = await s.handle('runs.metrics', { id: run.id });
    assert.deepEqual(stored, pushed);
    assert.deepEqual((await s.handle('runs.metrics', { id: run.id, afterStep: 2 })).map((p) => p.step), Array.from({ length: steps - 2 }, (_, i) => i + 3));
    assert.ok(stored.every((p) => Number.isFinite(p.loss) && p.tokensPerSecond > 0));

    const adapters = await s.handle('adapters.list', {});
    assert.equal(adapters.length, 1);
    assert.equal(adapters[0].id, done.adapterId);
    assert.equal(adapters[0].runId, run.id);
    assert.equal(adapters[0].path, join(s.home.adapters, adapters[0].id));
    const parsed = assertPeftAdapter(readFolder(adapters[0].path), SAMPLE_MODEL_DIR);
    assert.equal(parsed.r, 4);
    assert.ok(events.some((m) => m.event === 'adapters.changed'));

    const dest = join(tmp, 'saved');
    mkdirSync(dest);
    const saved = await s.handle('adapters.saveAs', { id: adapters[0].id, destination: dest });
    assertPeftAdapter(readFolder(saved.path), SAMPLE_MODEL_DIR);
    const again = await s.handle('adapters.saveAs', { id: adapters[0].id, destination: dest });
    assert.notEqual(again.path, saved.path, 'a second save must not overwrite the first');
    assert.equal((await refusal(() => s.handle('adapters.saveAs', { id: adapters[0].id, destination: join(tmp, 'no-such-dir') }))).info.field, 'destination');
  });

  test('one run executes at a time; a waiting run can be cancelled and the executing one stops', async () => {
    const s = services('queue');
    const first = await s.handle('runs.start', { config: config({ train: { steps: 500 } }) });
    const second = await s.handle('runs.start', { config: config() });
    assert.equal((await s.handle('runs.get', { id: second.id })).state, 'queuing');
    assert.equal((await s.handle('runs.cancel', { id: second.id })).state, 'cancelled');
    // Let the first one train a step, then stop it.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const now = await s.handle('runs.get', { id: first.id });
      assert.notEqual(now.state, 'failed', now.error ?? '');
      if (now.step >= 1 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await s.handle('runs.cancel', { id: first.id });
    await s.whenIdle();
    const stopped = await s.handle('runs.get', { id: first.id });
    assert.equal(stopped.state, 'cancelled');
    assert.ok(stopped.step >= 1 && stopped.step < 500);
    assert.equal(stopped.adapterId, null);
    assert.match((await refusal(() => s.handle('runs.cancel', { id: first.id }))).info.message, /nothing to cancel/);
  });

  test('a run the studio was executing when it stopped is marked failed on the next start', async () => {
    const root = join(tmp, 'crashed');
    const home = openHome(root);
    const now = new Date().toISOString();
    const id = 'run-20260101-000000-abcdef';
    mkdirSync(join(home.runs, id));
    const summary: RunSummary = { id, name: 'x', state: 'executing', config: { ...config(), datasetFormat: 'auto', backend: 'cpu' } as RunSummary['config'], createdAt: now, updatedAt: now, step: 3, totalSteps: 10, lastLoss: 2, tokensPerSecond: 1, etaMs: 5, error: null, adapterId: null, backend: 'cpu' };
    writeFileSync(join(home.runs, id, 'run.json'), JSON.stringify(summary));
    const s = services('crashed');
    const run = await s.handle('runs.get', { id });
    assert.equal(run.state, 'failed');
    assert.match(run.error ?? '', /stopped while this run was executing/);
  });
});
