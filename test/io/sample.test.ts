import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, statSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { inspectModel, loadModel } from '../../engine/io/hf-model.ts';
import { DEFAULT_RUN_CONFIG } from '../../common/protocol.ts';
import { inspectDataset } from '../../engine/data/inspect.ts';
import { parseSampleInstructions, SAMPLE_DATASET_SEED, sampleInstructionsPath, seededShuffle } from '../../engine/io/sample-dataset.ts';
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

  test('the dataset: the hand-written instructions, each once, shuffled; real tasks, not corpus fragments', () => {
    const lines = readFileSync(SAMPLE_DATASET_PATH, 'utf8').trim().split('\n');
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const r of records) {
      assert.deepEqual(Object.keys(r), ['instruction', 'input', 'output']);
      for (const k of ['instruction', 'input', 'output'] as const) {
        const v = r[k];
        assert.ok(typeof v === 'string' && v === v.trim(), `${k} of ${JSON.stringify(r)}`);
      }
      assert.ok(String(r.instruction).length > 0 && String(r.output).length > 0, JSON.stringify(r));
      // The Brown-corpus builder asked for "a sentence of the Brown Corpus category …" and genre names.
      assert.doesNotMatch(`${String(r.instruction)} ${String(r.input)} ${String(r.output)}`, /brown corpus/i);
    }
    const instructions = records.map((r) => String(r.instruction));
    assert.equal(new Set(instructions).size, instructions.length, 'every instruction is different');
    // About 300 rows, like the datasets the tests were sized for; some with an input, most without.
    assert.ok(records.length >= 280 && records.length <= 320, `${records.length} records`);
    const withInput = records.filter((r) => r.input !== '').length;
    assert.ok(withInput >= 0.15 * records.length && withInput <= 0.5 * records.length, `${withInput} with input`);

    // Exactly the source file's records, in the seeded order (the source itself is grouped by kind).
    const source = parseSampleInstructions(readFileSync(sampleInstructionsPath(), 'utf8'));
    assert.deepEqual(records, seededShuffle(source, SAMPLE_DATASET_SEED));
    assert.notDeepEqual(records, source, 'the kinds are mixed');
  });

  test('the dataset fits the default max sequence length under the Alpaca prompt, with real tokens', async () => {
    const tok = await loadTokenizer(SAMPLE_MODEL_DIR);
    assert.ok(tok);
    const { maxSeqLen } = DEFAULT_RUN_CONFIG.train;
    const summary = await inspectDataset({ path: SAMPLE_DATASET_PATH, format: 'auto', tokenizer: tok, maxSeqLen, show: 0 });
    assert.equal(summary.format, 'alpaca');
    assert.equal(summary.badRecordCount, 0);
    assert.equal(summary.truncated, 0, `rows longer than ${maxSeqLen} tokens: ${JSON.stringify(summary.tokenLengths?.filter((n) => n > maxSeqLen))}`);
    const stats = summary.tokenStats;
    assert.ok(stats);
    // Similar in size to what the training tests were timed with (~30 000 tokens, ~100 a row).
    assert.ok(stats.total > 20_000 && stats.total < 40_000 && stats.mean > 60, JSON.stringify(stats));
    // Plain English is covered by the kept 8000 merges: whole words or large pieces of them (over 3 characters a
    // token), and hardly any token is a lone byte of a character outside ASCII (the byte-level fallback).
    const texts = readFileSync(SAMPLE_DATASET_PATH, 'utf8')
      .trim()
      .split('\n')
      .flatMap((l) => Object.values(JSON.parse(l) as Record<string, string>).filter(Boolean));
    let chars = 0;
    let tokens = 0;
    let partBytes = 0;
    for (const t of texts) {
      const ids = tok.encode(t, { addSpecialTokens: false });
      chars += t.length;
      tokens += ids.length;
      partBytes += ids.filter((id) => tok.decode([id]).includes('\uFFFD')).length;
    }
    assert.ok(chars / tokens > 3.2, `${(chars / tokens).toFixed(2)} characters a token`);
    assert.ok(partBytes < 0.005 * tokens, `${partBytes} of ${tokens} tokens are parts of a character`);
  });

  test('the source checks: no empty field, no stray key, no repeated instruction', () => {
    const ok = '{"instruction":"Name a colour.","output":"Blue."}\n{"instruction":"Spell it.","input":"cat","output":"C, A, T."}\n';
    assert.deepEqual(parseSampleInstructions(ok), [
      { instruction: 'Name a colour.', input: '', output: 'Blue.' },
      { instruction: 'Spell it.', input: 'cat', output: 'C, A, T.' },
    ]);
    assert.throws(() => parseSampleInstructions(ok + '{"instruction":"Name a colour.","output":"Red."}\n', 'x.jsonl'), /x\.jsonl:3: the same instruction as line 1/);
    assert.throws(() => parseSampleInstructions('{"instruction":"Say hi.","output":""}'), /:1: output is empty/);
    assert.throws(() => parseSampleInstructions('{"instruction":"Say hi.","input":"","output":"Hi."}'), /input is empty/);
    assert.throws(() => parseSampleInstructions('{"instruction":" Say hi.","output":"Hi."}'), /whitespace/);
    assert.throws(() => parseSampleInstructions('{"instruction":"Say hi.","output":"Hi.","category":"greeting"}'), /:1:/);
    assert.throws(() => parseSampleInstructions('{"instruction":"Say hi.",'), /:1: not JSON/);
  });
});
