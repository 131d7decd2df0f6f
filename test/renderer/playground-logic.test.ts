import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DATASET_FORMATS } from '../../common/protocol.ts';
import { describeOutput, parseSettings, promptFormatFor } from '../../renderer/src/playground/playground-logic.ts';
import { DEFAULT_SETTINGS } from '../../renderer/src/playground/playground-store.ts';

test('promptFormatFor: every dataset format maps to the wrapping training gave its records', () => {
  const got = Object.fromEntries(DATASET_FORMATS.filter((f) => f !== 'auto').map((f) => [f, promptFormatFor(f)]));
  assert.deepEqual(got, { text: 'raw', 'prompt-completion': 'raw', alpaca: 'alpaca', sharegpt: 'chat', messages: 'chat', tokenized: 'raw' });
});

test('parseSettings: the defaults are valid; each bad value is reported on its own field', () => {
  assert.deepEqual(parseSettings(DEFAULT_SETTINGS).values, { maxNewTokens: 128, temperature: 0, topP: 1, seed: 42 });
  assert.deepEqual(parseSettings({ maxNewTokens: ' 64 ', temperature: '0.7', topP: '0.95', seed: '-3' }).values, { maxNewTokens: 64, temperature: 0.7, topP: 0.95, seed: -3 });
  const bad = parseSettings({ maxNewTokens: '1.5', temperature: '-1', topP: '0', seed: '' });
  assert.equal(bad.values, null);
  assert.deepEqual(Object.keys(bad.errors).sort(), ['maxNewTokens', 'seed', 'temperature', 'topP']);
  assert.ok(parseSettings({ ...DEFAULT_SETTINGS, maxNewTokens: '4097' }).errors.maxNewTokens);
  assert.ok(parseSettings({ ...DEFAULT_SETTINGS, topP: '1.01' }).errors.topP);
  assert.equal(parseSettings({ ...DEFAULT_SETTINGS, temperature: '5' }).values?.temperature, 5);
});

test('describeOutput: count, speed and why it stopped', () => {
  assert.equal(describeOutput({ tokens: 1, tokensPerSecond: null, stop: null }), '1 token');
  assert.equal(describeOutput({ tokens: 12, tokensPerSecond: 35.24, stop: 'eos' }), '12 tokens · 35.2 tok/s decode · ended by the model');
  assert.equal(describeOutput({ tokens: 300, tokensPerSecond: 1234.5, stop: 'length' }), '300 tokens · 1235 tok/s decode · reached max new tokens');
  assert.equal(describeOutput({ tokens: 3, tokensPerSecond: 2, stop: 'cancelled' }), '3 tokens · 2.0 tok/s decode · stopped');
  // Prefill is its own figure: 40 prompt tokens in 250 ms = 160 tok/s; a 1-token answer has no decode speed.
  assert.equal(describeOutput({ tokens: 2, tokensPerSecond: 50, prefillMs: 250, stop: 'length' }, 40), '2 tokens · 50.0 tok/s decode · prefill 250 ms (160 tok/s) · reached max new tokens');
  assert.equal(describeOutput({ tokens: 1, tokensPerSecond: null, prefillMs: 12.34, stop: 'length' }), '1 token · prefill 12.3 ms · reached max new tokens');
});
