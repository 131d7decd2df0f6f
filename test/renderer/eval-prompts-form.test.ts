/**
 * The Train form's evaluation prompts (renderer/src/stores/form.ts evalPrompts): on, they become RunConfig.evalPrompts;
 * off or absent, the config has none; "Train again" rebuilds them; they survive a reload (form-storage.ts), and a
 * kept value that no longer fits falls back to off alone. The timeline helpers (common/eval-prompts.ts) too.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evalTimeline, mergeEvalSamples } from '../../common/eval-prompts.ts';
import type { EvalSample } from '../../common/protocol.ts';
import { FORM_STORAGE_KEY, loadKeptForm, saveKeptForm, type KeyValueStorage } from '../../renderer/src/stores/form-storage.ts';
import { checkForm, defaultForm, formFromConfig, type FormValues } from '../../renderer/src/stores/form.ts';

function memoryStorage(): KeyValueStorage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) };
}

const withPrompts = (over: Partial<NonNullable<FormValues['evalPrompts']>> = {}): FormValues => ({
  ...defaultForm(),
  evalPrompts: { enabled: true, prompts: ['What is LoRA?', 'Say hi.'], everySteps: '5', maxNewTokens: '24', ...over },
});

test('on: the config carries them; off or absent: none; Train again rebuilds them', () => {
  const on = checkForm(withPrompts(), '/m', '/d');
  assert.ok(on.ok, JSON.stringify(on.errors));
  assert.deepEqual(on.config.evalPrompts, { prompts: ['What is LoRA?', 'Say hi.'], everySteps: 5, maxNewTokens: 24 });
  const off = checkForm(withPrompts({ enabled: false }), '/m', '/d');
  assert.ok(off.ok && off.config.evalPrompts === undefined);
  const again = checkForm(formFromConfig(on.config), '/m', '/d');
  assert.ok(again.ok);
  assert.deepEqual(again.config.evalPrompts, on.config.evalPrompts);
});

test('bad values are named by their fields as the page shows them', () => {
  const bad = checkForm(withPrompts({ prompts: ['ok', ''], everySteps: '0', maxNewTokens: 'x' }), '/m', '/d');
  assert.ok(!bad.ok);
  assert.match(bad.errors['evalPrompts.prompts.1'] ?? '', /empty/);
  assert.match(bad.errors['evalPrompts.everySteps'] ?? '', /at least 1/);
  assert.match(bad.errors['evalPrompts.maxNewTokens'] ?? '', /number/);
});

test('kept across a reload; a broken kept value turns them off and keeps the rest', () => {
  const storage = memoryStorage();
  const form = withPrompts({ everySteps: '1e' });
  saveKeptForm(storage, { form, modelPath: '/m', datasetPath: '/d' });
  assert.deepEqual(loadKeptForm(storage)?.form.evalPrompts, form.evalPrompts);
  const raw = JSON.parse(storage.data.get(FORM_STORAGE_KEY) ?? '{}') as Record<string, unknown>;
  storage.setItem(FORM_STORAGE_KEY, JSON.stringify({ ...raw, evalPrompts: { enabled: true, prompts: [] } }));
  const back = loadKeptForm(storage);
  assert.equal(back?.form.evalPrompts, undefined);
  assert.equal(back?.modelPath, '/m');
});

test('timeline: rows by step, a later answer of the same step and prompt wins, truncation drops later steps', () => {
  const s = (step: number, index: number, answer: string): EvalSample => ({ runId: 'r', step, index, prompt: `p${index}`, answer, tokens: 1, stop: 'length' });
  const merged = mergeEvalSamples([s(0, 0, 'a'), s(0, 1, 'b'), s(5, 0, 'c')], [s(5, 0, 'c2'), s(10, 1, 'd')]);
  assert.deepEqual(merged.map((x) => `${x.step}:${x.index}:${x.answer}`), ['0:0:a', '0:1:b', '5:0:c2', '10:1:d']);
  const rows = evalTimeline(merged, 2);
  assert.deepEqual(rows.map((r) => [r.step, r.answers.map((a) => a?.answer ?? null)]), [[0, ['a', 'b']], [5, ['c2', null]], [10, [null, 'd']]]);
  assert.deepEqual(mergeEvalSamples(merged, [], 5).map((x) => x.step), [0, 0, 5]);
});
