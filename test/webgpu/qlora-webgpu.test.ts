/**
 * QLoRA end to end on webgpu through the engine worker (Mesa llvmpipe in CI): the sample model quantized to NF4 as it
 * loads (train.baseWeights), the linears kept packed on the device (less GPU memory than the f32 base, counted by the
 * allocator), the loss falls, and a run stopped with a checkpoint resumes to the uninterrupted run's adapter.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_RUN_CONFIG, type EngineEvent, type RunConfig } from '../../common/protocol.ts';
import { probeAdapter } from '../../engine/backend/webgpu/device.ts';
import { startEngine } from '../../engine/engine-host.ts';
import { loadAdapter } from '../../engine/io/peft-adapter.ts';
import { readModelConfig } from '../../engine/io/model-source.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import { forEachPair } from '../../engine/model/lora.ts';
import { runUntilEnd } from '../helpers/engine-run.ts';
import { writeLearnableDataset } from '../helpers/learnable-dataset.ts';

const probe = await probeAdapter();
assert.ok(probe.available, `the QLoRA webgpu test needs a WebGPU adapter (llvmpipe is enough; set XDG_RUNTIME_DIR): ${probe.error ?? 'none found'}`);

const dir = mkdtempSync(join(tmpdir(), 'qlora-webgpu-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const sample = await ensureSample();

const STEPS = 10;
function config(baseWeights: RunConfig['train']['baseWeights']): RunConfig {
  return {
    ...DEFAULT_RUN_CONFIG,
    backend: 'webgpu',
    name: 'qlora',
    modelPath: sample.modelDir,
    // Data ten steps can fit (the sample's 300 different instructions leave ten steps of a random model only noise).
    datasetPath: writeLearnableDataset(dir),
    // Dropout 0: a resumed device run then replays the uninterrupted one exactly.
    lora: { ...DEFAULT_RUN_CONFIG.lora, r: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] },
    train: { ...DEFAULT_RUN_CONFIG.train, steps: STEPS, batchSize: 2, maxSeqLen: 64, learningRate: 1e-2, baseWeights },
  };
}

const losses = (events: EngineEvent[]): number[] => events.flatMap((e) => (e.type === 'metric' ? [e.point.loss] : []));
const last = (events: EngineEvent[]): EngineEvent => events[events.length - 1];

test('QLoRA (NF4 base) on webgpu: packed on the device, loss falls, stop + resume gives the same adapter', async () => {
  const engine = startEngine();
  try {
    const full = await runUntilEnd(engine, { type: 'train', runId: 'q-full', config: config('nf4'), runDir: join(dir, 'full'), resume: false });
    const done = last(full);
    assert.equal(done.type, 'done', JSON.stringify(done));
    assert.ok(full.some((e) => e.type === 'log' && /base weights: nf4 \(linears packed, QLoRA\)/.test(e.message)));
    const l = losses(full);
    assert.equal(l.length, STEPS);
    const head = (l[0] + l[1] + l[2]) / 3;
    const tail = (l[STEPS - 1] + l[STEPS - 2] + l[STEPS - 3]) / 3;
    assert.ok(tail < head - 0.05, `loss ${head.toFixed(4)} → ${tail.toFixed(4)}`);

    // The same run on the f32 base allocates more: the packed linears are smaller on the device.
    const f32 = last(await runUntilEnd(engine, { type: 'train', runId: 'q-f32', config: { ...config('f32'), train: { ...config('f32').train, steps: 1 } }, runDir: join(dir, 'f32'), resume: false }));
    assert.ok(f32.type === 'done' && done.type === 'done' && f32.peakGpuBytes !== undefined && done.peakGpuBytes !== undefined);
    assert.ok(done.peakGpuBytes < f32.peakGpuBytes, `peak ${done.peakGpuBytes} (nf4) vs ${f32.peakGpuBytes} (f32)`);

    const runDir = join(dir, 'stopped');
    const first = await runUntilEnd(engine, { type: 'train', runId: 'q-stop', config: config('nf4'), runDir, resume: false }, (e) => {
      if (e.type === 'metric' && e.point.step === 3) engine.send({ type: 'stop', save: true });
    });
    const stopped = last(first);
    assert.ok(stopped.type === 'stopped' && stopped.checkpoint, JSON.stringify(stopped));
    const second = await runUntilEnd(engine, { type: 'train', runId: 'q-stop', config: config('nf4'), runDir, resume: true });
    const resumed = last(second);
    assert.equal(resumed.type, 'done', JSON.stringify(resumed));
    const started = second.find((e) => e.type === 'started');
    assert.ok(started?.type === 'started' && started.resumedFromStep === stopped.step);
    // Resumed losses continue the uninterrupted run's, and the adapters agree.
    const rest = losses(second);
    for (let i = 0; i < rest.length; i++) assert.ok(Math.abs(rest[i] - l[stopped.step + i]) < 1e-5, `step ${stopped.step + i + 1}: ${rest[i]} vs ${l[stopped.step + i]}`);
    const cfg = readModelConfig(sample.modelDir);
    const a = loadAdapter(join(dir, 'full', 'adapter'), cfg);
    const b = loadAdapter(join(runDir, 'adapter'), cfg);
    let worst = 0;
    forEachPair(a, (target, layer, p) => {
      const q = b.layers[layer][target];
      assert.ok(q);
      for (const [x, y] of [
        [p.A, q.A],
        [p.B, q.B],
      ] as const) {
        for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / (Math.abs(x[i]) + 1e-3));
      }
    });
    assert.ok(worst < 1e-5, `adapter after resume differs by ${worst} (relative)`);
  } finally {
    await engine.terminate();
  }
});

test('a mixed base (nf4, layer 1 kept as f16) on webgpu: the loss of each step is the cpu run\'s, and the device holds more than all-nf4, less than f32', async () => {
  const engine = startEngine();
  try {
    const steps = 3;
    const mixed = (backend: RunConfig['backend']): RunConfig => {
      const c = config('nf4');
      return { ...c, backend, train: { ...c.train, steps, baseWeightsKeep: { layers: [1], as: 'f16' } } };
    };
    const gpu = await runUntilEnd(engine, { type: 'train', runId: 'm-gpu', config: mixed('webgpu'), runDir: join(dir, 'mixed-gpu'), resume: false });
    const cpu = await runUntilEnd(engine, { type: 'train', runId: 'm-cpu', config: mixed('cpu'), runDir: join(dir, 'mixed-cpu'), resume: false });
    assert.equal(last(gpu).type, 'done', JSON.stringify(last(gpu)));
    assert.equal(last(cpu).type, 'done', JSON.stringify(last(cpu)));
    assert.ok(gpu.some((e) => e.type === 'log' && /base weights: nf4 with layer 1 kept as f16/.test(e.message)));
    const g = losses(gpu);
    const c = losses(cpu);
    assert.equal(g.length, steps);
    for (let i = 0; i < steps; i++) assert.ok(Math.abs(g[i] - c[i]) <= 1e-4 * Math.abs(c[i]), `step ${i + 1}: webgpu ${g[i]}, cpu ${c[i]}`);
    const peak = (events: EngineEvent[]): number => {
      const e = last(events);
      assert.ok(e.type === 'done' && e.peakGpuBytes !== undefined);
      return e.peakGpuBytes;
    };
    const allNf4 = await runUntilEnd(engine, { type: 'train', runId: 'm-nf4', config: { ...config('nf4'), train: { ...config('nf4').train, steps: 1 } }, runDir: join(dir, 'mixed-nf4'), resume: false });
    const f32 = await runUntilEnd(engine, { type: 'train', runId: 'm-f32', config: { ...config('f32'), train: { ...config('f32').train, steps: 1 } }, runDir: join(dir, 'mixed-f32'), resume: false });
    assert.ok(peak(allNf4) < peak(gpu) && peak(gpu) < peak(f32), `peak GPU bytes: nf4 ${peak(allNf4)} < mixed ${peak(gpu)} < f32 ${peak(f32)}`);
  } finally {
    await engine.terminate();
  }
});
