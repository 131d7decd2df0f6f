/**
 * PEFT adapter folders for host tests: one written with the engine's saveAdapter (a known set of values), and an
 * independent check of a folder's files — safetensors header parsed by hand, keys and shapes derived from the base
 * model's config.json — so a test sees what PEFT would see, not what our reader thinks.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveAdapter } from '../../engine/io/peft-adapter.ts';
import type { LoraPair, LoraTargetName, LoraWeights } from '../../engine/model/types.ts';

interface HfConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number;
  head_dim?: number;
}

function readConfig(modelDir: string): HfConfig {
  return JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as HfConfig;
}

/** [out, in] of a target Linear, straight from config.json's fields (as transformers' LlamaAttention/MLP build them). */
export function linearShape(c: HfConfig, target: LoraTargetName): [number, number] {
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  const kv = c.num_key_value_heads ?? c.num_attention_heads;
  const shapes: Record<LoraTargetName, [number, number]> = {
    q_proj: [c.num_attention_heads * headDim, c.hidden_size],
    k_proj: [kv * headDim, c.hidden_size],
    v_proj: [kv * headDim, c.hidden_size],
    o_proj: [c.hidden_size, c.num_attention_heads * headDim],
    gate_proj: [c.intermediate_size, c.hidden_size],
    up_proj: [c.intermediate_size, c.hidden_size],
    down_proj: [c.hidden_size, c.intermediate_size],
  };
  return shapes[target];
}

/** Writes a PEFT folder for `modelDir` with A[i] = (i % 7) / 100 and B[i] = (i % 5) / 10 in every pair. */
export function writeTestAdapter(dir: string, modelDir: string, r = 4, targets: LoraTargetName[] = ['q_proj', 'v_proj']): void {
  const c = readConfig(modelDir);
  const layers: Partial<Record<LoraTargetName, LoraPair>>[] = [];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const layer: Partial<Record<LoraTargetName, LoraPair>> = {};
    for (const t of targets) {
      const [out, inF] = linearShape(c, t);
      layer[t] = { A: Float32Array.from({ length: r * inF }, (_, i) => (i % 7) / 100), B: Float32Array.from({ length: out * r }, (_, i) => (i % 5) / 10) };
    }
    layers.push(layer);
  }
  const lora: LoraWeights = { config: { r, alpha: 2 * r, dropout: 0, targets, rslora: false }, scaling: 2, layers };
  saveAdapter(dir, lora, { baseModelNameOrPath: modelDir });
}

interface TensorEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** The tensors of a safetensors file as its header describes them, with every offset checked against the bytes. */
export function readSafetensorsHeader(bytes: Uint8Array): Map<string, TensorEntry> {
  assert.ok(bytes.byteLength >= 8, 'safetensors file shorter than its 8-byte header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  assert.ok(8 + n <= bytes.byteLength, 'header length runs past the end of the file');
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, TensorEntry | Record<string, string>>;
  const dataLen = bytes.byteLength - 8 - n;
  const out = new Map<string, TensorEntry>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const t = entry as TensorEntry;
    const size = { F32: 4, F16: 2, BF16: 2 }[t.dtype];
    assert.ok(size, `${name}: unexpected dtype ${t.dtype}`);
    const [begin, end] = t.data_offsets;
    assert.ok(begin >= 0 && end <= dataLen && end - begin === size * t.shape.reduce((a, b) => a * b, 1), `${name}: data_offsets ${begin}..${end} do not match ${t.dtype} ${JSON.stringify(t.shape)}`);
    out.set(name, t);
  }
  return out;
}

/**
 * Asserts `files` (name → bytes) form a PEFT LoRA adapter for the model in `modelDir`: adapter_config.json says LORA,
 * and adapter_model.safetensors holds lora_A [r, in] and lora_B [out, r] for every layer × target module.
 */
export function assertPeftAdapter(files: Record<string, Uint8Array>, modelDir: string): { r: number; targets: string[]; keys: string[] } {
  assert.ok(files['adapter_config.json'], 'adapter_config.json missing');
  assert.ok(files['adapter_model.safetensors'], 'adapter_model.safetensors missing');
  const cfg = JSON.parse(new TextDecoder().decode(files['adapter_config.json'])) as { peft_type: string; task_type: string; r: number; lora_alpha: number; target_modules: string[] };
  assert.equal(cfg.peft_type, 'LORA');
  assert.equal(cfg.task_type, 'CAUSAL_LM');
  const model = readConfig(modelDir);
  const tensors = readSafetensorsHeader(files['adapter_model.safetensors']);
  const expected: string[] = [];
  for (let l = 0; l < model.num_hidden_layers; l++) {
    for (const t of cfg.target_modules as LoraTargetName[]) {
      const [out, inF] = linearShape(model, t);
      const module = t.endsWith('_proj') && ['gate_proj', 'up_proj', 'down_proj'].includes(t) ? `mlp.${t}` : `self_attn.${t}`;
      const a = `base_model.model.model.layers.${l}.${module}.lora_A.weight`;
      const b = `base_model.model.model.layers.${l}.${module}.lora_B.weight`;
      assert.deepEqual(tensors.get(a)?.shape, [cfg.r, inF], `${a} shape`);
      assert.deepEqual(tensors.get(b)?.shape, [out, cfg.r], `${b} shape`);
      expected.push(a, b);
    }
  }
  assert.deepEqual([...tensors.keys()].sort(), expected.sort(), 'tensor names');
  return { r: cfg.r, targets: cfg.target_modules, keys: expected };
}

/** The files of a folder as name → bytes. */
export function readFolder(dir: string, names: string[] = ['adapter_config.json', 'adapter_model.safetensors']): Record<string, Uint8Array> {
  return Object.fromEntries(names.map((n) => [n, new Uint8Array(readFileSync(join(dir, n)))]));
}
