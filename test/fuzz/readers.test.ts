/**
 * The loaders under a bounded mutation fuzzer (test/helpers/fuzz.ts): every mutated config.json, adapter folder,
 * safetensors file, tokenizer file and dataset must load or fail with the reader's own typed error within the time
 * bound — never a raw TypeError/RangeError, never a hang. LORA_STUDIO_FUZZ_CASES=N runs N cases per reader.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, test } from 'node:test';
import { DatasetError } from '../../engine/data/errors.ts';
import { readRecords, type FileKind } from '../../engine/data/source.ts';
import { HfConfigError, readHfConfig } from '../../engine/io/hf-config.ts';
import { loadModel, ModelLoadError } from '../../engine/io/hf-model.ts';
import { tinyHfConfig, writeRandomModel } from '../../engine/io/make-model.ts';
import { AdapterError, loadAdapter } from '../../engine/io/peft-adapter.ts';
import { SafetensorsError, withSafetensors } from '../../engine/io/safetensors.ts';
import { loadTokenizer, TokenizerLoadError } from '../../engine/io/tokenizer.ts';
import { SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { describeFaults, fuzz, fuzzCases } from '../helpers/fuzz.ts';
import { writeParquet } from '../helpers/data-parquet-writer.ts';
import { writeTestAdapter } from '../helpers/peft-folder.ts';

const root = mkdtempSync(join(tmpdir(), 'fuzz-'));
after(() => rmSync(root, { recursive: true, force: true }));

const modelDir = join(root, 'model');
writeRandomModel(modelDir, tinyHfConfig('llama', { num_hidden_layers: 2 }), { seed: 5 });
const model = readHfConfig(modelDir);

/** A typed error of one of these classes whose message names the file (or its folder). */
function typedAs(classes: (abstract new (...a: never[]) => Error)[], where: string) {
  const name = basename(where);
  return (e: unknown): boolean => classes.some((c) => e instanceof c) && (e as Error).message.includes(name);
}

test('config.json: every mutation loads or names config.json', async () => {
  const dir = join(root, 'cfg');
  cpSync(modelDir, dir, { recursive: true });
  const file = join(dir, 'config.json');
  const o = await fuzz(
    {
      base: readFileSync(file),
      kind: 'json',
      write: (b) => writeFileSync(file, b),
      read: () => loadModel(dir),
      typed: typedAs([HfConfigError, ModelLoadError], dir),
    },
    fuzzCases(600),
    1,
  );
  assert.equal(o.faults.length, 0, describeFaults('config.json', o));
  assert.ok(o.typed > 0 && o.ok > 0, `the mutations reach both outcomes (ok ${o.ok}, typed ${o.typed})`);
});

test('adapter_config.json + adapter_model.safetensors: every mutation loads or names the file', async () => {
  const dir = join(root, 'adapter');
  writeTestAdapter(dir, modelDir, 4, ['q_proj', 'v_proj', 'down_proj']);
  for (const name of ['adapter_config.json', 'adapter_model.safetensors']) {
    const file = join(dir, name);
    const original = readFileSync(file);
    const o = await fuzz(
      {
        base: original,
        kind: name.endsWith('.json') ? 'json' : 'bytes',
        write: (b) => writeFileSync(file, b),
        read: () => loadAdapter(dir, model),
        typed: typedAs([AdapterError, SafetensorsError], dir),
      },
      fuzzCases(500),
      2,
    );
    writeFileSync(file, original);
    assert.equal(o.faults.length, 0, describeFaults(name, o));
  }
});

test('model.safetensors: every mutation reads or names the file', async () => {
  const file = join(modelDir, 'model.safetensors');
  const copy = join(root, 'm.safetensors');
  const o = await fuzz(
    {
      base: readFileSync(file),
      kind: 'bytes',
      write: (b) => writeFileSync(copy, b),
      read: () => withSafetensors(copy, (f) => { for (const n of f.names()) f.readFloat(n, Float32Array); }),
      typed: typedAs([SafetensorsError], copy),
    },
    fuzzCases(500),
    3,
  );
  assert.equal(o.faults.length, 0, describeFaults('safetensors', o));
});

test('tokenizer.json / tokenizer_config.json: every mutation loads or names the file', async () => {
  const dir = join(root, 'tok');
  cpSync(SAMPLE_MODEL_DIR, dir, { recursive: true });
  for (const name of ['tokenizer_config.json', 'tokenizer.json']) {
    const file = join(dir, name);
    const original = readFileSync(file);
    const o = await fuzz(
      {
        base: original,
        kind: 'json',
        write: (b) => writeFileSync(file, b),
        read: () => loadTokenizer(dir),
        typed: typedAs([TokenizerLoadError], dir),
        timeLimitMs: 5000,
      },
      fuzzCases(name === 'tokenizer.json' ? 60 : 300),
      4,
    );
    writeFileSync(file, original);
    assert.equal(o.faults.length, 0, describeFaults(name, o));
  }
});

async function drain(path: string, kind: FileKind): Promise<void> {
  for await (const _ of readRecords(path, kind)) {
    // reading is the test
  }
}

test('datasets: every mutated JSONL/JSON/CSV/Parquet/TXT file reads or names the file', async () => {
  const rows = Array.from({ length: 40 }, (_, i) => ({ instruction: `question ${i} "quoted", comma`, output: `answer ${i}\nline two` }));
  const files: [string, FileKind, Uint8Array][] = [
    ['d.jsonl', 'jsonl', new TextEncoder().encode(rows.map((r) => JSON.stringify(r)).join('\n'))],
    ['d.json', 'json-array', new TextEncoder().encode(JSON.stringify(rows))],
    ['d.csv', 'csv', new TextEncoder().encode(['instruction,output', ...rows.map((r) => `"${r.instruction.replaceAll('"', '""')}","${r.output}"`)].join('\n'))],
    ['d.txt', 'text', new TextEncoder().encode(rows.map((r) => r.output).join('\n\n'))],
  ];
  const pq = join(root, 'base.parquet');
  writeParquet(pq, [
    { name: 'instruction', type: 'string', values: rows.map((r) => r.instruction) },
    { name: 'output', type: 'string', values: rows.map((r) => r.output) },
    { name: 'n', type: 'int64', values: rows.map((_, i) => i) },
  ], 10);
  files.push(['d.parquet', 'parquet', readFileSync(pq)]);
  for (const [name, kind, base] of files) {
    const file = join(root, name);
    const o = await fuzz(
      { base, kind: 'bytes', write: (b) => writeFileSync(file, b), read: () => drain(file, kind), typed: typedAs([DatasetError], file) },
      fuzzCases(kind === 'parquet' ? 1500 : 300),
      5,
    );
    assert.equal(o.faults.length, 0, describeFaults(name, o));
  }
});
