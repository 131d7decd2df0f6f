// The real engine worker, started through engine-host as the services start it: trains on the sample model and
// dataset, reports events exactly as common/protocol.ts types them, writes an adapter that loads and has learned
// something, stops with a checkpoint and resumes, and turns failures into 'error' events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_RUN_CONFIG } from '../../common/protocol.ts';
import type { RunConfig } from '../../common/protocol.ts';
import { startEngine } from '../../engine/engine-host.ts';
import { prepareDataset } from '../../engine/data/prepare.ts';
import { loadModel } from '../../engine/io/hf-model.ts';
import { loadAdapter } from '../../engine/io/peft-adapter.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import { loadTokenizer } from '../../engine/io/tokenizer.ts';
import { evalLoss } from '../../engine/model/llama.ts';
import type { LoraWeights, ModelWeights, TrainingExample } from '../../engine/model/types.ts';
import { sequentialBatches } from '../../engine/train/batching.ts';
import { runUntilEnd } from '../helpers/engine-run.ts';

const dir = mkdtempSync(join(tmpdir(), 'worker-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const sample = await ensureSample();

function config(train: Partial<RunConfig['train']>, lora: Partial<RunConfig['lora']> = {}): RunConfig {
  return {
    ...DEFAULT_RUN_CONFIG,
    name: 'worker test',
    modelPath: sample.modelDir,
    datasetPath: sample.datasetPath,
    lora: { ...DEFAULT_RUN_CONFIG.lora, ...lora },
    train: { ...DEFAULT_RUN_CONFIG.train, ...train },
  };
}

function meanLoss(model: ModelWeights, lora: LoraWeights | null, examples: TrainingExample[], pad: number): number {
  let sum = 0;
  let n = 0;
  for (const b of sequentialBatches(examples, 16, pad)) {
    const r = evalLoss(model, lora, b);
    sum += r.sumLoss;
    n += r.tokens;
  }
  return sum / n;
}

test('the worker trains the sample model: metric events, done, an adapter that loads and lowers the loss', async () => {
  const engine = startEngine();
  try {
    const runDir = join(dir, 'run-train');
    const cfg = config(
      { steps: 30, batchSize: 4, maxSeqLen: 128, learningRate: 5e-2, validationPercent: 10, evalEverySteps: 15, seed: 3 },
      { targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], dropout: 0 },
    );
    const events = await runUntilEnd(engine, { type: 'train', runId: 'run-1', config: cfg, runDir, resume: false });
    const err = events.find((e) => e.type === 'error');
    assert.equal(err, undefined, JSON.stringify(err));
    assert.ok(events.every((e) => e.runId === 'run-1'));
    const started = events.find((e) => e.type === 'started');
    assert.ok(started && started.type === 'started');
    assert.equal(started.backend, 'cpu');
    assert.equal(started.totalSteps, 30);
    assert.equal(started.resumedFromStep, 0);
    assert.ok(started.parameters.trainable > 0 && started.parameters.total > started.parameters.trainable);
    const metrics = events.flatMap((e) => (e.type === 'metric' ? [e.point] : []));
    assert.deepEqual(metrics.map((m) => m.step), Array.from({ length: 30 }, (_, i) => i + 1));
    assert.ok(metrics.every((m) => Number.isFinite(m.loss) && m.tokens > 0 && m.tokensPerSecond > 0 && m.learningRate === 5e-2));
    assert.deepEqual(metrics.filter((m) => m.validationLoss !== undefined).map((m) => m.step), [15, 30]);
    const done = events[events.length - 1];
    assert.ok(done.type === 'done');
    assert.equal(done.adapterDir, join(runDir, 'adapter'));
    assert.equal(done.steps, 30);
    assert.equal(done.finalLoss, metrics[29].loss);

    // the adapter loads, and on the training split it gives a lower loss than the base model
    const model = loadModel(sample.modelDir);
    const lora = loadAdapter(done.adapterDir, model.config);
    const tok = await loadTokenizer(sample.modelDir);
    assert.ok(tok);
    const data = await prepareDataset({ path: sample.datasetPath, format: 'auto', tokenizer: tok, maxSeqLen: 128, validationPercent: 10, seed: 3, badRecords: 'skip', trainOn: 'auto' });
    const subset = data.train.slice(0, 64);
    const pad = tok.padTokenId ?? 0;
    const before = meanLoss(model, null, subset, pad);
    const after = meanLoss(model, lora, subset, pad);
    assert.ok(after < before - 0.05, `training loss ${before} → ${after}`);
    const valBefore = meanLoss(model, null, data.validation, pad);
    assert.ok((metrics[29].validationLoss as number) < valBefore, `validation loss ${valBefore} → ${metrics[29].validationLoss}`);
  } finally {
    await engine.terminate();
  }
});

test('stop with save writes a checkpoint; a resumed run continues from it to done', async () => {
  const engine = startEngine();
  try {
    const runDir = join(dir, 'run-stop');
    const cfg = config({ steps: 5, batchSize: 2, maxSeqLen: 64 });
    const first = await runUntilEnd(engine, { type: 'train', runId: 'run-2', config: cfg, runDir, resume: false }, (e) => {
      if (e.type === 'metric' && e.point.step === 2) engine.send({ type: 'stop', save: true });
    });
    const stopped = first[first.length - 1];
    assert.ok(stopped.type === 'stopped', JSON.stringify(stopped));
    // The stop is asked for after step 2's metric arrives; the worker may finish one more step before it reads it.
    const k = stopped.step;
    assert.ok(k >= 2 && k < 5, `stopped at step ${k}`);
    assert.equal(stopped.checkpoint, join(runDir, 'checkpoints', `step-${k}`));
    assert.ok(existsSync(join(runDir, 'checkpoints', `step-${k}`, 'trainer_state.json')));
    assert.ok(!existsSync(join(runDir, 'adapter')), 'no final adapter for a stopped run');

    const second = await runUntilEnd(engine, { type: 'train', runId: 'run-2', config: cfg, runDir, resume: true });
    const started = second.find((e) => e.type === 'started');
    assert.ok(started && started.type === 'started');
    assert.equal(started.resumedFromStep, k);
    const expectSteps = Array.from({ length: 5 - k }, (_, i) => k + 1 + i);
    assert.deepEqual(second.flatMap((e) => (e.type === 'metric' ? [e.point.step] : [])), expectSteps);
    const done = second[second.length - 1];
    assert.ok(done.type === 'done', JSON.stringify(done));
    assert.equal(done.steps, 5);
  } finally {
    await engine.terminate();
  }
});

test('failures become error events naming the problem; the worker stays usable', async () => {
  // A GPU budget far below any model: with an adapter the webgpu run is refused before it starts, without one the
  // explicit backend is refused; either way the worker trains the next run.
  const budget = process.env.LORA_STUDIO_GPU_MEMORY_GIB;
  process.env.LORA_STUDIO_GPU_MEMORY_GIB = '0.001';
  const engine = startEngine();
  if (budget === undefined) delete process.env.LORA_STUDIO_GPU_MEMORY_GIB;
  else process.env.LORA_STUDIO_GPU_MEMORY_GIB = budget;
  try {
    const missing = join(dir, 'no-such-model');
    const ev = await runUntilEnd(engine, { type: 'train', runId: 'run-3', config: { ...config({ steps: 1 }), modelPath: missing }, runDir: join(dir, 'run-err'), resume: false });
    const err = ev[ev.length - 1];
    assert.ok(err.type === 'error');
    assert.equal(err.runId, 'run-3');
    assert.match(err.message, /no-such-model/);

    const gpu = await runUntilEnd(engine, { type: 'train', runId: 'run-4', config: { ...config({ steps: 1 }), backend: 'webgpu' }, runDir: join(dir, 'run-gpu'), resume: false });
    const e2 = gpu[gpu.length - 1];
    assert.ok(e2.type === 'error');
    if (e2.field === 'backend') assert.match(e2.message, /backend: webgpu was chosen, but this machine has no WebGPU adapter/);
    else assert.match(e2.message, /not enough GPU memory: needs \d[\d.]* GiB, adapter allows 0\.0010 GiB/);

    const ok = await runUntilEnd(engine, { type: 'train', runId: 'run-5', config: config({ steps: 1, batchSize: 1, maxSeqLen: 128 }), runDir: join(dir, 'run-ok'), resume: false });
    assert.equal(ok[ok.length - 1].type, 'done');
  } finally {
    await engine.terminate();
  }
});

test('a worker that dies (out of memory) produces an error event, and the parent lives on', async () => {
  const engine = startEngine({ resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1 } });
  const ev = await runUntilEnd(engine, { type: 'train', runId: 'run-6', config: config({ steps: 1 }), runDir: join(dir, 'run-oom'), resume: false });
  const err = ev[ev.length - 1];
  assert.ok(err.type === 'error');
  assert.equal(err.runId, 'run-6');
  assert.match(err.message, /engine worker/);
  await engine.exited;
});
