/**
 * Train-form presets: every built-in preset gives a form the services' validator accepts; applying one changes only
 * what it sets (never the paths, the data choices or the backend) and lists each change by label, old → new; a user
 * preset goes through localStorage as a checked train-form snapshot and comes back the same, one broken entry
 * dropped alone; names are checked (empty, too long, a built-in's name).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LORA_TARGETS } from '../../common/protocol.ts';
import { readTrainPresets } from '../../common/train-form-snapshot.ts';
import { checkForm, defaultForm, type FormValues } from '../../renderer/src/stores/form.ts';
import {
  BUILT_IN_PRESETS,
  deleteUserPreset,
  formChanges,
  formWithPreset,
  loadUserPresets,
  presetFromStored,
  presetNameProblem,
  PRESETS_STORAGE_KEY,
  saveUserPreset,
  settingsOfForm,
} from '../../renderer/src/stores/presets.ts';

function memoryStorage() {
  const m = new Map<string, string>();
  return { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v), map: m };
}

function edited(): FormValues {
  const f = defaultForm();
  return { ...f, numbers: { ...f.numbers, 'lora.r': '12', 'train.seed': '7' }, data: { ...f.data, format: 'alpaca', packing: true, validationPath: '/v.jsonl' }, compute: { ...f.compute, backend: 'webgpu' } };
}

test('every built-in preset makes a form the services accept, with distinct names', () => {
  assert.deepEqual(
    BUILT_IN_PRESETS.map((p) => p.name),
    ['Quick test', 'r16 all-linear', 'Quality', 'QLoRA 4-bit'],
  );
  for (const p of BUILT_IN_PRESETS) {
    const form = formWithPreset(edited(), p.settings);
    const check = checkForm(form, '/models/m', '/data/d.jsonl');
    assert.equal(check.ok, true, `${p.name}: ${JSON.stringify(check.errors)}`);
  }
  const r16 = checkForm(formWithPreset(defaultForm(), BUILT_IN_PRESETS[1]!.settings), '/m', '/d.jsonl');
  assert.ok(r16.ok);
  assert.equal(r16.ok && r16.config.lora.r, 16);
  assert.deepEqual(r16.ok && r16.config.lora.targets, [...LORA_TARGETS]);
  assert.equal(r16.ok && r16.config.train.schedule, 'cosine');
  const qlora = formWithPreset(defaultForm(), BUILT_IN_PRESETS[3]!.settings);
  const q = checkForm(qlora, '/m', '/d.jsonl');
  assert.ok(q.ok);
  assert.equal(q.ok && q.config.train.baseWeights, 'nf4');
  assert.equal(q.ok && q.config.train.gradientCheckpointing, true);
  assert.ok(formChanges(defaultForm(), qlora).some((c) => c.field === 'train.baseWeights' && c.label === 'Base weights' && c.from === 'f32' && c.to === 'nf4'));
});

test('a preset changes only what it sets; the changes are listed by label, old → new', () => {
  const before = edited();
  const after = formWithPreset(before, BUILT_IN_PRESETS[0]!.settings);
  assert.deepEqual(after.data, before.data, 'the data choices stay');
  assert.equal(after.compute.backend, 'webgpu', 'the backend stays');
  assert.equal(after.numbers['train.seed'], '7', 'what the preset does not set stays');
  const changes = formChanges(before, after);
  const byField = Object.fromEntries(changes.map((c) => [c.field, `${c.label}: ${c.from} → ${c.to}`]));
  assert.equal(byField['lora.r'], 'Rank (r): 12 → 4');
  assert.equal(byField['lora.alpha'], 'Alpha: 16 → 8');
  assert.equal(byField['train.steps'], 'Steps: 40 → 20');
  assert.equal(byField['train.batchSize'], 'Batch size: 4 → 2');
  assert.equal(byField['lora.targets'], undefined, 'the targets were already q_proj, v_proj');
  assert.equal(byField['train.seed'], undefined);
  const quality = formChanges(after, formWithPreset(after, BUILT_IN_PRESETS[2]!.settings));
  const q = Object.fromEntries(quality.map((c) => [c.field, `${c.from} → ${c.to}`]));
  assert.equal(q['lora.targets'], 'q_proj, v_proj → all 7');
  assert.equal(q['lora.rslora'], 'off → on');
  assert.equal(q['train.schedule'], 'constant → cosine');
  assert.equal(q['train.gradientCheckpointing'], 'off → on');
  // Applying the same preset again changes nothing.
  assert.deepEqual(formChanges(after, formWithPreset(after, BUILT_IN_PRESETS[0]!.settings)), []);
});

test('user presets: saved as checked snapshots, read back the same, replaced by name, deleted; a broken entry drops alone', () => {
  const storage = memoryStorage();
  const form = formWithPreset(edited(), BUILT_IN_PRESETS[1]!.settings);
  let list = saveUserPreset(storage, [], '  my sweep ', form, new Date('2026-12-03T08:00:00Z'));
  assert.deepEqual(list.map((p) => p.name), ['my sweep']);
  const stored = JSON.parse(storage.map.get(PRESETS_STORAGE_KEY) ?? '[]') as { snapshot: { modelPath: string; datasetPath: string } }[];
  assert.equal(stored[0]!.snapshot.modelPath, '', 'no paths in a preset');
  const back = loadUserPresets(storage);
  assert.deepEqual(back, list);
  const preset = presetFromStored(back[0]!);
  assert.equal(preset.builtIn, false);
  assert.deepEqual(preset.settings, settingsOfForm(form));
  // Applied to another form it gives exactly the saved settings, and leaves that form's data and backend alone.
  const other = defaultForm();
  const applied = formWithPreset(other, preset.settings);
  assert.deepEqual(settingsOfForm(applied), settingsOfForm(form));
  assert.deepEqual(applied.data, other.data);
  assert.equal(applied.compute.backend, other.compute.backend);

  list = saveUserPreset(storage, list, 'MY SWEEP', defaultForm());
  assert.equal(list.length, 1, 'the same name (any case) replaces');
  list = saveUserPreset(storage, list, 'second', defaultForm());
  storage.setItem(PRESETS_STORAGE_KEY, JSON.stringify([...JSON.parse(storage.getItem(PRESETS_STORAGE_KEY)!), { name: 'broken', snapshot: { version: 99 } }, 'junk']));
  assert.deepEqual(loadUserPresets(storage).map((p) => p.name), ['MY SWEEP', 'second']);
  assert.deepEqual(deleteUserPreset(storage, list, 'my sweep').map((p) => p.name), ['second']);
  assert.deepEqual(loadUserPresets(storage).map((p) => p.name), ['second']);
  storage.setItem(PRESETS_STORAGE_KEY, '{not json');
  assert.deepEqual(loadUserPresets(storage), []);
  assert.deepEqual(readTrainPresets({ not: 'a list' }), []);
});

test('preset names: not empty, not too long, not a built-in name', () => {
  assert.equal(presetNameProblem('mine'), null);
  assert.equal(presetNameProblem('   '), 'a preset needs a name');
  assert.equal(presetNameProblem('x'.repeat(81)), 'a preset name must be at most 80 characters');
  assert.equal(presetNameProblem('quick TEST'), '"quick TEST" is a built-in preset; choose another name');
  assert.throws(() => saveUserPreset(memoryStorage(), [], 'Quality', defaultForm()), /is a built-in preset/);
});
