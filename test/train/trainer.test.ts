// The training loop's promises: same seed ⇒ same bits; stop + resume ⇒ the same adapter as never stopping (dropout,
// gradient accumulation, cosine warmup schedule, validation split, periodic checkpoints); checkpoints are atomic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MetricPoint, RunConfigInput } from '../../common/protocol.ts';
import { saveAdapter } from '../../engine/io/peft-adapter.ts';
import { countParameters } from '../../engine/model/llama.ts';
import { listCheckpoints, loadLatestCheckpoint, saveCheckpoint } from '../../engine/train/checkpoint.ts';
import type { TrainerSettings } from '../../engine/train/run-config.ts';
import { Trainer } from '../../engine/train/trainer.ts';
import type { TrainerOptions } from '../../engine/train/trainer.ts';
import { randomExamples, tinyTrainerSettings, writeTinyTrainModel } from '../helpers/tiny-trainer.ts';

const dir = mkdtempSync(join(tmpdir(), 'trainer-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const { modelDir, model } = writeTinyTrainModel(dir);
const train = randomExamples(11, 1);
const validation = randomExamples(3, 2);

function settings(over: Partial<RunConfigInput['train']> = {}, lora: Partial<RunConfigInput['lora']> = {}): TrainerSettings {
  return tinyTrainerSettings(modelDir, { dropout: 0.1, ...lora }, { steps: 7, warmupSteps: 2, evalEverySteps: 3, validationPercent: 20, ...over });
}

function trainer(s: TrainerSettings, extra: Partial<TrainerOptions> = {}): Trainer {
  return new Trainer({ model, settings: s, train, validation, padTokenId: 0, ...extra }, countParameters(model));
}

function adapterBytes(t: Trainer, name: string): Buffer {
  const out = join(dir, name);
  saveAdapter(out, t.lora, { baseModelNameOrPath: 'base' });
  return readFileSync(join(out, 'adapter_model.safetensors'));
}

test('same seed ⇒ bit-identical adapter; another seed ⇒ a different one', async () => {
  const a = trainer(settings());
  const b = trainer(settings());
  const c = trainer(settings({ seed: 10 }));
  const ra = await a.run();
  await b.run();
  await c.run();
  assert.equal(ra.status, 'done');
  assert.equal(ra.step, 7);
  assert.ok(adapterBytes(a, 'same-a').equals(adapterBytes(b, 'same-b')), 'same seed, same bytes');
  assert.ok(!adapterBytes(a, 'same-a').equals(adapterBytes(c, 'same-c')), 'another seed, other bytes');
  // the metrics the run reports are coherent
  assert.deepEqual(ra.metrics.map((m) => m.step), [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(ra.metrics[0].learningRate, 0, 'warmup starts at 0, as transformers');
  assert.ok(ra.metrics.every((m) => Number.isFinite(m.loss) && m.tokens > 0 && m.gradNorm > 0 && m.lossScale === undefined));
  assert.deepEqual(ra.metrics.filter((m) => m.validationLoss !== undefined).map((m) => m.step), [3, 6, 7]);
  // every cpu point says what the process holds (its resident set, at least the model it trains); no device figure
  assert.ok(ra.metrics.every((m) => m.rssBytes !== undefined && m.rssBytes > 1 << 20 && m.deviceBytes === undefined), JSON.stringify(ra.metrics.map((m) => [m.rssBytes, m.deviceBytes])));
});

test('stop at step 3 with save, resume ⇒ final adapter bit-identical to the uninterrupted run', async () => {
  const s = settings({ checkpointEverySteps: 2 });
  const full = trainer(s);
  const fullResult = await full.run();
  const want = adapterBytes(full, 'full');

  const runDir = join(dir, 'run-stop');
  let seen = 0;
  const first = trainer(s, { runDir, onMetric: () => seen++, shouldStop: () => (seen === 3 ? { save: true } : null) });
  const r1 = await first.run();
  assert.equal(r1.status, 'stopped');
  assert.equal(r1.step, 3);
  assert.equal(r1.checkpoint, join(runDir, 'checkpoints', 'step-3'));
  assert.deepEqual(listCheckpoints(runDir).map((c) => c.step), [3, 2]);

  const points: MetricPoint[] = [];
  const second = trainer(s, { runDir, resume: true, onMetric: (p) => points.push(p) });
  assert.equal(second.resumedFromStep, 3);
  const r2 = await second.run();
  assert.equal(r2.status, 'done');
  assert.deepEqual(points.map((p) => p.step), [4, 5, 6, 7]);
  assert.ok(adapterBytes(second, 'resumed').equals(want), 'resumed adapter equals uninterrupted adapter');
  assert.deepEqual(r2.metrics.map((m) => m.loss), fullResult.metrics.map((m) => m.loss), 'same losses, step by step');
  assert.deepEqual(r2.metrics.map((m) => m.validationLoss), fullResult.metrics.map((m) => m.validationLoss));
  assert.deepEqual(listCheckpoints(runDir).map((c) => c.step), [6, 4], 'only the newest two are kept');
});

test('a crash after a periodic checkpoint: resuming from it ends bit-identical too (fp16 loss scaling, no clipping)', async () => {
  const s = { ...settings({ checkpointEverySteps: 2, precision: 'fp16', maxGradNorm: 0, schedule: 'linear' }), lossScaleGrowthInterval: 3 };
  const full = trainer(s);
  const fr = await full.run();
  assert.deepEqual(
    fr.metrics.map((m) => [m.lossScale, m.skipped]),
    [65536, 65536, 65536, 131072, 131072, 131072, 262144].map((x) => [x, undefined]),
    'the scale grows every 3 clean steps',
  );
  const runDir = join(dir, 'run-crash');
  let seen = 0;
  // stop without saving after step 5: what a crash leaves is the step-4 checkpoint
  await trainer(s, { runDir, onMetric: () => seen++, shouldStop: () => (seen === 5 ? { save: false } : null) }).run();
  assert.equal(listCheckpoints(runDir)[0].step, 4);
  const resumed = trainer(s, { runDir, resume: true });
  assert.equal(resumed.resumedFromStep, 4);
  const rr = await resumed.run();
  assert.ok(adapterBytes(resumed, 'crash-resumed').equals(adapterBytes(full, 'crash-full')));
  assert.deepEqual(rr.metrics.map((m) => m.lossScale), fr.metrics.map((m) => m.lossScale), 'loss scale and its growth counter resumed');
});

test('checkpoints are atomic: a failed write or a half-written folder leaves the previous one loadable', async () => {
  const s = settings({ checkpointEverySteps: 2 });
  const runDir = join(dir, 'run-atomic');
  await trainer(s, { runDir, shouldStop: () => null }).run();
  const before = listCheckpoints(runDir).map((c) => c.step);
  assert.deepEqual(before, [6, 4]);
  const good = loadLatestCheckpoint(runDir, model.config, s.lora);
  assert.ok(good);
  assert.equal(good.state.step, 6);

  // 1. a write that fails half-way (the adapter cannot be written) leaves nothing behind
  const broken = { ...good.lora, layers: good.lora.layers.map((l) => ({ ...l })) };
  const pair = broken.layers[0].q_proj;
  assert.ok(pair);
  broken.layers[0].q_proj = { A: pair.A.subarray(1), B: pair.B };
  assert.throws(() => saveCheckpoint(runDir, { lora: broken, optimizer: good.optimizer, state: { ...good.state, step: 8 }, baseModelNameOrPath: 'x', keep: 2 }));
  assert.deepEqual(listCheckpoints(runDir).map((c) => c.step), [6, 4]);
  assert.deepEqual(readdirSync(join(runDir, 'checkpoints')).sort(), ['step-4', 'step-6']);

  // 2. a crash before the rename: the temporary folder is there, half full; and a newer step folder without its state
  const ck = join(runDir, 'checkpoints');
  mkdirSync(join(ck, '.step-8.tmp-123-1'));
  writeFileSync(join(ck, '.step-8.tmp-123-1', 'adapter_model.safetensors'), 'partial');
  mkdirSync(join(ck, 'step-9'));
  writeFileSync(join(ck, 'step-9', 'adapter_model.safetensors'), Buffer.alloc(10));
  const skipped: string[] = [];
  const latest = loadLatestCheckpoint(runDir, model.config, s.lora, (p) => skipped.push(p));
  assert.ok(latest);
  assert.equal(latest.state.step, 6, 'the newest complete checkpoint');
  assert.deepEqual(skipped, [join(ck, 'step-9')]);

  // 3. resuming from it works; the next checkpoint clears the leftovers
  const resumed = trainer(settings({ checkpointEverySteps: 2, steps: 10 }), { runDir, resume: true });
  assert.equal(resumed.resumedFromStep, 6);
  const r = await resumed.run();
  assert.equal(r.step, 10);
  assert.deepEqual(readdirSync(ck).sort(), ['step-6', 'step-8']);
});

test('resume refuses a checkpoint made with other LoRA settings, naming it', () => {
  const runDir = join(dir, 'run-atomic');
  assert.throws(() => trainer(settings({}, { r: 2 }), { runDir, resume: true }), /checkpoints[/\\]step-8: checkpoint was trained with LoRA r=4/);
});

test('gradient accumulation normalises by all target tokens of the step: 2 × 3 examples ≡ 1 × 6 examples', async () => {
  const accumulated = trainer(settings({ batchSize: 3, gradAccumulation: 2, steps: 1 }, { dropout: 0 }));
  const whole = trainer(settings({ batchSize: 6, gradAccumulation: 1, steps: 1 }, { dropout: 0 }));
  const a = await accumulated.trainStep();
  const b = await whole.trainStep();
  assert.equal(a.tokens, b.tokens);
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-6 * b.loss, `loss ${a.loss} vs ${b.loss}`);
  assert.ok(Math.abs(a.gradNorm - b.gradNorm) <= 1e-5 * b.gradNorm, `grad norm ${a.gradNorm} vs ${b.gradNorm}`);
});
