/**
 * A run started through the services tokenizes its dataset once: the preflight prepares it in a worker (never on
 * the services' thread, whose own preparation counter stays at 0), keeps it in the studio's dataset cache, and the
 * engine trains on that entry — the one file the check wrote, not rewritten — without preparing it again.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { preparedDatasetCount } from '../../engine/data/prepare.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { refusal, tempStudios } from '../helpers/temp-studio.ts';

const { tmp, services } = tempStudios('dataset-once-');

test('runs.start: checked in a worker, kept once, trained on without a second tokenization; a broken line is still refused up front', async () => {
  const s = services('once');
  const dataset = join(tmp, 'data.jsonl');
  writeFileSync(dataset, readFileSync(SAMPLE_DATASET_PATH));
  const config = {
    modelPath: SAMPLE_MODEL_DIR,
    datasetPath: dataset,
    lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj'] },
    train: { learningRate: 1e-3, steps: 3, batchSize: 2, maxSeqLen: 96 },
  };
  const run = await s.handle('runs.start', { config });
  const cache = join(s.home.root, 'cache', 'datasets');
  const entries = readdirSync(cache);
  assert.equal(entries.length, 1, 'the check kept the prepared dataset before the run existed');
  const stamp = statSync(join(cache, entries[0]));
  await s.whenIdle();
  const done = await s.handle('runs.get', { id: run.id });
  assert.equal(done.state, 'completed', done.error ?? '');
  assert.equal(preparedDatasetCount(), 0, "the services' thread prepared no dataset");
  const after = statSync(join(cache, entries[0]));
  assert.deepEqual(readdirSync(cache), entries);
  assert.deepEqual([after.ino, after.mtimeMs], [stamp.ino, stamp.mtimeMs], 'the engine did not prepare and keep it again');
  const messages = (await s.handle('runs.events', { id: run.id })).map((e) => e.message);
  assert.ok(messages.some((m) => m.includes('not tokenized again')), messages.join('\n'));
  assert.ok(!messages.some((m) => m.startsWith('preparing dataset')), messages.join('\n'));

  // The refusal is as before: field, file and line, and no run.
  const lines = readFileSync(dataset, 'utf8').split('\n');
  lines[2] = '{"instruction": "cut short"';
  writeFileSync(dataset, lines.join('\n'));
  const e = await refusal(() => s.handle('runs.start', { config }));
  assert.deepEqual([e.info.field, e.info.file, e.info.line], ['datasetPath', dataset, 3]);
  assert.match(e.info.message, /data\.jsonl line 3/);
  assert.equal((await s.handle('runs.list', {})).length, 1);
  assert.equal(preparedDatasetCount(), 0);
});
