/**
 * prepareDataset end to end on each reader and format with the real Llama 3 tokenizer and Brown Corpus text:
 * what is trained on, bad-record policies, refusals of empty data, truncation, seeded split, second-file validation,
 * packing, and pre-tokenized data without a tokenizer.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DatasetError } from '../../engine/data/errors.ts';
import { alpacaPrompt } from '../../engine/data/formats.ts';
import { prepareDataset, type PrepareOptions } from '../../engine/data/prepare.ts';
import { IGNORE_INDEX, type Tokenizer, type TrainingExample } from '../../engine/model/types.ts';
import { writeParquet } from '../helpers/data-parquet-writer.ts';
import { brownSentences, llama3Tokenizer } from '../helpers/data-tokenizers.ts';

const dir = mkdtempSync(join(tmpdir(), 'data-prepare-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const s = brownSentences(200);
const EOS = '<|end_of_text|>';

function file(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

function jsonl(name: string, records: unknown[]): string {
  return file(name, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

/** Decoded text of the trained and of the ignored positions. */
function parts(tok: Tokenizer, ex: TrainingExample): { trained: string; ignored: string } {
  return {
    trained: tok.decode(ex.inputIds.filter((_, i) => ex.labels[i] !== IGNORE_INDEX)),
    ignored: tok.decode(ex.inputIds.filter((_, i) => ex.labels[i] === IGNORE_INDEX)),
  };
}

let tok: Tokenizer;
let base: Omit<PrepareOptions, 'path'>;
before(async () => {
  tok = await llama3Tokenizer();
  base = { format: 'auto', tokenizer: tok, maxSeqLen: 512, validationPercent: 0, seed: 7, badRecords: 'fail', trainOn: 'auto' };
});

describe('what is trained on, per format', () => {
  it('plain text: every token, and the document ends with EOS', async () => {
    const p = file('doc.txt', `${s[0]}\n${s[1]}\n\n${s[2]}\n`);
    const d = await prepareDataset({ ...base, path: p });
    assert.equal(d.format, 'text');
    assert.equal(d.records, 2);
    const byText = new Map(d.train.map((ex) => [tok.decode(ex.inputIds), ex]));
    for (const text of [`${s[0]}\n${s[1]}`, s[2]]) {
      const ex = byText.get(text + EOS);
      assert.ok(ex, text);
      assert.deepEqual(ex.labels, ex.inputIds);
      assert.deepEqual(ex.inputIds, tok.encode(text + EOS));
    }
  });

  it('prompt/completion (CSV): only the completion and EOS', async () => {
    const q = (x: string): string => `"${x.replace(/"/g, '""')}"`;
    const rows = s.slice(10, 16).map((x, i) => `${q(`Sentence ${i} of the report:`)},${q(` ${x}`)}`);
    const p = file('pc.csv', `prompt,completion\n${rows.join('\n')}\n`);
    const d = await prepareDataset({ ...base, path: p });
    assert.equal(d.format, 'prompt-completion');
    const got = d.train.map((ex) => parts(tok, ex)).sort((a, b) => a.ignored.localeCompare(b.ignored));
    assert.deepEqual(got, s.slice(10, 16).map((x, i) => ({ trained: ` ${x}${EOS}`, ignored: `Sentence ${i} of the report:` })));
  });

  it('Alpaca (JSON array): only the output and EOS, after the Alpaca prompt', async () => {
    const recs = s.slice(20, 24).map((x, i) => ({ instruction: 'Continue the passage.', input: i % 2 ? s[30 + i] : '', output: x }));
    const p = file('alpaca.json', JSON.stringify(recs, null, 2));
    const d = await prepareDataset({ ...base, path: p });
    assert.equal(d.format, 'alpaca');
    const got = d.train.map((ex) => parts(tok, ex)).sort((a, b) => a.trained.localeCompare(b.trained));
    const want = recs.map((r) => ({ trained: r.output + EOS, ignored: alpacaPrompt(r.instruction, r.input) })).sort((a, b) => a.trained.localeCompare(b.trained));
    assert.deepEqual(got, want);
  });

  it('ShareGPT (Parquet, conversations as JSON text): only the gpt turns with <|eot_id|>', async () => {
    const convs = [0, 1, 2].map((i) => [
      { from: 'human', value: s[40 + i] },
      { from: 'gpt', value: s[50 + i] },
      { from: 'human', value: s[60 + i] },
      { from: 'gpt', value: s[70 + i] },
    ]);
    const p = join(dir, 'sharegpt.parquet');
    writeParquet(p, [{ name: 'conversations', type: 'string', values: convs.map((c) => JSON.stringify(c)) }], 2);
    const d = await prepareDataset({ ...base, path: p });
    assert.equal(d.format, 'sharegpt');
    assert.equal(d.chatTemplate, 'model');
    const trained = d.train.map((ex) => parts(tok, ex).trained).sort();
    assert.deepEqual(trained, [0, 1, 2].map((i) => `${s[50 + i]}<|eot_id|>${s[70 + i]}<|eot_id|>`).sort());
  });

  it("trainOn 'all' trains a chat on every token", async () => {
    const p = jsonl('all.jsonl', [{ messages: [{ role: 'user', content: s[80] }, { role: 'assistant', content: s[81] }] }]);
    const d = await prepareDataset({ ...base, path: p, trainOn: 'all' });
    assert.deepEqual(d.train[0].labels, d.train[0].inputIds);
  });

  it('pre-tokenized data needs no tokenizer and keeps its labels', async () => {
    const p = jsonl('tok.jsonl', [
      { input_ids: [5, 6, 7, 8], labels: [-100, -100, 7, 8] },
      { input_ids: [9, 10, 11] },
    ]);
    const d = await prepareDataset({ ...base, path: p, tokenizer: null });
    assert.equal(d.format, 'tokenized');
    const sorted = [...d.train].sort((a, b) => a.inputIds[0] - b.inputIds[0]);
    assert.deepEqual(sorted, [
      { inputIds: [5, 6, 7, 8], labels: [-100, -100, 7, 8] },
      { inputIds: [9, 10, 11], labels: [9, 10, 11] },
    ]);
    await assert.rejects(prepareDataset({ ...base, path: jsonl('tok-big.jsonl', [{ input_ids: [1, 999999] }]) }), /token id 999999 is outside the vocabulary \(size 128256\)/);
  });

  it('text data without a tokenizer is refused, naming the tokenizer', async () => {
    await assert.rejects(prepareDataset({ ...base, path: jsonl('t.jsonl', [{ text: s[0] }]), tokenizer: null }), (e: unknown) => e instanceof DatasetError && e.field === 'tokenizer');
  });
});

describe('bad records', () => {
  const lines = [
    JSON.stringify({ instruction: 'a', output: s[1] }),
    JSON.stringify({ instruction: 'b', output: s[2] }),
    '{"instruction": "c", "output": ',
    JSON.stringify({ instruction: 'd', output: s[3] }),
    JSON.stringify({ instruction: 'e', output: 17 }),
  ];

  it("'fail' throws at the first bad record with file and line", async () => {
    const p = file('bad.jsonl', lines.join('\n'));
    await assert.rejects(prepareDataset({ ...base, path: p }), (e: unknown) => {
      assert.ok(e instanceof DatasetError);
      assert.equal(e.line, 3);
      assert.match(e.message, /^bad\.jsonl line 3: invalid JSON \(/);
      return true;
    });
    const p2 = file('bad2.jsonl', [lines[0], lines[4]].join('\n'));
    await assert.rejects(prepareDataset({ ...base, path: p2 }), (e: unknown) => {
      assert.ok(e instanceof DatasetError);
      assert.equal(e.message, 'bad2.jsonl line 2: field "output" must be a string, got number');
      assert.equal(e.field, 'output');
      return true;
    });
  });

  it("'skip' counts and lists them, and trains on the rest", async () => {
    const p = file('bad.jsonl', lines.join('\n'));
    const d = await prepareDataset({ ...base, path: p, badRecords: 'skip' });
    assert.equal(d.records, 3);
    assert.equal(d.train.length, 3);
    assert.deepEqual(d.badRecords.map((b) => b.line), [3, 5]);
    assert.match(d.badRecords[0].message, /^invalid JSON/);
    assert.equal(d.badRecords[1].message, 'field "output" must be a string, got number');
  });

  it('a record of another shape is bad; an undetectable first record is named', async () => {
    const p = jsonl('mixed.jsonl', [{ question: 'q' }, { text: s[0] }, { prompt: 'p', completion: 'c' }]);
    const d = await prepareDataset({ ...base, path: p, badRecords: 'skip' });
    assert.equal(d.format, 'text');
    assert.deepEqual(d.badRecords.map((b) => b.line), [1, 3]);
    assert.match(d.badRecords[0].message, /cannot tell the record format from its fields \(question\)/);
    assert.match(d.badRecords[1].message, /field "text" is missing/);
  });
});

describe('empty and filtered datasets are refused before training', () => {
  it('no records, all bad, nothing left after truncation', async () => {
    await assert.rejects(prepareDataset({ ...base, path: file('blank.jsonl', '\n\n  \n') }), /blank\.jsonl: the dataset has no records/);
    await assert.rejects(prepareDataset({ ...base, path: file('allbad.jsonl', '{x\n{y\n'), badRecords: 'skip' }), /all 2 records are bad \(first: line 1: invalid JSON/);
    const longPrompt = jsonl('longprompt.jsonl', [{ prompt: s.slice(0, 5).join(' '), completion: s[5] }]);
    await assert.rejects(prepareDataset({ ...base, path: longPrompt, maxSeqLen: 16 }), /none of the 1 examples has a token to train on within the first 16 tokens/);
  });
});

describe('truncation, split, packing', () => {
  const records = s.slice(0, 50).map((x, i) => ({ prompt: `Item ${i}:`, completion: ` ${x}` }));
  let path: string;
  before(() => {
    path = jsonl('fifty.jsonl', records);
  });

  it('cuts examples to maxSeqLen and counts them', async () => {
    const lengths = records.map((r) => tok.encode(r.prompt + r.completion + EOS).length);
    const maxSeqLen = 24;
    const d = await prepareDataset({ ...base, path, maxSeqLen });
    assert.deepEqual(d.tokenLengths, lengths);
    assert.equal(d.truncated, lengths.filter((n) => n > maxSeqLen).length);
    assert.ok(d.truncated > 0 && d.truncated < 50);
    assert.ok(d.train.every((ex) => ex.inputIds.length <= maxSeqLen && ex.labels.length === ex.inputIds.length));
  });

  it('splits by percent with a seeded shuffle: same seed same split, all examples kept once', async () => {
    const a = await prepareDataset({ ...base, path, validationPercent: 20 });
    const b = await prepareDataset({ ...base, path, validationPercent: 20 });
    const c = await prepareDataset({ ...base, path, validationPercent: 20, seed: 8 });
    assert.equal(a.validation.length, 10);
    assert.equal(a.train.length, 40);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.train, c.train);
    const key = (ex: TrainingExample): string => ex.inputIds.join(',');
    const all = records.map((r) => tok.encode(r.prompt + r.completion + EOS).join(',')).sort();
    assert.deepEqual([...a.train, ...a.validation].map(key).sort(), all);
    assert.deepEqual([...c.train, ...c.validation].map(key).sort(), all);
  });

  it('takes the validation split from a second file', async () => {
    const val = jsonl('val.jsonl', [{ prompt: 'V:', completion: ` ${s[150]}` }, { prompt: 'V:', completion: ` ${s[151]}` }]);
    const d = await prepareDataset({ ...base, path, validationPath: val });
    assert.equal(d.train.length, 50);
    assert.deepEqual(d.validation.map((ex) => parts(tok, ex).trained), [` ${s[150]}${EOS}`, ` ${s[151]}${EOS}`]);
    await assert.rejects(prepareDataset({ ...base, path, validationPath: val, validationPercent: 10 }), /not both/);
  });

  it('packs examples in order into rows of at most maxSeqLen, masking each example start', async () => {
    const maxSeqLen = 96;
    const plain = await prepareDataset({ ...base, path, maxSeqLen });
    const packed = await prepareDataset({ ...base, path, maxSeqLen, packing: true });
    assert.ok(packed.train.length < plain.train.length);
    assert.ok(packed.train.every((r) => r.inputIds.length <= maxSeqLen));
    assert.deepEqual(packed.train.flatMap((r) => r.inputIds), plain.train.flatMap((ex) => ex.inputIds));
    const expectedLabels = plain.train.flatMap((ex) => ex.labels.map((l, i) => (i === 0 ? IGNORE_INDEX : l)));
    assert.deepEqual(packed.train.flatMap((r) => r.labels), expectedLabels);
    // greedy: the first example of each row would not have fitted in the row before
    for (let r = 1; r < packed.train.length; r++) {
      const next = plain.train.find((ex) => packed.train[r].inputIds.slice(0, ex.inputIds.length).join() === ex.inputIds.join());
      assert.ok(next && packed.train[r - 1].inputIds.length + next.inputIds.length > maxSeqLen);
    }
  });
});
