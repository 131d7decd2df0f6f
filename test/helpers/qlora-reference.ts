/**
 * The PyTorch reference for QLoRA: a GGUF base in a packed format, loaded as stored, whose dequantized weights are
 * written as an f32 Hugging Face folder; transformers + PEFT (tests/python/peft_reference.py) give the loss and LoRA
 * gradients of a batch on that folder. The studio must give the same on the dequantized folder (f32, now) and on the
 * packed model itself (once the cpu backend computes with PackedWeight linears).
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectedTensors } from '../../engine/io/hf-model.ts';
import { tinyHfConfig, writeRandomModel } from '../../engine/io/make-model.ts';
import { loadModel } from '../../engine/io/model-source.ts';
import { saveAdapter } from '../../engine/io/peft-adapter.ts';
import { withSafetensors, writeSafetensors } from '../../engine/io/safetensors.ts';
import { newLora } from '../../engine/model/lora.ts';
import type { Linear, LoraTargetName, ModelWeights } from '../../engine/model/types.ts';
import { floatWeight } from '../../engine/model/weight-array.ts';
import { writeLlamaGguf, type GgufExportFormat } from '../../engine/quant/gguf-llama.ts';
import { PackedWeight } from '../../engine/quant/packed-weight.ts';
import { Rng } from '../../engine/util/rng.ts';
import { runPython } from './python.ts';

export interface QloraReference {
  gguf: string;
  dequantDir: string;
  adapterDir: string;
  data: string;
  rows: { input_ids: number[]; labels: number[] }[];
  loss: number;
  tokens: number;
  grads: Map<string, Float32Array>;
}

/** A tensor of a loaded model by its Hugging Face name, as f32 (a packed linear dequantized). */
function f32Of(m: ModelWeights, name: string): Float32Array {
  if (name === 'model.embed_tokens.weight') return floatWeight(m.embedTokens) as Float32Array;
  if (name === 'lm_head.weight') return floatWeight(m.lmHead) as Float32Array;
  if (name === 'model.norm.weight') return m.norm as Float32Array;
  const g = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  if (!g) throw new Error(`no tensor ${name}`);
  const L = m.layers[Number(g[1])];
  const lin: Record<string, Linear> = { 'self_attn.q_proj': L.q, 'self_attn.k_proj': L.k, 'self_attn.v_proj': L.v, 'self_attn.o_proj': L.o, 'mlp.gate_proj': L.gate, 'mlp.up_proj': L.up, 'mlp.down_proj': L.down };
  if (g[2] === 'input_layernorm.weight') return L.inputNorm as Float32Array;
  if (g[2] === 'post_attention_layernorm.weight') return L.postAttentionNorm as Float32Array;
  const w = /^(.+)\.weight$/.exec(g[2]);
  if (w && lin[w[1]]) {
    const held: unknown = lin[w[1]].weight;
    return held instanceof PackedWeight ? held.dequantize() : (floatWeight(lin[w[1]].weight) as Float32Array);
  }
  throw new Error(`no tensor ${name}`);
}

export function buildQloraReference(dir: string, format: GgufExportFormat, targets: LoraTargetName[]): QloraReference {
  const hf = join(dir, 'hf');
  const config = tinyHfConfig('llama', { hidden_size: 64, intermediate_size: 128, head_dim: 16, num_hidden_layers: 2 });
  writeRandomModel(hf, config, { seed: 21, std: 0.1 });
  const gguf = join(dir, `base-${format}.gguf`);
  writeLlamaGguf(gguf, loadModel(hf, { dtype: Float32Array }), { format });
  const packed = loadModel(gguf, { dtype: Float32Array, baseWeights: 'as-stored' });
  // The dequantized base as PyTorch will read it: every tensor in f32, the packed linears dequantized.
  const dequantDir = join(dir, 'dequantized');
  mkdirSync(dequantDir, { recursive: true });
  copyFileSync(join(hf, 'config.json'), join(dequantDir, 'config.json'));
  writeSafetensors(
    join(dequantDir, 'model.safetensors'),
    expectedTensors(packed.config).map((t) => ({ name: t.name, dtype: 'F32' as const, shape: t.shape, data: f32Of(packed, t.name) })),
  );
  const lora = newLora(packed.config, { r: 4, alpha: 8, dropout: 0, targets, rslora: false }, new Rng(3), Float32Array);
  const rng = new Rng(4);
  for (const layer of lora.layers) for (const p of Object.values(layer)) if (p) for (let j = 0; j < p.B.length; j++) p.B[j] = rng.normal() * 0.1;
  const adapterDir = join(dir, 'adapter');
  saveAdapter(adapterDir, lora, { baseModelNameOrPath: dequantDir });
  const vocab = packed.config.vocabSize;
  const r = new Rng(7);
  const ids = (n: number): number[] => Array.from({ length: n }, () => 3 + r.int(vocab - 3));
  const a = ids(11);
  const b = ids(6);
  const rows = [
    { input_ids: a, labels: a.map((x, i) => (i < 2 ? -100 : x)) },
    { input_ids: b, labels: [...b] },
  ];
  const data = join(dir, 'data.jsonl');
  writeFileSync(data, rows.map((x) => JSON.stringify(x)).join('\n') + '\n');
  const gradsOut = join(dir, 'ref-grads.safetensors');
  const spec = join(dir, 'spec.json');
  writeFileSync(spec, JSON.stringify({ cases: [{ model_dir: dequantDir, data, grads_out: gradsOut, logits_out: join(dir, 'ref-logits.safetensors'), adapter_dir: adapterDir }] }));
  const ref = (JSON.parse(runPython('peft_reference.py', [spec])) as { results: { loss: number; tokens: number }[] }).results[0];
  const grads = withSafetensors(gradsOut, (f) => new Map(f.names().map((n) => [n, Float32Array.from(f.readFloat(n))])));
  return { gguf, dequantDir, adapterDir, data, rows, loss: ref.loss, tokens: ref.tokens, grads };
}

/** |a − b| ≤ rel · max|b| over the whole tensor. */
export function maxRelDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  return scale === 0 ? Infinity : worst / scale;
}
