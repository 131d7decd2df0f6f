/**
 * Exports of an adapter trained on a quantized base: the GGUF LoRA names the GGUF base file it was trained on; a
 * merged export says what it merged into (the GGUF's blocks dequantized to f32, + scaling·B·A) and how it was
 * written, and its weights are that merge.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DEFAULT_RUN_CONFIG } from '../../common/protocol.ts';
import { quantizeCommand } from '../../host/cli/quant.ts';
import { tinyHfConfig, writeRandomModel } from '../../engine/io/make-model.ts';
import { loadModel } from '../../engine/io/model-source.ts';
import { loadAdapter, saveAdapter } from '../../engine/io/peft-adapter.ts';
import { newLora } from '../../engine/model/lora.ts';
import { floatWeight } from '../../engine/model/weight-array.ts';
import { writeLlamaGguf } from '../../engine/quant/gguf-llama.ts';
import { exportAdapterGguf } from '../../engine/quant/gguf-lora.ts';
import { readGguf, readTensorF32 } from '../../engine/quant/gguf-reader.ts';
import { Rng } from '../../engine/util/rng.ts';

const root = mkdtempSync(join(tmpdir(), 'qlora-export-'));
after(() => rmSync(root, { recursive: true, force: true }));

const hf = join(root, 'hf');
writeRandomModel(hf, tinyHfConfig('llama', { hidden_size: 64, intermediate_size: 128, head_dim: 16 }), { seed: 5 });
const base = join(root, 'base-q8_0.gguf');
writeLlamaGguf(base, loadModel(hf, { dtype: Float32Array }), { format: 'q8_0' });
const model = loadModel(base, { dtype: Float32Array });

// A run folder as `lora-studio train` leaves it: run.json (the RunConfig, trained as stored) and adapter/.
const runDir = join(root, 'run');
mkdirSync(runDir);
writeFileSync(join(runDir, 'run.json'), JSON.stringify({ ...DEFAULT_RUN_CONFIG, modelPath: base, datasetPath: 'd.jsonl', train: { ...DEFAULT_RUN_CONFIG.train, baseWeights: 'as-stored' } }));
const lora = newLora(model.config, { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'], rslora: false }, new Rng(3));
// B = 0 at init would make the merge a no-op: give it values.
const rng = new Rng(4);
for (const layer of lora.layers) for (const p of Object.values(layer)) if (p) for (let i = 0; i < p.B.length; i++) p.B[i] = 0.05 * rng.normal();
const adapterDir = join(runDir, 'adapter');
saveAdapter(adapterDir, lora, { baseModelNameOrPath: base });

test('the GGUF LoRA of an adapter trained on a GGUF base names that base file', () => {
  const out = join(root, 'lora.gguf');
  const r = exportAdapterGguf(adapterDir, out, { dtype: 'f32' });
  assert.equal(r.modelDir, base);
  const f = readGguf(out);
  const str = (k: string): unknown => {
    const v = f.kv.get(k);
    return v && v.type === 'string' ? v.value : undefined;
  };
  assert.equal(str('general.type'), 'adapter');
  assert.equal(str('general.base_model.0.name'), 'base-q8_0.gguf');
  assert.equal(str('lora_studio.base_model.file'), 'base-q8_0.gguf');
  assert.ok(f.byName.has('blk.0.attn_q.weight.lora_a'));
});

test('a merged export says it merged into the dequantized GGUF base and was re-quantized; its weights are that merge', () => {
  const out = join(root, 'merged-f16.gguf');
  quantizeCommand({ model: base, adapter: adapterDir, format: 'f16', out, quiet: true });
  const f = readGguf(out);
  const desc = f.kv.get('general.description');
  assert.ok(desc && desc.type === 'string');
  assert.match(desc.value, /^merged: base-q8_0\.gguf \(GGUF, Q8_0\) dequantized to f32 \+ scaling·B·A of the LoRA adapter adapter, linears written in F16; the adapter was trained on this base held as as-stored$/);
  const dq = f.kv.get('lora_studio.merge.base_dequantized_from');
  assert.ok(dq && dq.type === 'string' && dq.value === 'Q8_0');
  // v_proj (not permuted): W' = dequant(W) + scaling·B·A, in F16.
  const W = floatWeight(model.layers[1].v.weight);
  const { A, B } = loadAdapter(adapterDir, model.config).layers[1].v_proj!;
  const rows = model.layers[1].v.outFeatures;
  const cols = model.layers[1].v.inFeatures;
  const got = readTensorF32(f, 'blk.1.attn_v.weight');
  let worst = 0;
  for (let o = 0; o < rows; o++) {
    for (let i = 0; i < cols; i++) {
      let d = 0;
      for (let k = 0; k < 4; k++) d += B[o * 4 + k] * A[k * cols + i];
      const want = W[o * cols + i] + lora.scaling * d;
      worst = Math.max(worst, Math.abs(got[o * cols + i] - want) / Math.max(1e-3, Math.abs(want)));
    }
  }
  assert.ok(worst < 1e-3, `merged v_proj differs from dequant(W) + s·B·A by ${worst} (relative; f16 rounding is 5e-4)`);
  const q4 = join(root, 'merged-q4_0.gguf');
  quantizeCommand({ model: base, adapter: adapterDir, format: 'q4_0', out: q4, quiet: true });
  const d4 = readGguf(q4).kv.get('general.description');
  assert.ok(d4 && d4.type === 'string' && /linears re-quantized to Q4_0/.test(d4.value), JSON.stringify(d4));
});

test('an exported bundle of a QLoRA run says how the studio held the base and that train.py does not quantize it', async () => {
  const { baseWeightsLine } = await import('../../engine/export/bundle-files.ts');
  const cfg = (train: Record<string, unknown>) => ({ ...DEFAULT_RUN_CONFIG, modelPath: 'm', datasetPath: 'd', train: { ...DEFAULT_RUN_CONFIG.train, ...train } });
  assert.match(baseWeightsLine(cfg({ baseWeights: 'nf4' })), /held as nf4 \(QLoRA\); train\.py loads the base in --base-dtype .* does not quantize it/);
  assert.match(baseWeightsLine(cfg({ frozenWeightsF16: true })), /rounded to f16/);
  assert.match(baseWeightsLine(cfg({})), /^f32/);
});
