/**
 * Faults the fuzzer and a hostile user found, kept as fixtures: each must now fail fast with a typed error naming
 * the file and field (they used to hang, exhaust the heap, or reject unhandled and take the host down).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { HfConfigError, parseHfConfig } from '../../engine/io/hf-config.ts';
import { loadModel, ModelLoadError } from '../../engine/io/hf-model.ts';
import { tinyHfConfig, writeRandomModel } from '../../engine/io/make-model.ts';
import { loadTokenizer, TokenizerLoadError } from '../../engine/io/tokenizer.ts';
import { SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';

const root = mkdtempSync(join(tmpdir(), 'repro-'));
after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = join(root, 'model');
writeRandomModel(modelDir, tinyHfConfig('llama', { num_hidden_layers: 2 }), { seed: 5 });

function withConfig(name: string, patch: Record<string, unknown>): string {
  const dir = join(root, name);
  cpSync(modelDir, dir, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, ...patch }));
  return dir;
}

function fastThrow(fn: () => unknown, cls: new (...a: never[]) => Error, pattern: RegExp): void {
  const t0 = performance.now();
  assert.throws(fn, (e: unknown) => e instanceof cls && pattern.test((e as Error).message));
  assert.ok(performance.now() - t0 < 1000, `refused in ${Math.round(performance.now() - t0)} ms`);
}

test('num_hidden_layers 2 000 000 is refused by the config reader, naming the field', () => {
  const dir = withConfig('layers-2m', { num_hidden_layers: 2_000_000 });
  fastThrow(() => loadModel(dir), HfConfigError, /config\.json.*num_hidden_layers.*2000000.*damaged/);
});

test('num_hidden_layers above the layers the weights hold names the first missing layer before building the tensor list', () => {
  const dir = withConfig('layers-1000', { num_hidden_layers: 1000 });
  fastThrow(() => loadModel(dir), ModelLoadError, /num_hidden_layers 1000, but the weights hold layers 0–1 \(tensor 'model\.layers\.2\./);
});

test('a qwen2 config with a sliding window and 1e9 layers fails at once instead of exhausting the heap', () => {
  const base = tinyHfConfig('qwen2', {}) as Record<string, unknown>;
  fastThrow(() => parseHfConfig({ ...base, num_hidden_layers: 1e9, use_sliding_window: true, sliding_window: 64, max_window_layers: 1 }), HfConfigError, /num_hidden_layers/);
  // Within bounds, the mixed layout is still named as unsupported, and the all-full/all-sliding ones still load.
  assert.throws(() => parseHfConfig({ ...base, num_hidden_layers: 4, use_sliding_window: true, sliding_window: 64, max_window_layers: 2 }), /max_window_layers.*mixes/);
  assert.equal(parseHfConfig({ ...base, num_hidden_layers: 4, use_sliding_window: true, sliding_window: 64, max_window_layers: 4 }).slidingWindow, null);
  assert.equal(parseHfConfig({ ...base, num_hidden_layers: 4, use_sliding_window: true, sliding_window: 64, max_window_layers: 0 }).slidingWindow, 64);
});

test('a token id of 1e9 in tokenizer.json is refused before the tokenizer library allocates for it', async () => {
  const dir = join(root, 'tok');
  cpSync(SAMPLE_MODEL_DIR, dir, { recursive: true });
  const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } };
  json.model.vocab.ED = 1_000_000_000;
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  const t0 = performance.now();
  await assert.rejects(loadTokenizer(dir), (e: unknown) => e instanceof TokenizerLoadError && /tokenizer\.json: model\.vocab\["ED"\] must be a token id from 0 to \d+, got 1000000000/.test((e as Error).message));
  assert.ok(performance.now() - t0 < 3000);
});
