/**
 * The whole LoRA training step on the GPU vs the cpu backend (engine/model/llama.ts lossAndGrads, the reference
 * proven against PyTorch + PEFT): in fp32 every LoRA gradient within 1e-4 relative (assertClose) and the loss within
 * 1e-5; gradient checkpointing gives the same gradients; Qwen3-style q/k norm + biases + tied embeddings, and a
 * Mistral sliding window, are covered. eval loss matches the cpu evalLoss.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { webgpuLossAndGrads, WebgpuLlama } from '../../engine/backend/webgpu/llama-step.ts';
import { forEachPair } from '../../engine/model/lora.ts';
import { evalLoss, lossAndGrads } from '../../engine/model/llama.ts';
import type { LoraWeights, ModelConfig } from '../../engine/model/types.ts';
import { assertClose, gpuForTest } from './gpu.ts';
import { ALL_TARGETS, randomBatch, randomLora, randomModel, tinyConfig } from './model.ts';

let ctx: GpuContext;
before(async () => ({ ctx } = await gpuForTest()));
after(() => ctx.destroy());

function compareGrads(name: string, got: LoraWeights, want: LoraWeights, rtol: number): void {
  let n = 0;
  forEachPair(want, (t, l, p) => {
    const g = got.layers[l][t];
    assert.ok(g, `${name}: missing layers.${l}.${t}`);
    assertClose(`${name} layers.${l}.${t}.lora_A`, g.A, p.A, rtol);
    assertClose(`${name} layers.${l}.${t}.lora_B`, g.B, p.B, rtol);
    n++;
  });
  assert.ok(n > 0);
}

async function parity(cfg: ModelConfig, B: number, T: number, opts: { checkpointing?: boolean; lossScale?: number; normalizer?: number; init?: 'fixed' | 'fanIn' } = {}): Promise<void> {
  const model = randomModel(cfg, 11, opts.init);
  const lora = randomLora(cfg, { r: 4, alpha: 8, dropout: 0, targets: ALL_TARGETS, rslora: false }, 12);
  const batch = randomBatch(cfg, B, T, 13);
  const ref = lossAndGrads(model, lora, batch, { training: true, lossScale: opts.lossScale, normalizer: opts.normalizer });
  const got = await webgpuLossAndGrads(model, lora, batch, { training: true, gpu: ctx, checkpointing: opts.checkpointing, lossScale: opts.lossScale, normalizer: opts.normalizer });
  assert.equal(got.tokens, ref.tokens);
  assertClose('loss', [got.loss], [ref.loss], 1e-5);
  assert.ok(ref.grads && got.grads);
  compareGrads(cfg.family, got.grads, ref.grads, 1e-4);
}

test('fp32 step (llama: GQA, untied, all seven targets) matches the cpu backend', async () => {
  await parity(tinyConfig(), 2, 11, { lossScale: 8, normalizer: 17 });
});

test('fp32 step with q/k norm, q/k/v bias, tied embeddings (qwen3-style) and a sliding window', async () => {
  await parity(tinyConfig({ family: 'qwen3', qkNorm: true, qkvBias: true, tieWordEmbeddings: true, numKvHeads: 1 }), 1, 9);
  await parity(tinyConfig({ family: 'mistral', slidingWindow: 4 }), 2, 9);
});

test('gradient checkpointing on the GPU gives the same gradients', async () => {
  const cfg = tinyConfig({ numLayers: 3 });
  const model = randomModel(cfg, 21);
  const lora = randomLora(cfg, { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj', 'down_proj'], rslora: false }, 22);
  const batch = randomBatch(cfg, 2, 8, 23);
  const plain = await webgpuLossAndGrads(model, lora, batch, { training: true, gpu: ctx });
  const ckpt = await webgpuLossAndGrads(model, lora, batch, { training: true, gpu: ctx, checkpointing: true });
  assert.equal(ckpt.loss, plain.loss);
  assert.ok(plain.grads && ckpt.grads);
  compareGrads('checkpointing', ckpt.grads, plain.grads, 1e-6);
});

test('eval loss (forward only) matches the cpu evalLoss', async () => {
  const cfg = tinyConfig();
  const model = randomModel(cfg, 31);
  const lora = randomLora(cfg, { r: 2, alpha: 4, dropout: 0.1, targets: ['q_proj', 'v_proj'], rslora: false }, 32);
  const batch = randomBatch(cfg, 2, 10, 33);
  const ref = evalLoss(model, lora, batch);
  const s = await WebgpuLlama.create({ kind: 'host', model }, lora, { precision: 'fp32', checkpointing: false, maxBatchSize: 2, maxSeqLen: 10, training: false, gpu: ctx });
  try {
    const got = await s.evalLoss(batch);
    assert.equal(got.tokens, ref.tokens);
    assertClose('eval loss', [got.loss], [ref.loss], 1e-5);
  } finally {
    s.destroy();
  }
});

test('dropout: device masks are reproducible from the host Rng, advance it as the cpu backend does, and survive recompute', async () => {
  const { Rng } = await import('../../engine/util/rng.ts');
  const cfg = tinyConfig();
  const model = randomModel(cfg, 51);
  const lora = randomLora(cfg, { r: 4, alpha: 8, dropout: 0.3, targets: ['q_proj', 'v_proj', 'up_proj'], rslora: false }, 52);
  const batch = randomBatch(cfg, 2, 8, 53);
  const cpuRng = new Rng(7);
  lossAndGrads(model, lora, batch, { training: true, dropoutRng: cpuRng });
  const rngA = new Rng(7);
  const a = await webgpuLossAndGrads(model, lora, batch, { training: true, gpu: ctx, dropoutRng: rngA });
  assert.deepEqual(rngA.state(), cpuRng.state(), 'one uint32 per layer is drawn, as on the cpu');
  const b = await webgpuLossAndGrads(model, lora, batch, { training: true, gpu: ctx, dropoutRng: new Rng(7), checkpointing: true });
  assert.ok(a.grads && b.grads);
  assert.equal(b.loss, a.loss);
  compareGrads('dropout + checkpointing', b.grads, a.grads, 1e-6);
  const c = await webgpuLossAndGrads(model, lora, batch, { training: true, gpu: ctx, dropoutRng: new Rng(8) });
  assert.notEqual(c.loss, a.loss, 'another seed draws other masks');
  const off = await webgpuLossAndGrads(model, lora, batch, { training: false, gpu: ctx });
  assertClose('no dropout when not training', [off.loss], [lossAndGrads(model, lora, batch, { training: false }).loss], 1e-5);
});

test("fp32 step at Llama-2-7B's per-head geometry (head_dim 128, 32000-token vocabulary) matches the cpu backend", async () => {
  // Two 128-wide heads, the 7B intermediate ratio and its vocabulary, 80 tokens (across the 64-row blocks); weights
  // scaled by fan-in as real models are (fixed-std weights this wide saturate every softmax).
  const cfg = tinyConfig({ hiddenSize: 256, numHeads: 2, numKvHeads: 2, headDim: 128, intermediateSize: 688, vocabSize: 32000, maxPositionEmbeddings: 256 });
  await parity(cfg, 1, 80, { init: 'fanIn' });
});
