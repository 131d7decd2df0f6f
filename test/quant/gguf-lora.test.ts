/**
 * GGUF LoRA export, checked with the PyPI `gguf` reader against the PEFT adapter files and llama.cpp's conventions
 * (tests/python/gguf_lora_check.py): names, shapes, llama.cpp's q/k permutation of lora_b for the llama architecture
 * (none for Qwen), the adapter keys, and alpha chosen so llama.cpp's alpha / r is the adapter's scaling (rsLoRA too).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readHfConfig } from '../../engine/io/hf-config.ts';
import { saveAdapter } from '../../engine/io/peft-adapter.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import { llamaConfig } from '../../engine/model/llama-config.ts';
import { LORA_TARGET_ORDER, newLora } from '../../engine/model/lora.ts';
import type { LoraWeights, ModelConfig } from '../../engine/model/types.ts';
import { writeLoraGguf } from '../../engine/quant/gguf-lora.ts';
import { Rng } from '../../engine/util/rng.ts';
import { repoRoot, runPython } from '../helpers/python.ts';

const dir = mkdtempSync(join(tmpdir(), 'gguf-lora-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Check {
  kv: Record<string, string | number>;
  tensors: number;
  missing: string[];
  extra: string[];
  max_abs_diff: number;
  shapes_ok: boolean;
}

function adapter(cfg: ModelConfig, rslora: boolean, seed: number): LoraWeights {
  const lora = newLora(cfg, { r: 4, alpha: 16, dropout: 0, targets: [...LORA_TARGET_ORDER], rslora }, new Rng(seed), Float32Array);
  const rng = new Rng(seed + 1);
  for (const layer of lora.layers) for (const p of Object.values(layer)) if (p) for (let i = 0; i < p.B.length; i++) p.B[i] = rng.normal();
  return lora;
}

function exportAndCheck(name: string, cfg: ModelConfig, lora: LoraWeights, dtype: 'f32' | 'f16'): Check {
  const adapterDir = join(dir, name);
  saveAdapter(adapterDir, lora, { baseModelNameOrPath: 'base' });
  const file = join(dir, `${name}.gguf`);
  const written = writeLoraGguf(file, lora, cfg, { dtype, name });
  assert.equal(written.tensors, cfg.numLayers * 7 * 2);
  return JSON.parse(runPython('gguf_lora_check.py', [file, adapterDir, String(cfg.numHeads), String(cfg.numKvHeads)])) as Check;
}

const llama = llamaConfig({ vocabSize: 50, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, maxPositionEmbeddings: 64 });

test('llama: every tensor as llama.cpp names and lays it out, lora_b of q/k permuted, f32 exact', () => {
  const r = exportAndCheck('llama-f32', llama, adapter(llama, false, 1), 'f32');
  assert.deepEqual(r.missing, []);
  assert.deepEqual(r.extra, []);
  assert.ok(r.shapes_ok);
  assert.equal(r.max_abs_diff, 0);
  assert.equal(r.kv['general.type'], 'adapter');
  assert.equal(r.kv['general.architecture'], 'llama');
  assert.equal(r.kv['adapter.type'], 'lora');
  assert.equal(r.kv['adapter.lora.alpha'], 16);
});

test('f16 storage rounds each value once', () => {
  const r = exportAndCheck('llama-f16', llama, adapter(llama, false, 2), 'f16');
  assert.deepEqual(r.missing, []);
  assert.ok(r.max_abs_diff > 0 && r.max_abs_diff < 4 * 2 ** -11, `max |diff| ${r.max_abs_diff}`);
});

test('rsLoRA: alpha is written so that alpha / r equals alpha / √r', () => {
  const r = exportAndCheck('llama-rslora', llama, adapter(llama, true, 3), 'f32');
  assert.ok(Math.abs(Number(r.kv['adapter.lora.alpha']) / 4 - 16 / Math.sqrt(4)) < 1e-6);
});

test('qwen3: architecture qwen3 and no permutation', () => {
  const qwen3 = llamaConfig({ vocabSize: 50, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 1, headDim: 8, maxPositionEmbeddings: 64 }, { family: 'qwen3', qkNorm: true });
  const r = exportAndCheck('qwen3', qwen3, adapter(qwen3, false, 4), 'f32');
  assert.equal(r.kv['general.architecture'], 'qwen3');
  assert.deepEqual(r.missing, []);
  assert.equal(r.max_abs_diff, 0);
});

test('a llama-family model with biases has no llama.cpp base, so the export is refused', () => {
  const biased = llamaConfig({ vocabSize: 50, hiddenSize: 32, intermediateSize: 48, numLayers: 1, numHeads: 4, numKvHeads: 2, headDim: 8, maxPositionEmbeddings: 64 }, { qkvBias: true });
  assert.throws(() => writeLoraGguf(join(dir, 'x.gguf'), adapter(biased, false, 5), biased, { dtype: 'f32' }), /biases or q\/k norms/);
});

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/lora-studio.mjs'), ...args], { encoding: 'utf8', env: { ...process.env, LORA_STUDIO_FROM_SOURCE: '1' }, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('lora-studio export-lora-gguf: the sample model\'s adapter, base model from --model or adapter_config.json', async () => {
  const sample = await ensureSample();
  const cfg = readHfConfig(sample.modelDir);
  const lora = adapter(cfg, false, 6);
  const adapterDir = join(dir, 'sample-adapter');
  saveAdapter(adapterDir, lora, { baseModelNameOrPath: sample.modelDir });
  const out = join(dir, 'sample-adapter.gguf');
  const r = cli(['export-lora-gguf', '--adapter', adapterDir, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /sample-adapter\.gguf: 28 tensors/);
  const check = JSON.parse(runPython('gguf_lora_check.py', [out, adapterDir, String(cfg.numHeads), String(cfg.numKvHeads)])) as Check;
  assert.deepEqual([check.missing, check.extra, check.max_abs_diff], [[], [], 0]);

  const orphan = join(dir, 'orphan-adapter');
  saveAdapter(orphan, lora, { baseModelNameOrPath: join(dir, 'gone-model') });
  const refused = cli(['export-lora-gguf', '--adapter', orphan, '--out', join(dir, 'orphan.gguf')]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /gone-model is not here \(no GGUF file, no folder with config\.json\); give the base model folder or GGUF file \(--model\)/);
  assert.ok(!existsSync(join(dir, 'orphan.gguf')));
  assert.equal(cli(['export-lora-gguf', '--adapter', orphan, '--model', sample.modelDir, '--out', join(dir, 'orphan.gguf'), '--dtype', 'f16']).status, 0);
  assert.match(cli(['export-lora-gguf', '--adapter', orphan, '--out', join(dir, 'x.gguf'), '--dtype', 'q4_0']).stderr, /--dtype must be one of f32, f16, got "q4_0"/);
});

test("llama.cpp's way of applying the GGUF LoRA to the base GGUF gives the merged model's GGUF", async () => {
  const sample = await ensureSample();
  const cfg = readHfConfig(sample.modelDir);
  const lora = adapter(cfg, true, 7);
  const adapterDir = join(dir, 'apply-adapter');
  saveAdapter(adapterDir, lora, { baseModelNameOrPath: sample.modelDir });
  const [base, merged, loraFile] = ['base.gguf', 'merged.gguf', 'lora.gguf'].map((f) => join(dir, f));
  for (const args of [
    ['quantize', '--model', sample.modelDir, '--format', 'f16', '--out', base, '--quiet'],
    ['quantize', '--model', sample.modelDir, '--adapter', adapterDir, '--format', 'f16', '--out', merged, '--quiet'],
    ['export-lora-gguf', '--adapter', adapterDir, '--out', loraFile],
  ]) {
    const r = cli(args);
    assert.equal(r.status, 0, `${args[0]}: ${r.stderr}`);
  }
  const r = JSON.parse(runPython('gguf_lora_apply_check.py', [base, loraFile, merged, '4'])) as { checked: number; worst_excess: number; max_delta: number };
  assert.equal(r.checked, cfg.numLayers * 7);
  assert.ok(r.max_delta > 0.05, `the adapter changes the weights visibly (max |ΔW| ${r.max_delta})`);
  assert.ok(r.worst_excess <= 1, `base + s·B·A differs from the merged GGUF by ${r.worst_excess.toFixed(2)}× the f16 rounding`);
});
