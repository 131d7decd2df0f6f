/**
 * The lab's layer-by-layer forward against the model's own forward (engine/model/llama.ts forwardLogits, itself
 * checked against transformers): same logits, with and without a LoRA adapter, for llama, qwen2 (biases) and qwen3
 * (q/k norms).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CalibForward, logitsRows } from '../../engine/quant/calib-forward.ts';
import { forwardLogits } from '../../engine/model/llama.ts';
import { newLora } from '../../engine/model/lora.ts';
import type { LoraWeights, ModelWeights } from '../../engine/model/types.ts';
import { Rng } from '../../engine/util/rng.ts';
import { randomModel, tinyConfig } from './data.ts';

function withRandomB(lora: LoraWeights, seed: number): LoraWeights {
  const rng = new Rng(seed);
  for (const layer of lora.layers) for (const p of Object.values(layer)) if (p) for (let i = 0; i < p.B.length; i++) p.B[i] = rng.normal() * 0.05;
  return lora;
}

function addBiasesAndNorms(m: ModelWeights, seed: number): ModelWeights {
  const rng = new Rng(seed);
  const c = m.config;
  for (const L of m.layers) {
    if (c.qkvBias) for (const lin of [L.q, L.k, L.v]) lin.bias = Float32Array.from({ length: lin.outFeatures }, () => rng.normal() * 0.1);
    if (c.qkNorm) {
      L.qNorm = Float32Array.from({ length: c.headDim }, () => 1 + rng.normal() * 0.1);
      L.kNorm = Float32Array.from({ length: c.headDim }, () => 1 + rng.normal() * 0.1);
    }
  }
  return m;
}

const cases = [
  ['llama', tinyConfig()],
  ['qwen2', tinyConfig({ family: 'qwen2', architecture: 'Qwen2ForCausalLM', qkvBias: true })],
  ['qwen3', tinyConfig({ family: 'qwen3', architecture: 'Qwen3ForCausalLM', qkNorm: true })],
] as const;

for (const [name, cfg] of cases) {
  for (const withLora of [false, true]) {
    test(`${name}${withLora ? ' + LoRA' : ''}: CalibForward logits equal forwardLogits`, () => {
      const model = addBiasesAndNorms(randomModel(cfg, 4), 5);
      const lora = withLora ? withRandomB(newLora(cfg, { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj', 'down_proj'], rslora: false }, new Rng(6), Float32Array), 7) : null;
      const B = 2;
      const T = 9;
      const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 37 + 11) % cfg.vocabSize);
      const f = new CalibForward(model, lora, ids, B, T);
      for (let l = 0; l < cfg.numLayers; l++) {
        const s = f.step();
        assert.equal(s.linears.q.length, B * T * cfg.numHeads * cfg.headDim);
        assert.equal(s.linears.down.length, B * T * cfg.hiddenSize);
      }
      const ours = logitsRows(model, f.finalHidden(), 0, B * T);
      const ref = forwardLogits(model, lora, ids, B, T);
      let maxDiff = 0;
      for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours[i] - ref[i]));
      assert.ok(maxDiff <= 1e-5, `max |Δlogit| = ${maxDiff}`);
    });
  }
}

test('CalibForward says when it is used wrongly', () => {
  const model = randomModel(tinyConfig(), 1);
  assert.throws(() => new CalibForward(model, null, new Int32Array(5), 2, 3), /5 ids, expected 2 × 3/);
  const f = new CalibForward(model, null, new Int32Array(6), 2, 3);
  assert.throws(() => f.finalHidden(), /0 of 2 layers have run/);
});
