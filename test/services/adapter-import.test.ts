/**
 * 'adapters.import' on real adapter folders written by the studio's own writer (saveAdapter) and then edited the way
 * adapters from elsewhere go wrong: target_modules that do not match the weights or that the studio cannot apply,
 * weights for a base model of another shape, a missing file. Each refusal must say what does not match and where
 * (the file, the field), and leave the Adapters list as it was; a good folder comes in with its base model recorded.
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tinyHfConfig, writeRandomModel } from '../../engine/io/make-model.ts';
import { loadModel } from '../../engine/io/model-source.ts';
import { writeLlamaGguf } from '../../engine/quant/gguf-llama.ts';
import { writeTestAdapter } from '../helpers/peft-folder.ts';
import { refusal, tempStudios } from '../helpers/temp-studio.ts';

const { tmp, services } = tempStudios('lora-studio-import-');
const s = services('studio');

// Two tiny llamas that differ only in width: an adapter of one has the wrong shapes for the other.
const modelA = join(tmp, 'model-a');
const modelB = join(tmp, 'model-b');
writeRandomModel(modelA, tinyHfConfig('llama', { vocab_size: 64, hidden_size: 16, intermediate_size: 32, num_attention_heads: 2, num_key_value_heads: 1 }), { seed: 1, std: 0.2 });
writeRandomModel(modelB, tinyHfConfig('llama', { vocab_size: 64, hidden_size: 24, intermediate_size: 32, num_attention_heads: 2, num_key_value_heads: 1 }), { seed: 2, std: 0.2 });
const good = join(tmp, 'good-adapter');
writeTestAdapter(good, modelA, 4, ['q_proj', 'v_proj']);

/** A copy of the good adapter with adapter_config.json changed by `edit`. */
function edited(name: string, edit: (config: Record<string, unknown>) => void): string {
  const dir = join(tmp, name);
  cpSync(good, dir, { recursive: true });
  const file = join(dir, 'adapter_config.json');
  const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(config);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return dir;
}

async function listed(): Promise<number> {
  return (await s.handle('adapters.list', {})).length;
}

test('a good adapter comes in, checked against its base model (the one its config names)', async () => {
  const { adapter, warnings } = await s.handle('adapters.import', { path: good, name: 'from elsewhere' });
  assert.deepEqual(warnings, []);
  assert.equal(adapter.name, 'from elsewhere r4');
  assert.equal(adapter.r, 4);
  assert.deepEqual(adapter.targets, ['q_proj', 'v_proj']);
  assert.equal(adapter.importedFrom, good);
  assert.ok((await s.handle('adapters.list', {})).some((a) => a.id === adapter.id));
});

test('target_modules listing a module the weights lack: named, with the file', async () => {
  const dir = edited('lists-k-proj', (c) => (c.target_modules = ['q_proj', 'v_proj', 'k_proj']));
  const n = await listed();
  const e = await refusal(() => s.handle('adapters.import', { path: dir, modelPath: modelA }));
  assert.equal(e.message, `${join(dir, 'adapter_config.json')}: target_modules lists k_proj but adapter_model.safetensors has no weights for it`);
  assert.equal(e.info.field, 'path');
  assert.equal(e.info.file, join(dir, 'adapter_config.json'));
  assert.equal(await listed(), n, 'nothing was added');
});

test('target_modules leaving out a module the weights have: named', async () => {
  const dir = edited('lists-q-only', (c) => (c.target_modules = ['q_proj']));
  const e = await refusal(() => s.handle('adapters.import', { path: dir }));
  assert.equal(e.message, `${join(dir, 'adapter_config.json')}: target_modules does not list v_proj, which adapter_model.safetensors has weights for`);
});

test('target_modules the studio cannot apply: named, with the ones it can', async () => {
  const dir = edited('lists-lm-head', (c) => (c.target_modules = ['q_proj', 'v_proj', 'lm_head']));
  const e = await refusal(() => s.handle('adapters.import', { path: dir, modelPath: modelA }));
  assert.equal(e.message, `${join(dir, 'adapter_config.json')}: target_modules ["lm_head"] cannot be applied by the studio, which adapts q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj only`);
  assert.equal(e.info.field, 'path');
});

test('a config the engine cannot honour (DoRA, a bad alpha): refused at import naming the field, as loading it would', async () => {
  const n = await listed();
  const dora = edited('dora', (c) => (c.use_dora = true));
  const e1 = await refusal(() => s.handle('adapters.import', { path: dora, modelPath: modelA }));
  assert.match(e1.message, /adapter_config\.json: `use_dora` is true: DoRA adapters are not supported/);
  const alpha = edited('bad-alpha', (c) => (c.lora_alpha = 'sixteen'));
  const e2 = await refusal(() => s.handle('adapters.import', { path: alpha, modelPath: modelA }));
  assert.match(e2.message, /adapter_config\.json: `lora_alpha` must be a positive number, got "sixteen"/);
  assert.equal(await listed(), n, 'nothing was added');
});

test('the wrong base model: the shapes that do not fit, and the model the adapter says it was trained on', async () => {
  const n = await listed();
  const e = await refusal(() => s.handle('adapters.import', { path: good, modelPath: modelB }));
  // Layer 0's q_proj lora_A is [r, hidden]: [4, 16] in the file, [4, 24] for model B (whose q_proj is [16, 24]).
  const weights = join(good, 'adapter_model.safetensors');
  assert.equal(
    e.message,
    `${good} does not fit the base model ${modelB} (the adapter says it was trained on ${modelA}): ${weights}: tensor 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' has shape [4, 16], expected [4, 24] (r = 4, base q_proj is [16, 24])`,
  );
  assert.equal(e.info.field, 'modelPath', 'the base model is the field to change');
  assert.equal(e.info.file, join(good, 'adapter_model.safetensors'));
  assert.equal(await listed(), n);
});

test('a base model folder that is not one: named', async () => {
  const e = await refusal(() => s.handle('adapters.import', { path: good, modelPath: join(tmp, 'good-adapter') }));
  assert.equal(e.message, `${join(tmp, 'good-adapter')} is not a model folder or GGUF file: config.json not found`);
  assert.equal(e.info.field, 'modelPath');
});

test('a GGUF file as the base model: checked against it like a folder (and the other width refused)', async () => {
  const ggufA = join(tmp, 'model-a.gguf');
  const ggufB = join(tmp, 'model-b.gguf');
  writeLlamaGguf(ggufA, loadModel(modelA, { dtype: Float32Array }), { format: 'f16' });
  writeLlamaGguf(ggufB, loadModel(modelB, { dtype: Float32Array }), { format: 'f16' });
  const { adapter, warnings } = await s.handle('adapters.import', { path: good, modelPath: ggufA, name: 'on a gguf' });
  assert.deepEqual(warnings, []);
  assert.equal(adapter.baseModel, ggufA);
  const e = await refusal(() => s.handle('adapters.import', { path: good, modelPath: ggufB }));
  assert.match(e.message, new RegExp(`does not fit the base model ${ggufB.replace(/[.]/g, '\\.')}`));
  assert.equal(e.info.field, 'modelPath');
});

test('missing files: the weights, the config, the folder itself', async () => {
  const noWeights = edited('no-weights', () => {});
  rmSync(join(noWeights, 'adapter_model.safetensors'));
  let e = await refusal(() => s.handle('adapters.import', { path: noWeights }));
  assert.equal(e.message, `${noWeights} is not a PEFT adapter folder: adapter_model.safetensors not found`);
  assert.equal(e.info.field, 'path');

  const noConfig = edited('no-config', () => {});
  rmSync(join(noConfig, 'adapter_config.json'));
  e = await refusal(() => s.handle('adapters.import', { path: noConfig }));
  assert.equal(e.message, `${noConfig} is not a PEFT adapter folder: adapter_config.json not found`);

  e = await refusal(() => s.handle('adapters.import', { path: join(tmp, 'nowhere') }));
  assert.equal(e.message, `adapter folder ${join(tmp, 'nowhere')} does not exist`);
  assert.equal(e.info.field, 'path');

  e = await refusal(() => s.handle('adapters.import', { path: '' }));
  assert.deepEqual(e.info.fieldErrors, [{ field: 'path', message: 'choose an adapter folder' }]);
});

test('a base model that is not on this machine: imported with a warning that says it could not be checked', async () => {
  const dir = edited('hub-base', (c) => (c.base_model_name_or_path = 'nobody/not-cached-model'));
  const { adapter, warnings } = await s.handle('adapters.import', { path: dir });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /"nobody\/not-cached-model" is not on this machine/);
  assert.equal(adapter.r, 4);
});
