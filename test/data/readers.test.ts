/** Every reader on generated files of real text: values, line numbers, bad records, and file-type detection. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { readCsv } from '../../engine/data/csv.ts';
import { DatasetError } from '../../engine/data/errors.ts';
import { readJsonArray } from '../../engine/data/json-array.ts';
import { readJsonl } from '../../engine/data/jsonl.ts';
import { readParquet } from '../../engine/data/parquet.ts';
import type { SourceRecord } from '../../engine/data/record.ts';
import { detectFileKind } from '../../engine/data/source.ts';
import { readText } from '../../engine/data/text.ts';
import { writeParquet } from '../helpers/data-parquet-writer.ts';
import { brownSentences } from '../helpers/data-tokenizers.ts';

const dir = mkdtempSync(join(tmpdir(), 'data-readers-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const sentences = brownSentences(60);

async function all(gen: AsyncGenerator<SourceRecord>): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for await (const r of gen) out.push(r);
  return out;
}

function file(name: string, content: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

describe('JSONL', () => {
  it('reads records with their line numbers, skips blank lines, reports bad JSON by line', async () => {
    const lines = [
      JSON.stringify({ text: sentences[0] }),
      '',
      JSON.stringify({ text: sentences[1] }),
      '{"text": "unterminated',
      '   ',
      JSON.stringify({ text: sentences[2] }),
    ];
    const p = file('a.jsonl', `\uFEFF${lines.join('\r\n')}\r\n`);
    const recs = await all(readJsonl(p));
    assert.deepEqual(
      recs.map((r) => [r.line, r.value ?? null]),
      [
        [1, { text: sentences[0] }],
        [3, { text: sentences[1] }],
        [4, null],
        [6, { text: sentences[2] }],
      ],
    );
    assert.match(recs[2].error ?? '', /^invalid JSON \(/);
  });
});

describe('JSON array', () => {
  it('streams elements of a pretty-printed array with the line each starts on', async () => {
    const values = sentences.slice(0, 5).map((s, i) => ({ instruction: `Say it ${i}`, input: '', output: s, tricky: 'a "quoted" [bracket] {brace} \\ back\nline' }));
    const text = JSON.stringify(values, null, 2);
    const p = file('a.json', text);
    const recs = await all(readJsonArray(p));
    assert.deepEqual(recs.map((r) => r.value), values);
    const starts = text.split('\n').flatMap((l, i) => (l === '  {' ? [i + 1] : []));
    assert.deepEqual(recs.map((r) => r.line), starts);
  });

  it('gives the same values as JSON.parse for any array, at any chunk size (property)', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.jsonValue(), { maxLength: 8 }), fc.integer({ min: 1, max: 64 }), fc.constantFrom(0, 1, 2), async (arr, chunk, indent) => {
        const p = file(`prop-${n++}.json`, JSON.stringify(arr, null, indent));
        const recs = await all(readJsonArray(p, chunk));
        assert.ok(recs.every((r) => r.error === undefined));
        // JSON.parse turns -0 into 0 after a round trip through text; compare as JSON text.
        assert.equal(JSON.stringify(recs.map((r) => r.value)), JSON.stringify(JSON.parse(JSON.stringify(arr))));
      }),
      { numRuns: 60 },
    );
  });

  it('reports a malformed element by line and keeps reading the rest', async () => {
    const p = file('bad.json', '[\n{"text": "a"},\n{"text": tru},\n{"text": "b"}\n]\n');
    const recs = await all(readJsonArray(p));
    assert.deepEqual(recs.map((r) => [r.line, r.value ?? r.error?.slice(0, 12)]), [
      [2, { text: 'a' }],
      [3, 'invalid JSON'],
      [4, { text: 'b' }],
    ]);
  });

  it('refuses a file that is not an array, and reports one that is not closed', async () => {
    await assert.rejects(all(readJsonArray(file('obj.json', '\n\n{"a": 1}'))), (e: unknown) => e instanceof DatasetError && e.line === 3 && /not a JSON array/.test(e.message));
    const recs = await all(readJsonArray(file('open.json', '[{"a": 1},\n{"a": 2}')));
    assert.deepEqual(recs.map((r) => r.value ?? null), [{ a: 1 }, { a: 2 }, null]);
    assert.equal(recs[2].line, 2);
    assert.match(recs[2].error ?? '', /not closed/);
  });
});

describe('CSV and TSV', () => {
  it('reads a CSV with quoted commas and line breaks, numbering records by their first line', async () => {
    const q = (s: string): string => `"${s.replace(/"/g, '""')}"`;
    const rows = [
      'prompt,completion',
      `${q(sentences[0])},${q(sentences[1])}`,
      `${q(`two\nlines, ${sentences[2]}`)},${q(sentences[3])}`,
      `only one field`,
      `${q(sentences[4])},${q(sentences[5])}`,
    ];
    const p = file('a.csv', `${rows.join('\n')}\n`);
    assert.equal(await detectFileKind(p), 'csv');
    const recs = await all(readCsv(p, ','));
    assert.deepEqual(recs.map((r) => r.line), [2, 3, 5, 6]);
    assert.deepEqual(recs[0].value, { prompt: sentences[0], completion: sentences[1] });
    assert.deepEqual(recs[1].value, { prompt: `two\nlines, ${sentences[2]}`, completion: sentences[3] });
    assert.match(recs[2].error ?? '', /column|length/i);
    assert.deepEqual(recs[3].value, { prompt: sentences[4], completion: sentences[5] });
  });

  it('reads TSV, also when it hides behind a .csv name', async () => {
    const content = `instruction\tinput\toutput\nSay it\t\t${sentences[6]}\nRepeat\t${sentences[7]}\t${sentences[7]}\n`;
    for (const name of ['a.tsv', 'tabs.csv']) {
      const p = file(name, content);
      assert.equal(await detectFileKind(p), 'tsv');
      const recs = await all(readCsv(p, '\t'));
      assert.deepEqual(recs.map((r) => [r.line, r.value]), [
        [2, { instruction: 'Say it', input: '', output: sentences[6] }],
        [3, { instruction: 'Repeat', input: sentences[7], output: sentences[7] }],
      ]);
    }
  });
});

describe('Parquet', () => {
  it('reads every row group in order, with row numbers and INT64 as numbers', async () => {
    const texts = sentences.slice(0, 25);
    const p = join(dir, 'a.parquet');
    writeParquet(p, [
      { name: 'text', type: 'string', values: texts },
      { name: 'n', type: 'int64', values: texts.map((_, i) => i * 1000) },
    ], 7);
    assert.equal(await detectFileKind(p), 'parquet');
    const recs = await all(readParquet(p));
    assert.deepEqual(recs.map((r) => r.line), texts.map((_, i) => i + 1));
    assert.deepEqual(recs.map((r) => r.value), texts.map((t, i) => ({ text: t, n: i * 1000 })));
  });

  it('refuses a file that is not Parquet', async () => {
    await assert.rejects(all(readParquet(file('fake.parquet', 'PAR1 but not really'))), /not a readable Parquet file/);
  });
});

describe('plain text', () => {
  it('makes one example per blank-line-separated paragraph, keeping inner line breaks', async () => {
    const content = `${sentences[0]}\n${sentences[1]}\n\n\n${sentences[2]}\n   \n${sentences[3]}\r\n${sentences[4]}\n`;
    const p = file('a.txt', content);
    assert.equal(await detectFileKind(p), 'text');
    const recs = await all(readText(p));
    assert.deepEqual(recs.map((r) => [r.line, r.value]), [
      [1, { text: `${sentences[0]}\n${sentences[1]}` }],
      [5, { text: sentences[2] }],
      [7, { text: `${sentences[3]}\n${sentences[4]}` }],
    ]);
  });
});

describe('file type detection', () => {
  it('uses the extension, then the first bytes', async () => {
    assert.equal(await detectFileKind(file('x.json', '  [ {"a":1} ]')), 'json-array');
    assert.equal(await detectFileKind(file('y.json', '{"a":1}\n{"a":2}\n')), 'jsonl');
    assert.equal(await detectFileKind(file('noext', '{"a":1}\n')), 'jsonl');
    assert.equal(await detectFileKind(file('noext2', 'Just some prose.\n')), 'text');
    await assert.rejects(detectFileKind(file('squad.json', '{\n  "data": [{"text": "a"}]\n}\n')), /squad\.json line 1: a JSON dataset must be an array of records/);
    await assert.rejects(detectFileKind(join(dir, 'missing.jsonl')), /missing\.jsonl: file not found/);
    await assert.rejects(detectFileKind(file('empty.jsonl', '')), /empty/);
  });
});
