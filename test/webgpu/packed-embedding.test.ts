/**
 * A host model whose embed_tokens / lm_head are PackedWeights (the cpu QLoRA holding, engine/io/base-weights.ts) still
 * runs on webgpu: llama-weights.ts uploads those two dequantized, so a step gives the loss and LoRA gradients of the
 * same model holding the dequantized copies (the same device tensors: equal up to the GPU's own run-to-run noise,
 * checked at 1e-4), tied and untied.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { webgpuLossAndGrads } from '../../engine/backend/webgpu/llama-step.ts';
import { forEachPair } from '../../engine/model/lora.ts';
import type { ModelWeights } from '../../engine/model/types.ts';
import { floatWeight } from '../../engine/model/weight-array.ts';
import { PackedWeight } from '../../engine/quant/packed-weight.ts';
import { assertClose, gpuForTest } from './gpu.ts';
import { ALL_TARGETS, randomBatch, randomLora, randomModel, tinyConfig } from './model.ts';

let ctx: GpuContext;
before(async () => ({ ctx } = await gpuForTest()));
after(() => ctx.destroy());

for (const tied of [false, true]) {
  test(`webgpu: a packed q8_0 embedding / lm_head (${tied ? 'tied' : 'untied'}) trains as its dequantized copy`, async () => {
    const cfg = tinyConfig({ tieWordEmbeddings: tied });
    const model = randomModel(cfg, 41);
    const V = cfg.vocabSize;
    const H = cfg.hiddenSize;
    const embed = PackedWeight.quantize('q8_0', floatWeight(model.embedTokens) as Float32Array, V, H);
    const head = tied ? embed : PackedWeight.quantize('q8_0', floatWeight(model.lmHead) as Float32Array, V, H);
    const packed: ModelWeights = { ...model, embedTokens: embed, lmHead: head };
    const embedD = embed.dequantize();
    const dequantized: ModelWeights = { ...model, embedTokens: embedD, lmHead: tied ? embedD : head.dequantize() };
    const lora = randomLora(cfg, { r: 4, alpha: 8, dropout: 0, targets: ALL_TARGETS, rslora: false }, 42);
    const batch = randomBatch(cfg, 2, 9, 43);
    const p = await webgpuLossAndGrads(packed, lora, batch, { training: true, gpu: ctx });
    const d = await webgpuLossAndGrads(dequantized, lora, batch, { training: true, gpu: ctx });
    assert.ok(Number.isFinite(d.loss) && d.loss > 0);
    assertClose('loss', [p.loss], [d.loss], 1e-4);
    assert.ok(p.grads && d.grads);
    const dg = d.grads;
    let n = 0;
    forEachPair(p.grads, (t, l, pair) => {
      const want = dg.layers[l][t];
      assert.ok(want);
      assertClose(`layers.${l}.${t}.lora_A`, pair.A, want.A, 1e-4);
      assertClose(`layers.${l}.${t}.lora_B`, pair.B, want.B, 1e-4);
      n++;
    });
    assert.equal(n, 2 * ALL_TARGETS.length);
  });
}
