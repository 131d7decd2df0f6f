// QLoRA against PyTorch: a Q4_1 GGUF base loaded as stored (packed), its dequantized weights written as an f32
// folder; transformers + PEFT on that folder and the studio's cpu trainer on it give the same loss and LoRA
// gradients to 1e-5. (The packed model itself on cpu: test/train/qlora-cpu-e2e.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuOps } from '../../engine/backend/cpu/cpu-ops.ts';
import { loadModel } from '../../engine/io/model-source.ts';
import { loadAdapter } from '../../engine/io/peft-adapter.ts';
import { lossAndGrads } from '../../engine/model/llama.ts';
import { padBatch } from '../../engine/train/batching.ts';
import { loraTensors } from '../../engine/train/lora-params.ts';
import { buildQloraReference, maxRelDiff } from '../helpers/qlora-reference.ts';

const dir = mkdtempSync(join(tmpdir(), 'qlora-parity-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const ref = buildQloraReference(dir, 'q4_1', ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);

test('a step on the dequantized Q4_1 base: the cpu trainer equals PyTorch + PEFT (loss and LoRA gradients, 1e-5)', () => {
  const model = loadModel(ref.dequantDir, { dtype: Float32Array });
  const lora = loadAdapter(ref.adapterDir, model.config);
  const batch = padBatch(ref.rows.map((r) => ({ inputIds: r.input_ids, labels: r.labels })), 0);
  const r = lossAndGrads(model, lora, batch, { training: false, ops: cpuOps(model) });
  assert.equal(r.tokens, ref.tokens);
  assert.ok(Math.abs(r.loss - ref.loss) <= 1e-5 * Math.abs(ref.loss), `loss ${r.loss} vs PyTorch ${ref.loss}`);
  assert.ok(r.grads);
  const ours = new Map(loraTensors(r.grads).map((t) => [t.key, t.data]));
  assert.deepEqual([...ours.keys()].sort(), [...ref.grads.keys()].sort());
  for (const [k, g] of ref.grads) {
    const d = maxRelDiff(ours.get(k)!, g);
    assert.ok(d <= 1e-5, `${k}: ${d}`);
  }
});
