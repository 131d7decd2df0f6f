/** inspectDataset (what the dataset page shows) and `lora-studio dataset inspect`. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { alpacaPrompt } from '../../engine/data/formats.ts';
import { inspectDataset, lengthHistogram, tokenLengthStats } from '../../engine/data/inspect.ts';
import type { Tokenizer } from '../../engine/model/types.ts';
import { brownSentences, LLAMA3_TOKENIZER_DIR, llama3Tokenizer } from '../helpers/data-tokenizers.ts';
import { repoRoot } from '../helpers/python.ts';

const dir = mkdtempSync(join(tmpdir(), 'data-inspect-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const s = brownSentences(40);
const EOS = '<|end_of_text|>';

function jsonlLines(name: string, lines: string[]): string {
  const p = join(dir, name);
  writeFileSync(p, `${lines.join('\n')}\n`);
  return p;
}

describe('length statistics and histogram', () => {
  it('match closed-form values on 1..100', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    assert.deepEqual(tokenLengthStats(xs), { count: 100, min: 1, max: 100, mean: 50.5, median: 50.5, p95: 95, total: 5050 });
    assert.deepEqual(tokenLengthStats([7, 3, 5]), { count: 3, min: 3, max: 7, mean: 5, median: 5, p95: 7, total: 15 });
    assert.equal(tokenLengthStats([]), null);
  });

  it('bins with round widths over the longest example and the cut-off', () => {
    const h = lengthHistogram([0, 9, 10, 19, 20, 395], 512);
    assert.equal(h.edges[1] - h.edges[0], 20); // 512 / 40 = 12.8 → 20
    assert.ok(h.edges[h.edges.length - 1] > 512);
    assert.equal(h.counts.reduce((a, b) => a + b, 0), 6);
    assert.deepEqual(h.counts.slice(0, 2), [4, 1]);
    assert.equal(h.counts[Math.floor(395 / 20)], 1);
  });
});

describe('inspectDataset', () => {
  let tok: Tokenizer;
  const recs = s.slice(0, 6).map((x, i) => ({ instruction: `Continue passage ${i}.`, input: i % 2 ? s[20 + i] : '', output: x }));
  let path: string;
  before(async () => {
    tok = await llama3Tokenizer();
    const lines = recs.map((r) => JSON.stringify(r));
    lines.splice(2, 0, '{"instruction": "broken"');
    path = jsonlLines('alpaca.jsonl', lines);
  });

  it('reports format, counts, bad lines, token lengths, truncation and a preview with trained spans', async () => {
    const lengths = recs.map((r) => tok.encode(alpacaPrompt(r.instruction, r.input) + r.output + EOS).length);
    const maxSeqLen = [...lengths].sort((a, b) => a - b)[3];
    const summary = await inspectDataset({ path, format: 'auto', tokenizer: tok, maxSeqLen, show: 3 });
    assert.equal(summary.format, 'alpaca');
    assert.equal(summary.records, 6);
    assert.deepEqual(summary.badRecords.map((b) => b.line), [3]);
    assert.deepEqual(summary.tokenLengths, lengths);
    assert.equal(summary.truncated, lengths.filter((n) => n > maxSeqLen).length);
    assert.equal(summary.tokenStats?.max, Math.max(...lengths));
    assert.equal(summary.histogram?.counts.reduce((a, b) => a + b, 0), 6);
    assert.equal(summary.preview.length, 3);
    summary.preview.forEach((p, i) => {
      assert.equal(p.text, alpacaPrompt(recs[i].instruction, recs[i].input) + recs[i].output + EOS);
      assert.deepEqual(p.trainedSpans.map(([a, b]) => p.text.slice(a, b)), [recs[i].output + EOS]);
    });
  });

  it('without a model: counts and a chatml preview of chat data, no token lengths', async () => {
    const p = jsonlLines('chat.jsonl', [JSON.stringify({ messages: [{ role: 'user', content: s[30] }, { role: 'assistant', content: s[31] }] })]);
    const summary = await inspectDataset({ path: p, format: 'auto', tokenizer: null });
    assert.equal(summary.format, 'messages');
    assert.equal(summary.chatTemplate, 'chatml');
    assert.equal(summary.tokenLengths, undefined);
    const [pv] = summary.preview;
    assert.equal(pv.text, `<|im_start|>user\n${s[30]}<|im_end|>\n<|im_start|>assistant\n${s[31]}<|im_end|>\n`);
    assert.deepEqual(pv.trainedSpans.map(([a, b]) => pv.text.slice(a, b)), [`${s[31]}<|im_end|>`]);
  });

  it('pre-tokenized data has token lengths without a model, and its labels become spans', async () => {
    const p = jsonlLines('tok.jsonl', [JSON.stringify({ input_ids: [1, 2, 3, 4], labels: [-100, -100, 3, 4] })]);
    const summary = await inspectDataset({ path: p, format: 'tokenized', tokenizer: null });
    assert.deepEqual(summary.tokenLengths, [4]);
    assert.deepEqual(summary.preview, [{ text: '1 2 3 4', trainedSpans: [[4, 7]] }]);
  });
});

describe('lora-studio dataset inspect', () => {
  const cli = (args: string[]): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, [join(repoRoot, 'bin/lora-studio.mjs'), 'dataset', 'inspect', ...args], {
      encoding: 'utf8',
      env: { ...process.env, LORA_STUDIO_FROM_SOURCE: '1' },
      timeout: 60_000,
    });

  it('prints the summary as JSON, with rendered examples and the text of their trained spans', () => {
    const recs = [
      { prompt: 'Headline:', completion: ` ${s[0]}` },
      { prompt: 'Headline:', completion: ` ${s[1]}` },
    ];
    const p = jsonlLines('cli.jsonl', [JSON.stringify(recs[0]), 'not json', JSON.stringify(recs[1])]);
    const r = cli([p, '--model', LLAMA3_TOKENIZER_DIR, '--max-seq-len', '16', '--show', '2', '--json']);
    assert.equal(r.status, 0, String(r.stderr));
    const out = JSON.parse(String(r.stdout)) as {
      format: string;
      records: number;
      badRecords: { line: number }[];
      tokenStats: { count: number };
      truncated: number;
      preview: { text: string; trained: string[] }[];
    };
    assert.equal(out.format, 'prompt-completion');
    assert.equal(out.records, 2);
    assert.deepEqual(out.badRecords.map((b) => b.line), [2]);
    assert.equal(out.tokenStats.count, 2);
    assert.equal(typeof out.truncated, 'number');
    assert.deepEqual(out.preview.map((x) => x.trained), recs.map((x) => [`${x.completion}${EOS}`]));
  });

  it("fails at the first bad record with 'fail', naming file and line", () => {
    const p = jsonlLines('cli-bad.jsonl', [JSON.stringify({ text: s[2] }), '{"text": 5}']);
    const r = cli([p, '--bad-records', 'fail']);
    assert.equal(r.status, 1);
    assert.match(String(r.stderr), /cli-bad\.jsonl line 2: field "text" must be a string, got number/);
    const bad = cli([p, '--format', 'csv-ish']);
    assert.equal(bad.status, 1);
    assert.match(String(bad.stderr), /--format must be one of auto, text/);
  });
});
