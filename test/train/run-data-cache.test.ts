/**
 * A run start tokenizes its dataset once: the preflight's check (checkRunDataset, what the dataset-check worker runs)
 * prepares it and keeps it in the dataset cache, and the engine's real run (runTraining) then trains on that entry
 * without preparing again (counted by prepare.ts's own counter). An entry is not used when the dataset changed after
 * the check, when it is damaged, for another tokenizer, or — listing bad records a 'skip' run met — for a check
 * that must refuse them; the engine then prepares anew, with the same result as without any cache.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { RunConfigSchema, type EngineEvent, type RunConfig } from '../../common/protocol.ts';
import { preparedDatasetCount } from '../../engine/data/prepare.ts';
import { loadTokenizer } from '../../engine/io/model-source.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import { prepareRunDataset } from '../../engine/train/run-data.ts';
import { checkRunDataset, runDataset, runDatasetKey } from '../../engine/train/run-data-cache.ts';
import { runTraining } from '../../engine/train/run-training.ts';

process.env.LORA_STUDIO_CPU_THREADS = '1';
const dir = mkdtempSync(join(tmpdir(), 'run-data-cache-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const sample = await ensureSample();
const tokenizer = await loadTokenizer(sample.modelDir);
const lines = readFileSync(sample.datasetPath, 'utf8').split('\n').filter(Boolean);

function config(datasetPath: string, data?: RunConfig['data']): RunConfig {
  return RunConfigSchema.parse({
    modelPath: sample.modelDir,
    datasetPath,
    lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj'] },
    train: { learningRate: 1e-3, steps: 2, batchSize: 2, maxSeqLen: 128, validationPercent: 10, seed: 5 },
    ...(data ? { data } : {}),
  });
}

let runs = 0;
/** The engine's real run with the studio's cache folder; returns its log lines. */
async function train(c: RunConfig, cacheDir: string): Promise<string[]> {
  const events: EngineEvent[] = [];
  await runTraining({ type: 'train', runId: `r${++runs}`, config: c, runDir: join(dir, `run-${runs}`), resume: false, datasetCacheDir: cacheDir }, { post: (e) => events.push(e), shouldStop: () => null });
  const err = events.find((e) => e.type === 'error');
  assert.equal(err, undefined, JSON.stringify(err));
  assert.ok(events.some((e) => e.type === 'done'));
  return events.flatMap((e) => (e.type === 'log' ? [e.message] : []));
}

/** The engine's "N training and M validation examples" line for a fresh preparation of `c`. */
async function freshCounts(c: RunConfig): Promise<string> {
  const d = await prepareRunDataset(c, tokenizer);
  return `${d.train.length} training and ${d.validation.length} validation examples`;
}

function datasetFile(name: string, content: string[]): string {
  const file = join(dir, name);
  writeFileSync(file, `${content.join('\n')}\n`);
  return file;
}

test('the check prepares once; the engine and a second check use its entry without tokenizing again', async () => {
  const cache = join(dir, 'cache-once');
  const c = config(datasetFile('once.jsonl', lines.slice(0, 120)));
  const before = preparedDatasetCount();
  assert.deepEqual(await checkRunDataset(c, tokenizer, cache), { tokenized: true, kept: true });
  assert.equal(preparedDatasetCount(), before + 1, 'the check prepared the dataset');
  const [entry] = readdirSync(cache);
  assert.equal(entry, `${await runDatasetKey(c)}.prepared`);
  const stamp = statSync(join(cache, entry));

  const log = await train(c, cache);
  assert.equal(preparedDatasetCount(), before + 1, 'the engine did not prepare it again');
  assert.ok(log.some((m) => /as prepared before the run started .* not tokenized again/.test(m)), log.join('\n'));
  assert.ok(!log.some((m) => m.startsWith('preparing dataset')));
  assert.deepEqual(await checkRunDataset(c, tokenizer, cache), { tokenized: false, kept: true });
  assert.equal(preparedDatasetCount(), before + 1, 'a second check of the same data did not prepare it either');
  const after = statSync(join(cache, entry));
  assert.deepEqual([after.ino, after.mtimeMs, after.size], [stamp.ino, stamp.mtimeMs, stamp.size], 'the entry was not rewritten');
  assert.deepEqual(readdirSync(cache), [entry]);

  const expected = await freshCounts(c);
  assert.ok(log.includes(`${expected} (alpaca)`), `trained on what a fresh preparation gives: ${expected}\n${log.join('\n')}`);
});

test('a dataset changed after the check: its entry is not used; the engine prepares the new content and keeps that', async () => {
  const cache = join(dir, 'cache-changed');
  const file = datasetFile('changed.jsonl', lines.slice(0, 120));
  const c = config(file);
  await checkRunDataset(c, tokenizer, cache);
  const checkedKey = await runDatasetKey(c);
  // Same size and name, one record different: only the content tells.
  const edited = lines.slice(0, 120);
  edited[7] = lines[200];
  datasetFile('changed.jsonl', edited);
  assert.notEqual(await runDatasetKey(c), checkedKey);
  const before = preparedDatasetCount();
  const log = await train(c, cache);
  assert.equal(preparedDatasetCount(), before + 1, 'the engine prepared the changed dataset');
  assert.ok(log.includes(`preparing dataset ${file}`), log.join('\n'));
  assert.ok(!log.some((m) => m.includes('not tokenized again')));
  const fresh = await prepareRunDataset(c, tokenizer);
  assert.deepEqual(await runDataset(c, tokenizer, cache, () => {}), fresh, 'the kept entry is the new content, exactly');
  assert.deepEqual(readdirSync(cache).sort(), [`${checkedKey}.prepared`, `${await runDatasetKey(c)}.prepared`].sort());
});

test('a damaged entry is not used: the engine prepares anew and replaces it', async () => {
  const cache = join(dir, 'cache-damaged');
  const c = config(datasetFile('damaged.jsonl', lines.slice(0, 80)));
  await checkRunDataset(c, tokenizer, cache);
  const entry = join(cache, `${await runDatasetKey(c)}.prepared`);
  const bytes = readFileSync(entry);
  bytes[bytes.length - 10] ^= 0xff;
  writeFileSync(entry, bytes);
  const before = preparedDatasetCount();
  const log = await train(c, cache);
  assert.equal(preparedDatasetCount(), before + 1);
  assert.ok(log.some((m) => m.startsWith('preparing dataset')));
  assert.deepEqual(await runDataset(c, tokenizer, cache, () => {}), await prepareRunDataset(c, tokenizer));
});

test('bad records: an entry a skipping run kept does not let the check pass; the check refuses the line as without a cache', async () => {
  const cache = join(dir, 'cache-bad');
  const broken = lines.slice(0, 40);
  broken[5] = '{"instruction": "cut short"';
  const c = config(datasetFile('bad.jsonl', broken));
  const skipped = await runDataset(c, tokenizer, cache, () => {});
  assert.equal(skipped.badRecordCount, 1);
  assert.equal(readdirSync(cache).length, 1, 'the skipping preparation was kept');
  const uncached = await checkRunDataset(c, tokenizer, null).catch((e: unknown) => e);
  const cached = await checkRunDataset(c, tokenizer, cache).catch((e: unknown) => e);
  assert.ok(uncached instanceof Error && cached instanceof Error);
  assert.deepEqual([cached.message, (cached as { line?: number }).line], [uncached.message, 6]);
  assert.match(cached.message, /bad\.jsonl line 6/);
});

test('the key follows the tokenizer files and the settings that shape the data, not the bad-record mode', async () => {
  const model = join(dir, 'model');
  cpSync(sample.modelDir, model, { recursive: true });
  const c = { ...config(sample.datasetPath), modelPath: model };
  const key = await runDatasetKey(c);
  assert.equal(await runDatasetKey({ ...c, data: { trainOn: 'auto', packing: false, badRecords: 'skip' } }), key);
  assert.notEqual(await runDatasetKey({ ...c, train: { ...c.train, maxSeqLen: 64 } }), key);
  assert.notEqual(await runDatasetKey({ ...c, train: { ...c.train, seed: 6 } }), key);
  writeFileSync(join(model, 'chat_template.jinja'), '{{ messages }}');
  assert.notEqual(await runDatasetKey(c), key, 'a chat template file changes how chat records render');
});
