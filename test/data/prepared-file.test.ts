/**
 * A prepared dataset written to a file and read back is the same dataset (same examples in the same order, same
 * split, same ids and labels, same bad-record list and counts); a file with another key, cut short or with one byte
 * changed is never read as a dataset.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { RunConfigSchema, type RunConfig, type RunConfigInput } from '../../common/protocol.ts';
import { readPreparedDataset, writePreparedDataset } from '../../engine/data/prepared-file.ts';
import { loadTokenizer } from '../../engine/io/model-source.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import { prepareRunDataset } from '../../engine/train/run-data.ts';

const dir = mkdtempSync(join(tmpdir(), 'prepared-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const sample = await ensureSample();
const tokenizer = await loadTokenizer(sample.modelDir);
const lines = readFileSync(sample.datasetPath, 'utf8').split('\n').filter(Boolean);

function config(datasetPath: string, over: { train?: Partial<RunConfig['train']>; data?: RunConfigInput['data'] } = {}): RunConfig {
  return RunConfigSchema.parse({
    modelPath: sample.modelDir,
    datasetPath,
    lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj'] },
    train: { learningRate: 1e-3, steps: 2, batchSize: 1, maxSeqLen: 100, validationPercent: 10, seed: 3, ...over.train },
    ...(over.data ? { data: over.data } : {}),
  });
}

test('round trip: split, truncation, bad records skipped, packing, a validation file, labels that are not a mask', async () => {
  const broken = join(dir, 'broken.jsonl');
  writeFileSync(broken, [...lines.slice(0, 30), '{"instruction": "cut', ...lines.slice(30, 60)].join('\n'));
  const validation = join(dir, 'validation.jsonl');
  writeFileSync(validation, lines.slice(60, 70).join('\n'));
  // Pre-tokenized records with labels of their own: not "the token or −100", so stored as they are.
  const tokenized = join(dir, 'tokenized.jsonl');
  writeFileSync(tokenized, Array.from({ length: 12 }, (_, i) => JSON.stringify({ input_ids: [1, 5 + i, 9, 12, 7], labels: [-100, 3, 9, 40 + i, -100] })).join('\n'));
  const cases: [string, RunConfig][] = [
    ['sample', config(sample.datasetPath)],
    ['bad records skipped', config(broken, { data: { badRecords: 'skip' } })],
    ['packed', config(sample.datasetPath, { train: { maxSeqLen: 256 }, data: { packing: true } })],
    ['validation file', config(broken, { train: { validationPercent: 0 }, data: { badRecords: 'skip', validationPath: validation } })],
    ['tokenized', config(tokenized)],
  ];
  for (const [name, c] of cases) {
    const data = await prepareRunDataset(c, tokenizer);
    const file = join(dir, `${name}.prepared`);
    writePreparedDataset(file, `key-${name}`, data);
    assert.deepStrictEqual(readPreparedDataset(file, `key-${name}`), data, name);
  }
  const skipped = await prepareRunDataset(cases[1][1], tokenizer);
  assert.equal(skipped.badRecordCount, 1, 'the broken line was listed');
  assert.ok(skipped.truncated > 0, 'maxSeqLen 100 cut some examples');
});

test('another key, a file cut short, one byte changed, garbage or no file: not read', async () => {
  const data = await prepareRunDataset(config(sample.datasetPath), tokenizer);
  const file = join(dir, 'entry.prepared');
  writePreparedDataset(file, 'k1', data);
  assert.ok(readPreparedDataset(file, 'k1'));
  assert.equal(readPreparedDataset(file, 'k2'), null, 'another key');
  const bytes = readFileSync(file);
  const cut = join(dir, 'cut.prepared');
  writeFileSync(cut, bytes.subarray(0, bytes.length - 3));
  assert.equal(readPreparedDataset(cut, 'k1'), null, 'cut short');
  for (const at of [bytes.length - 1, bytes.length - 5000, 8]) {
    const changed = Buffer.from(bytes);
    changed[at] ^= 0x01;
    const f = join(dir, `changed-${at}.prepared`);
    writeFileSync(f, changed);
    assert.equal(readPreparedDataset(f, 'k1'), null, `byte ${at} changed`);
  }
  writeFileSync(join(dir, 'garbage.prepared'), 'not a dataset');
  assert.equal(readPreparedDataset(join(dir, 'garbage.prepared'), 'k1'), null);
  assert.equal(readPreparedDataset(join(dir, 'missing.prepared'), 'k1'), null);
});
