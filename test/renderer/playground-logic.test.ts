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
  assert.equal(describeOutput({ tokens: 12, tokensPerSecond: 35.24, stop: 'eos' }), '12 tokens · 35.2 tok/s · ended by the model');
  assert.equal(describeOutput({ tokens: 300, tokensPerSecond: 1234.5, stop: 'length' }), '300 tokens · 1235 tok/s · reached max new tokens');
  assert.equal(describeOutput({ tokens: 3, tokensPerSecond: 2, stop: 'cancelled' }), '3 tokens · 2.0 tok/s · stopped');
});
