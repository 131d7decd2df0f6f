import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readHfConfig } from '../../engine/io/hf-config.ts';
import { seededNormal, tinyHfConfig, writeRandomModel } from '../../engine/io/make-model.ts';
import { adapterKey, loadAdapter, saveAdapter, targetShape } from '../../engine/io/peft-adapter.ts';
import { withSafetensors, writeSafetensors, type WriteTensor } from '../../engine/io/safetensors.ts';
import { loraScaling, type FloatArray, type LoraConfig, type LoraTargetName, type LoraWeights, type ModelConfig } from '../../engine/model/types.ts';
import { runPython } from '../helpers/python.ts';

const root = mkdtempSync(join(tmpdir(), 'peft-'));
after(() => rmSync(root, { recursive: true, force: true }));
const ALL: LoraTargetName[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

// A small llama whose projections all have different shapes (q 32×32, k/v 16×32, gate/up 48×32, down 32×48).
const modelDir = join(root, 'model');
writeRandomModel(modelDir, tinyHfConfig('llama', { intermediate_size: 48 }), { seed: 3 });
const model: ModelConfig = readHfConfig(modelDir);

function sha256F32(a: FloatArray): string {
  const f = a instanceof Float32Array ? a : Float32Array.from(a);
  return createHash('sha256').update(new Uint8Array(f.buffer, f.byteOffset, f.byteLength)).digest('hex');
}

function randomLora(config: LoraConfig, seed: number): LoraWeights {
  const normal = seededNormal(seed);
  const layers = Array.from({ length: model.numLayers }, () => {
    const l: LoraWeights['layers'][number] = {};
    for (const t of config.targets) {
      const { out, in: inF } = targetShape(model, t);
      l[t] = { A: Float32Array.from({ length: config.r * inF }, () => normal()), B: Float32Array.from({ length: out * config.r }, () => normal()) };
    }
    return l;
  });
  return { config, scaling: loraScaling(config), layers };
}

function digests(lora: LoraWeights): Record<string, string> {
  const out: Record<string, string> = {};
  lora.layers.forEach((l, i) => {
    for (const t of ALL) {
      const p = l[t];
      if (!p) continue;
      out[adapterKey(i, t, 'A')] = sha256F32(p.A);
      out[adapterKey(i, t, 'B')] = sha256F32(p.B);
    }
  });
  return out;
}

interface PeftLoaded {
  tensors: Record<string, string>;
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  use_rslora: boolean;
  target_modules: string[];
  scaling: number;
}

describe('PEFT reads studio adapters and the studio reads PEFT adapters', () => {
  const cfgAll: LoraConfig = { r: 4, alpha: 8, dropout: 0.05, targets: ALL, rslora: false };
  const cfgQv: LoraConfig = { r: 2, alpha: 16, dropout: 0, targets: ['q_proj', 'v_proj'], rslora: true };
  const loraAll = randomLora(cfgAll, 11);
  const loraQv = randomLora(cfgQv, 12);
  const dirAll = join(root, 'studio-all');
  const dirQv = join(root, 'studio-qv');
  saveAdapter(dirAll, loraAll, { baseModelNameOrPath: modelDir });
  saveAdapter(dirQv, loraQv, { baseModelNameOrPath: modelDir });
  const peftDir = join(root, 'peft-made');

  test('files and adapter_config.json fields', () => {
    assert.deepEqual(readdirSync(dirAll).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
    const cfg = JSON.parse(readFileSync(join(dirAll, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    for (const [k, v] of Object.entries({
      peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: modelDir, r: 4, lora_alpha: 8, lora_dropout: 0.05, bias: 'none',
      fan_in_fan_out: false, use_rslora: false, init_lora_weights: true, modules_to_save: null, inference_mode: true,
    })) assert.deepEqual(cfg[k], v, k);
    assert.deepEqual(cfg.target_modules, ALL);
    assert.deepEqual(cfg.rank_pattern, {});
    assert.deepEqual(cfg.alpha_pattern, {});
    withSafetensors(join(dirAll, 'adapter_model.safetensors'), (f) => {
      assert.equal(f.header.metadata?.format, 'pt');
      assert.equal(f.names().length, 2 * 7 * model.numLayers);
      const a = f.info('base_model.model.model.layers.1.mlp.down_proj.lora_A.weight');
      assert.deepEqual([a.dtype, a.shape], ['F32', [4, 48]]);
      const b = f.info('base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight');
      assert.deepEqual([b.dtype, b.shape], ['F32', [16, 4]]);
    });
  });

  // One Python run (torch + PEFT start slowly): load both studio adapters, and save one made by PEFT.
  const py = JSON.parse(runPython('peft_roundtrip.py', [modelDir, '--load', dirAll, dirQv, '--save', peftDir, '5'])) as {
    loaded: PeftLoaded[];
    saved: { tensors: Record<string, string>; scaling: number };
  };

  test('PeftModel.from_pretrained loads studio adapters with identical weights and scaling', () => {
    const [all, qv] = py.loaded;
    assert.deepEqual(all.tensors, digests(loraAll));
    assert.deepEqual([all.r, all.lora_alpha, all.lora_dropout, all.use_rslora], [4, 8, 0.05, false]);
    assert.deepEqual(all.target_modules, [...ALL].sort());
    assert.equal(all.scaling, loraAll.scaling);
    assert.deepEqual(qv.tensors, digests(loraQv));
    assert.deepEqual([qv.r, qv.lora_alpha, qv.use_rslora], [2, 16, true]);
    assert.deepEqual(qv.target_modules, ['q_proj', 'v_proj']);
    assert.ok(Math.abs(qv.scaling - 16 / Math.sqrt(2)) < 1e-12);
    assert.equal(qv.scaling, loraQv.scaling);
  });

  test('loadAdapter reads a PEFT-saved adapter (all 7 targets, B ≠ 0) with identical tensors', () => {
    const made = py.saved;
    const lora = loadAdapter(peftDir, model);
    assert.deepEqual(lora.config, { r: 4, alpha: 8, dropout: 0.1, targets: ALL, rslora: false });
    assert.equal(lora.scaling, made.scaling);
    assert.deepEqual(digests(lora), made.tensors);
    assert.equal(Object.keys(made.tensors).length, 2 * 7 * model.numLayers);
    const b = lora.layers[1].up_proj?.B;
    assert.ok(b && b.some((x) => x !== 0), 'B is not zero, so the comparison covers real values');
  });

  test('studio save → studio load is exact, in f32 and f64', () => {
    const back = loadAdapter(dirAll, model);
    assert.deepEqual(back.config, cfgAll);
    assert.deepEqual(digests(back), digests(loraAll));
    const back64 = loadAdapter(dirQv, model, { dtype: Float64Array });
    assert.ok(back64.layers[0].q_proj?.A instanceof Float64Array);
    assert.deepEqual([...(back64.layers[0].q_proj?.A ?? [])], [...(loraQv.layers[0].q_proj?.A ?? [])]);
    assert.equal(back64.layers[0].k_proj, undefined);
  });
});

describe('loadAdapter refuses adapters that do not fit the base model', () => {
  const cfg: LoraConfig = { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'], rslora: false };
  let n = 0;
  /** An adapter folder with the given tensors and config fields. */
  function adapter(tensors: WriteTensor[], configPatch: Record<string, unknown> = {}): string {
    const d = join(root, `bad-${n++}`);
    mkdirSync(d);
    writeSafetensors(join(d, 'adapter_model.safetensors'), tensors);
    writeFileSync(join(d, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'], ...configPatch }));
    return d;
  }
  const t = (name: string, shape: number[]): WriteTensor => ({ name, dtype: 'F32', shape, data: new Float32Array(shape[0] * shape[1]) });
  const good = [t(adapterKey(0, 'q_proj', 'A'), [4, 32]), t(adapterKey(0, 'q_proj', 'B'), [32, 4])];

  test('shape mismatch names the tensor, expected and actual shape', () => {
    const d = adapter([t(adapterKey(0, 'q_proj', 'A'), [4, 32]), t(adapterKey(0, 'q_proj', 'B'), [16, 4])]);
    assert.throws(() => loadAdapter(d, model), /tensor 'base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_B\.weight' has shape \[16, 4\], expected \[32, 4\]/);
    const wrongR = adapter(good, { r: 8 });
    assert.throws(() => loadAdapter(wrongR, model), /q_proj\.lora_A\.weight' has shape \[4, 32\], expected \[8, 32\]/);
    const other = { ...model, hiddenSize: 64 };
    const studio = join(root, 'studio-for-other');
    saveAdapter(studio, randomLora(cfg, 1), { baseModelNameOrPath: 'x' });
    assert.throws(() => loadAdapter(studio, other), /lora_A\.weight' has shape \[4, 32\], expected \[4, 64\]/);
  });

  test('missing half of a pair, layer out of range, unknown keys', () => {
    assert.throws(() => loadAdapter(adapter([good[0]]), model), /tensor 'base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_B\.weight' is missing/);
    assert.throws(() => loadAdapter(adapter([t(adapterKey(5, 'q_proj', 'A'), [4, 32])]), model), /is for layer 5, but the base model has 2 layers/);
    assert.throws(() => loadAdapter(adapter([...good, t('base_model.model.lm_head.lora_A.weight', [4, 32])]), model), /tensor 'base_model\.model\.lm_head\.lora_A\.weight' is not a LoRA weight of a supported target/);
    assert.throws(() => loadAdapter(adapter([t('base_model.model.model.layers.0.mlp.q_proj.lora_A.weight', [4, 32])]), model), /not a LoRA weight/);
    assert.throws(() => loadAdapter(adapter([]), model), /no LoRA tensors found/);
  });

  test('key variants other tools write: adapter name inside the key, no base_model prefix', () => {
    const d = adapter([
      t('base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight', [4, 32]),
      t('base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight', [32, 4]),
      t('model.layers.1.self_attn.v_proj.lora_A.weight', [4, 32]),
      t('model.layers.1.self_attn.v_proj.lora_B.weight', [16, 4]),
    ]);
    const lora = loadAdapter(d, model);
    assert.deepEqual(lora.config.targets, ['q_proj', 'v_proj']);
    assert.ok(lora.layers[0].q_proj && lora.layers[1].v_proj && !lora.layers[0].v_proj);
  });

  test('config fields: string target_modules, defaults, and unsupported options', () => {
    const s = loadAdapter(adapter(good, { target_modules: '.*(q_proj|v_proj)$', lora_alpha: undefined, use_rslora: true }), model);
    assert.deepEqual([s.config.alpha, s.config.rslora, s.scaling], [8, true, 8 / 2]);
    const bad = (patch: Record<string, unknown>, re: RegExp): void => assert.throws(() => loadAdapter(adapter(good, patch), model), re);
    bad({ use_dora: true }, /adapter_config\.json: `use_dora` is true/);
    bad({ peft_type: 'IA3' }, /`peft_type` "IA3" is not supported/);
    bad({ bias: 'all' }, /`bias` "all" is not supported/);
    bad({ r: 0 }, /`r` must be a positive integer, got 0/);
    bad({ lora_dropout: 1.5 }, /`lora_dropout` must be a number in \[0, 1\)/);
    bad({ modules_to_save: ['lm_head'] }, /`modules_to_save` \["lm_head"\] is not supported/);
    bad({ rank_pattern: { q_proj: 8 } }, /`rank_pattern` gives per-module ranks/);
    bad({ target_modules: 3 }, /`target_modules` must be a list of module names or a regular expression string/);
  });

  test('not an adapter folder', () => {
    const d = join(root, 'empty-adapter');
    mkdirSync(d);
    assert.throws(() => loadAdapter(d, model), new RegExp(`${d} is not a LoRA adapter folder: adapter_config\\.json not found`));
    writeFileSync(join(d, 'adapter_config.json'), '{}');
    writeFileSync(join(d, 'adapter_model.bin'), '');
    assert.throws(() => loadAdapter(d, model), /adapter_model\.safetensors not found \(only adapter_model\.bin/);
    writeFileSync(join(d, 'adapter_config.json'), '{"r": ');
    assert.throws(() => loadAdapter(d, model), /adapter_config\.json: not valid JSON/);
  });

  test('saveAdapter replaces files in place and leaves no temporary files', () => {
    const d = join(root, 'resave');
    saveAdapter(d, randomLora(cfg, 1), { baseModelNameOrPath: 'base' });
    const second = randomLora({ ...cfg, r: 2 }, 2);
    saveAdapter(d, second, { baseModelNameOrPath: 'base' });
    assert.deepEqual(readdirSync(d).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
    assert.deepEqual(digests(loadAdapter(d, model)), digests(second));
    assert.ok(existsSync(join(d, 'adapter_model.safetensors')));
  });
});
