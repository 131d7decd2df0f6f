/**
 * Whole training steps on the GPU (loss + gradients + unscale/clip/AdamW on the device) vs the cpu trainer's path
 * (engine/model/llama.ts lossAndGrads, engine/train/grad-scaler.ts, clip.ts, adamw.ts):
 * - fp32: three steps with clipping and weight decay; LoRA weights and AdamW moments within 1e-4.
 * - fp16 mixed precision: loss within 1e-2 of the cpu fp32 loss; gradients point the same way (cosine > 0.999).
 * - forced overflow: with the scale at 2^40 the f16 gradients overflow, the step is skipped (weights bit-identical)
 *   and GradScaler halves the scale; a following step at a sane scale is applied and moves the weights as the cpu
 *   fp32 trainer does: updates aligned (cosine > 0.99), no weight further than 2·lr away (AdamW's first step is
 *   ±lr per weight, so f16 rounding can at most flip the sign of a near-zero gradient).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { WebgpuLlama } from '../../engine/backend/webgpu/llama-step.ts';
import { cloneLora, forEachPair } from '../../engine/model/lora.ts';
import { lossAndGrads } from '../../engine/model/llama.ts';
import type { Batch, FloatArray, LoraWeights, ModelWeights } from '../../engine/model/types.ts';
import { AdamW, ADAMW_DEFAULTS } from '../../engine/train/adamw.ts';
import { clipGradNorm } from '../../engine/train/clip.ts';
import { GradScaler } from '../../engine/train/grad-scaler.ts';
import { assertClose, gpuForTest } from './gpu.ts';
import { ALL_TARGETS, randomBatch, randomLora, randomModel, tinyConfig } from './model.ts';

let ctx: GpuContext;
before(async () => ({ ctx } = await gpuForTest()));
after(() => ctx.destroy());

const opts = { ...ADAMW_DEFAULTS, weightDecay: 0.01 };
const maxGradNorm = 0.5;

function arrays(l: LoraWeights): FloatArray[] {
  const out: FloatArray[] = [];
  forEachPair(l, (_t, _l, p) => out.push(p.A, p.B));
  return out;
}

/** The cpu trainer's step. Returns whether it was applied. */
function cpuStep(model: ModelWeights, lora: LoraWeights, adam: AdamW, scaler: GradScaler, batch: Batch, lr: number): { loss: number; applied: boolean } {
  const r = lossAndGrads(model, lora, batch, { training: true, lossScale: scaler.lossScale() });
  assert.ok(r.grads);
  const g = arrays(r.grads);
  const found = scaler.unscale(g);
  if (!found) {
    clipGradNorm(g, maxGradNorm);
    adam.step(g, lr);
  }
  scaler.update(found);
  return { loss: r.loss, applied: !found };
}

async function gpuStep(s: WebgpuLlama, scaler: GradScaler, t: number, batch: Batch, lr: number): Promise<{ loss: number; applied: boolean; t: number }> {
  const r = await s.lossAndGrads(batch, { training: true, lossScale: scaler.lossScale() });
  const o = await s.optimizerStep({ lr, t: t + 1, ...opts, maxGradNorm, lossScale: scaler.lossScale() });
  scaler.update(o.foundInf);
  return { loss: r.loss, applied: o.applied, t: o.applied ? t + 1 : t };
}

function setup(): { model: ModelWeights; lora: LoraWeights; batches: Batch[] } {
  const cfg = tinyConfig();
  const model = randomModel(cfg, 41);
  const lora = randomLora(cfg, { r: 4, alpha: 8, dropout: 0, targets: ALL_TARGETS, rslora: false }, 42);
  return { model, lora, batches: [0, 1, 2].map((i) => randomBatch(cfg, 2, 9, 43 + i)) };
}

test('fp32: three optimizer steps on the device match the cpu trainer', async () => {
  const { model, lora, batches } = setup();
  const cpuLora = cloneLora(lora);
  const adam = new AdamW(arrays(cpuLora), opts);
  const cpuScaler = new GradScaler({ enabled: false });
  const s = await WebgpuLlama.create({ kind: 'host', model }, lora, { precision: 'fp32', checkpointing: false, maxBatchSize: 2, maxSeqLen: 9, gpu: ctx });
  try {
    const gpuScaler = new GradScaler({ enabled: false });
    let t = 0;
    for (const [i, b] of batches.entries()) {
      const c = cpuStep(model, cpuLora, adam, cpuScaler, b, 1e-2 * (i + 1));
      const g = await gpuStep(s, gpuScaler, t, b, 1e-2 * (i + 1));
      t = g.t;
      assert.equal(g.applied, c.applied);
      assertClose(`loss ${i}`, [g.loss], [c.loss], 1e-5);
    }
    const got = await s.readLora();
    forEachPair(cpuLora, (tg, l, p) => {
      const q = got.layers[l][tg];
      assert.ok(q);
      assertClose(`layers.${l}.${tg}.A`, q.A, p.A, 1e-4);
      assertClose(`layers.${l}.${tg}.B`, q.B, p.B, 1e-4);
    });
    const { m } = await s.readOptimizerState();
    const cpuM = adam.state.m;
    let k = 0;
    forEachPair(m, (_t, _l, p) => {
      assertClose(`m[${k}]`, p.A, cpuM[k], 1e-4);
      assertClose(`m[${k + 1}]`, p.B, cpuM[k + 1], 1e-4);
      k += 2;
    });
  } finally {
    s.destroy();
  }
});

function cosine(a: FloatArray[], b: FloatArray[]): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  a.forEach((x, i) => {
    for (let j = 0; j < x.length; j++) {
      ab += x[j] * b[i][j];
      aa += x[j] * x[j];
      bb += b[i][j] * b[i][j];
    }
  });
  return ab / Math.sqrt(aa * bb);
}

test('fp16 mixed precision: loss within 1e-2 of the cpu fp32 loss, gradients aligned', async () => {
  const { model, lora, batches } = setup();
  const ref = lossAndGrads(model, lora, batches[0], { training: true, lossScale: 1024 });
  const s = await WebgpuLlama.create({ kind: 'host', model }, lora, { precision: 'fp16', checkpointing: true, maxBatchSize: 2, maxSeqLen: 9, gpu: ctx });
  try {
    const r = await s.lossAndGrads(batches[0], { training: true, lossScale: 1024 });
    assertClose('fp16 loss', [r.loss], [ref.loss], 1e-2);
    assert.ok(ref.grads);
    const c = cosine(arrays(await s.readGrads()), arrays(ref.grads));
    assert.ok(c > 0.999, `cosine(fp16 grads, fp32 grads) = ${c}`);
  } finally {
    s.destroy();
  }
});

test('fp16: a forced overflow skips the step and the scaler backs off; the next step matches the cpu trainer', async () => {
  const { model, lora, batches } = setup();
  const s = await WebgpuLlama.create({ kind: 'host', model }, lora, { precision: 'fp16', checkpointing: false, maxBatchSize: 2, maxSeqLen: 9, gpu: ctx });
  try {
    const scaler = new GradScaler({ initScale: 2 ** 40, growthInterval: 2000 });
    const before = await s.readLora();
    const g1 = await gpuStep(s, scaler, 0, batches[0], 1e-2);
    assert.equal(g1.applied, false, 'f16 gradients at scale 2^40 must overflow');
    assert.deepEqual(scaler.state(), { scale: 2 ** 39, growthTracker: 0 });
    const after1 = await s.readLora();
    forEachPair(before, (t, l, p) => {
      assert.deepEqual(after1.layers[l][t]?.A, p.A, 'skipped step must not touch the weights');
      assert.deepEqual(after1.layers[l][t]?.B, p.B);
    });
    // A sane scale: applied, and the weights follow the cpu fp32 trainer (same scale, same hyper-parameters).
    scaler.loadState({ scale: 1024, growthTracker: 0 });
    const g2 = await gpuStep(s, scaler, g1.t, batches[1], 1e-2);
    assert.equal(g2.applied, true);
    assert.deepEqual(scaler.state(), { scale: 1024, growthTracker: 1 });
    const cpuLora = cloneLora(lora);
    const cpuScaler = new GradScaler({ initScale: 1024 });
    const c2 = cpuStep(model, cpuLora, new AdamW(arrays(cpuLora), opts), cpuScaler, batches[1], 1e-2);
    assert.equal(c2.applied, true);
    assert.deepEqual(cpuScaler.state(), scaler.state());
    const got = arrays(await s.readLora());
    const want = arrays(cpuLora);
    const base = arrays(before);
    const dGot = got.map((a, i) => a.map((v, j) => v - base[i][j]));
    const dWant = want.map((a, i) => a.map((v, j) => v - base[i][j]));
    const c = cosine(dGot, dWant);
    assert.ok(c > 0.99, `cosine of fp16 and fp32 updates = ${c}`);
    got.forEach((a, i) => a.forEach((v, j) => assert.ok(Math.abs(v - want[i][j]) <= 2 * 1e-2 * 1.001, `weight ${i}[${j}] is ${v}, cpu ${want[i][j]}`)));
  } finally {
    s.destroy();
  }
});
