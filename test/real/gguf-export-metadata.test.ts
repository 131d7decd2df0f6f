/**
 * Metadata of the model GGUFs we write, read back by the PyPI `gguf` package: from the real SmolLM2 GGUF as source
 * every tokenizer.* and general.* key of the source is in ours with an equal value (except the name, type and file
 * type we set); from a transformers-5 style folder (chat template only in chat_template.jinja, no add_bos_token in
 * tokenizer_config.json) the chat template, add_bos/add_eos, add_space_prefix and the special ids are written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quantizeCommand } from '../../host/cli/quant.ts';
import { ggufTokenizerKv } from '../../engine/quant/gguf-tokenizer.ts';
import { writeGguf } from '../../engine/quant/gguf-writer.ts';
import { repoRoot, runPython } from '../helpers/python.ts';
import { realModelPath } from '../helpers/real-model.ts';

const dir = mkdtempSync(join(tmpdir(), 'gguf-meta-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

type Meta = Record<string, unknown>;
const readMeta = (...paths: string[]): Meta[] => JSON.parse(runPython('gguf_metadata.py', paths, 600_000)) as Meta[];

test('a q8_0 model GGUF exported from the real SmolLM2 GGUF keeps every tokenizer.* and general.* key of the source', { timeout: 900_000 }, () => {
  const source = realModelPath();
  const out = join(dir, 'smollm2-q8_0.gguf');
  const res = quantizeCommand({ model: source, format: 'q8_0', out, quiet: true });
  assert.equal(res.tokenizerNote, null);
  const [src, ours] = readMeta(source, out);
  const changed = new Set(['general.name', 'general.file_type', 'general.quantization_version', 'general.alignment']);
  const keys = Object.keys(src).filter((k) => !changed.has(k));
  for (const k of ['tokenizer.ggml.pre', 'tokenizer.ggml.add_bos_token', 'tokenizer.ggml.add_space_prefix', 'tokenizer.ggml.unknown_token_id', 'tokenizer.chat_template', 'general.basename', 'general.finetune', 'general.license', 'general.size_label']) {
    assert.ok(keys.includes(k), `the source GGUF has ${k}`);
  }
  for (const k of keys) assert.deepEqual(ours[k], src[k], k);
  assert.equal(ours['tokenizer.ggml.pre'], 'smollm');
});

test('a model GGUF written from a transformers-5 folder carries the chat template from chat_template.jinja and add_bos from the post-processor', () => {
  const folder = join(dir, 'tf5');
  cpSync(join(repoRoot, 'assets/sample-model'), folder, { recursive: true });
  const tcPath = join(folder, 'tokenizer_config.json');
  const tc = JSON.parse(readFileSync(tcPath, 'utf8')) as Record<string, unknown>;
  const template = tc.chat_template as string;
  assert.equal(typeof template, 'string');
  delete tc.chat_template;
  delete tc.add_bos_token;
  delete tc.add_eos_token;
  writeFileSync(tcPath, JSON.stringify(tc));
  writeFileSync(join(folder, 'chat_template.jinja'), template);
  const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as { vocab_size: number; bos_token_id: number; eos_token_id: number | number[] };
  const tok = ggufTokenizerKv(folder, config.vocab_size);
  assert.equal(tok.note, null);
  const out = join(dir, 'tf5.gguf');
  writeGguf(out, [{ key: 'general.architecture', value: { type: 'string', value: 'llama' } }, ...tok.kvs], []);
  const [m] = readMeta(out);
  assert.equal(m['tokenizer.chat_template'], template);
  // The sample's tokenizer.json post-processor puts <|begin_of_text|> before a single sequence and nothing after it.
  assert.equal(m['tokenizer.ggml.add_bos_token'], true);
  assert.equal(m['tokenizer.ggml.add_eos_token'], false);
  assert.equal(m['tokenizer.ggml.add_space_prefix'], false);
  assert.equal(m['tokenizer.ggml.bos_token_id'], config.bos_token_id);
  assert.equal(m['tokenizer.ggml.model'], 'gpt2');
});
