/**
 * Managing runs in the renderer, as pure logic: the name/notes/tags editor refuses what the services refuse (same
 * schema, messages by label) and sends only what changed; the search and tag filter; the tag chips; the delete
 * question's figures; the metrics CSV reads back to the same numbers with a real CSV parser.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { DEFAULT_RUN_CONFIG, type MetricPoint, type RunSummary } from '../../common/protocol.ts';
import { deleteBlocker, deleteRefusal, DELETABLE_STATES, generatedRunName, parseTags, RunInfoPatchSchema, runMatches, type RunDeleteResult } from '../../common/run-info.ts';
import { METRICS_CSV_COLUMNS, metricsCsv } from '../../common/run-metrics.ts';
import { RUN_STATES } from '../../host/services/run-state.ts';
import { checkForm, defaultForm } from '../../renderer/src/stores/form.ts';
import { checkRunInfo, deleteQuestion, draftOfRun, metricsCsvFileName, tagCounts, toggleTag } from '../../renderer/src/runs/run-manage-view.ts';

function run(over: Partial<RunSummary> = {}): RunSummary {
  const now = '2026-12-03T07:00:00.000Z';
  return {
    id: 'run-1',
    name: 'sample-model · sample-dataset.jsonl · r8',
    notes: '',
    tags: [],
    state: 'completed',
    config: { ...DEFAULT_RUN_CONFIG, modelPath: '/models/SmolLM2-135M', datasetPath: '/data/alpaca.jsonl' },
    createdAt: now,
    updatedAt: now,
    step: 40,
    totalSteps: 40,
    lastLoss: 1.2,
    tokensPerSecond: null,
    etaMs: null,
    error: null,
    adapterId: null,
    backend: 'cpu',
    ...over,
  };
}

test('the editor sends only what changed; an unchanged draft has nothing to save', () => {
  const r = run({ tags: ['a'] });
  const same = checkRunInfo(draftOfRun(r), r);
  assert.deepEqual(same, { ok: true, patch: {}, changed: false });
  const renamed = checkRunInfo({ ...draftOfRun(r), name: '  lr sweep 1 ' }, r);
  assert.deepEqual(renamed, { ok: true, patch: { name: 'lr sweep 1' }, changed: true });
  const tagged = checkRunInfo({ ...draftOfRun(r), tags: 'a, b,, B , c' }, r);
  assert.deepEqual(tagged, { ok: true, patch: { tags: ['a', 'b', 'c'] }, changed: true });
  const noted = checkRunInfo({ ...draftOfRun(r), notes: 'loss flat' }, r);
  assert.deepEqual(noted, { ok: true, patch: { notes: 'loss flat' }, changed: true });
});

test('the editor refuses what the services refuse, naming the field by its label', () => {
  const r = run();
  const empty = checkRunInfo({ ...draftOfRun(r), name: '   ' }, r);
  assert.equal(empty.ok, false);
  assert.equal(!empty.ok && empty.errors.name, 'Run name cannot be empty');
  const long = checkRunInfo({ ...draftOfRun(r), tags: 'x'.repeat(41) }, r);
  assert.equal(!long.ok && long.errors.tags, 'Tags: a tag must be at most 40 characters');
  const many = checkRunInfo({ ...draftOfRun(r), tags: Array.from({ length: 21 }, (_, i) => `t${i}`).join(',') }, r);
  assert.equal(!many.ok && many.errors.tags, 'Tags: at most 20 tags');
  // Whatever the editor accepts, the services' schema accepts, and the other way round.
  fc.assert(
    fc.property(fc.string({ maxLength: 210 }), fc.array(fc.string({ maxLength: 45 }), { maxLength: 22 }), (name, tags) => {
      const typed = tags.join(',');
      const editor = checkRunInfo({ name, notes: '', tags: typed }, r).ok;
      const services = RunInfoPatchSchema.safeParse({ name, notes: '', tags: parseTags(typed) }).success;
      assert.equal(editor, services);
    }),
    { seed: 14, numRuns: 300 },
  );
});

test('search: every word somewhere in name, notes, tags, id, state, model or dataset; tags must all be there', () => {
  const a = run({ id: 'run-a', name: 'baseline', notes: 'learning rate too high', tags: ['Smoke', 'sweep'] });
  const b = run({ id: 'run-b', name: 'qlora try', tags: ['sweep'], state: 'failed', config: { ...a.config, modelPath: '/models/TinyLlama' } });
  const find = (q: Parameters<typeof runMatches>[1]) => [a, b].filter((r) => runMatches(r, q)).map((r) => r.id);
  assert.deepEqual(find({}), ['run-a', 'run-b']);
  assert.deepEqual(find({ text: 'BASELINE high' }), ['run-a']);
  assert.deepEqual(find({ text: 'tinyllama' }), ['run-b']);
  assert.deepEqual(find({ text: 'failed' }), ['run-b']);
  assert.deepEqual(find({ text: 'alpaca' }), ['run-a', 'run-b']);
  assert.deepEqual(find({ tags: ['smoke'] }), ['run-a']);
  assert.deepEqual(find({ tags: ['sweep', 'smoke'] }), ['run-a']);
  assert.deepEqual(find({ tags: ['sweep'], text: 'qlora' }), ['run-b']);
  assert.deepEqual(find({ text: 'baseline qlora' }), []);
});

test('tag chips: each tag once (case-insensitive), most used first; toggling adds and removes', () => {
  const counts = tagCounts([run({ tags: ['b', 'A'] }), run({ tags: ['a'] }), run({ tags: [] }), run({})]);
  assert.deepEqual(counts, [
    { tag: 'A', count: 2 },
    { tag: 'b', count: 1 },
  ]);
  assert.deepEqual(toggleTag([], 'a'), ['a']);
  assert.deepEqual(toggleTag(['a', 'b'], 'A'), ['b']);
});

test('delete: refused exactly in the states the services refuse, with what the run is doing', () => {
  for (const state of RUN_STATES) {
    const r = run({ state, step: 3, totalSteps: 40 });
    assert.equal(deleteBlocker(r) === null, DELETABLE_STATES.includes(state), state);
    assert.equal(deleteRefusal(r) === null, DELETABLE_STATES.includes(state), state);
  }
  assert.deepEqual(deleteBlocker(run({ state: 'executing', step: 3, totalSteps: 40 })), { doing: 'training (step 3 of 40)', fix: 'cancel or pause it first, or wait until it ends' });
  assert.match(deleteRefusal(run({ state: 'finalizing' })) ?? '', /is saving its adapter; wait until it has completed/);
});

test('the delete question says what goes and what it frees, with and without the adapter', () => {
  const m: RunDeleteResult = { id: 'r', name: 'baseline', deleted: false, runBytes: 3 * 1024 * 1024, adapterId: 'r', adapterBytes: 512 * 1024, adapterDeleted: false, freedBytes: 3 * 1024 * 1024 };
  assert.equal(deleteQuestion(m, false), 'Delete "baseline"? Its checkpoints, metrics, history and events are removed; this frees 3.0 MiB. Its adapter (512.0 KiB) stays in the Adapters list.');
  assert.equal(deleteQuestion(m, true), 'Delete "baseline"? Its checkpoints, metrics, history and events are removed; this frees 3.5 MiB. Its adapter (512.0 KiB) is deleted too.');
  assert.match(deleteQuestion({ ...m, adapterId: null, adapterBytes: 0 }, true), /frees 3\.0 MiB\. It has no adapter\.$/);
});

test('the metrics CSV reads back, with a real CSV parser, to the same values; missing fields are empty', () => {
  const points: MetricPoint[] = [
    { step: 2, loss: 1.875, learningRate: 2e-3, tokens: 400, tokensPerSecond: 123.456, elapsedMs: 2000, gradNorm: Number.NaN, lossScale: 32768, skipped: true },
    { step: 1, loss: 2.0000000000000004, learningRate: 1e-3, tokens: 398, tokensPerSecond: 99.5, elapsedMs: 1000, gradNorm: 0.3, validationLoss: 2.25, rssBytes: 734_003_200, deviceBytes: 2 ** 31 },
  ];
  const csv = metricsCsv(points);
  const rows = parse(csv, { columns: true }) as Record<string, string>[];
  assert.deepEqual(Object.keys(rows[0]!), [...METRICS_CSV_COLUMNS]);
  assert.deepEqual(rows.map((r) => Number(r.step)), [1, 2], 'step order');
  assert.equal(Number(rows[0]!.loss), 2.0000000000000004, 'full precision');
  assert.equal(rows[0]!.validationLoss, '2.25');
  assert.equal(rows[0]!.lossScale, '');
  assert.equal(rows[1]!.gradNorm, 'NaN');
  assert.equal(rows[1]!.skipped, 'true');
  // the memory columns: bytes as integers; a point without them (cpu has no device figure; older points neither)
  assert.deepEqual([rows[0]!.rssBytes, rows[0]!.deviceBytes, rows[1]!.rssBytes, rows[1]!.deviceBytes], ['734003200', '2147483648', '', '']);
  fc.assert(
    fc.property(fc.array(fc.record({ step: fc.integer({ min: 0, max: 1e6 }), loss: fc.double({ noNaN: true, noDefaultInfinity: true }), lr: fc.double({ min: 0, max: 1, noNaN: true }) }), { maxLength: 30 }), (ps) => {
      const unique = [...new Map(ps.map((p) => [p.step, p])).values()];
      const pts: MetricPoint[] = unique.map((p) => ({ step: p.step, loss: p.loss, learningRate: p.lr, tokens: 1, tokensPerSecond: 1, elapsedMs: 1, gradNorm: 1 }));
      const back = parse(metricsCsv(pts), { columns: true }) as Record<string, string>[];
      const sorted = [...pts].sort((x, y) => x.step - y.step);
      assert.deepEqual(back.map((r) => [Number(r.step), Number(r.loss), Number(r.learningRate)]), sorted.map((p) => [p.step, p.loss, p.learningRate]));
    }),
    { seed: 3, numRuns: 100 },
  );
});

test('the CSV file name is safe on every OS', () => {
  assert.equal(metricsCsvFileName({ id: 'run-1', name: 'SmolLM2 · alpaca.jsonl · r8 / try: 2' }), 'SmolLM2-alpaca.jsonl-r8-try-2.metrics.csv');
  assert.equal(metricsCsvFileName({ id: 'run-1', name: '···' }), 'run-1.metrics.csv');
});

test('the Train form sends a typed run name trimmed, none when empty; the generated one reads model · dataset · rank', () => {
  const f = defaultForm();
  const named = checkForm({ ...f, name: '  lr sweep 1 ' }, '/m', '/d.jsonl');
  assert.ok(named.ok);
  assert.equal(named.config.name, 'lr sweep 1');
  const unnamed = checkForm({ ...f, name: '   ' }, '/m', '/d.jsonl');
  assert.ok(unnamed.ok);
  assert.equal(unnamed.config.name, undefined, 'the services generate it');
  const long = checkForm({ ...f, name: 'x'.repeat(201) }, '/m', '/d.jsonl');
  assert.equal(long.ok, false);
  assert.equal(generatedRunName('SmolLM2-135M', 'C:\\data\\alpaca.jsonl', 16), 'SmolLM2-135M · alpaca.jsonl · r16');
  assert.equal(generatedRunName('m', '/home/me/chat.parquet', 8), 'm · chat.parquet · r8');
});
