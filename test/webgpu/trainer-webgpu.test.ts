/**
 * The Trainer, the engine run, the worker and the CLI on the webgpu backend (Mesa llvmpipe in CI), each checked
 * against the cpu backend — the reference, itself checked against PyTorch elsewhere:
 * - fp32: four steps (gradient accumulation, clipping, weight decay, warmup + cosine, validation) give the cpu
 *   trainer's losses within 1e-5 and its final LoRA within 1e-4 (relative, see gpu.ts assertClose).
 * - fp16: every point carries the loss scale, which follows the cpu trainer's GradScaler step for step (growth
 *   interval 2), and the losses stay within 1e-2 of the cpu fp32 run.
 * - stop + resume on webgpu: the checkpoint holds the device's LoRA and AdamW m/v/t; resuming continues to the
 *   uninterrupted run's adapter (1e-6), and the same checkpoint resumes on the cpu too (1e-4).
 * - a run that cannot fit fails before 'started' with "needs X GiB, adapter allows Y"; a lost device rejects the run.
 * - the engine worker trains on webgpu and reports the adapter and peak GPU memory; `eval-loss --backend webgpu`
 *   equals `--backend cpu` within 1e-5 (loss) and 1e-4 (gradients); greedy `generate` gives the same tokens.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_RUN_CONFIG } from '../../common/protocol.ts';
import type { EngineEvent, MetricPoint, RunConfig, RunConfigInput } from '../../common/protocol.ts';
import { acquireGpu, GpuDeviceLostError, probeAdapter } from '../../engine/backend/webgpu/device.ts';
import { startEngine } from '../../engine/engine-host.ts';
import { generate } from '../../engine/generate/generate.ts';
import { generateWebgpu } from '../../engine/generate/webgpu-generate.ts';
import { loadModel } from '../../engine/io/hf-model.ts';
import { loadAdapter } from '../../engine/io/peft-adapter.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import { withSafetensors } from '../../engine/io/safetensors.ts';
import { loadTokenizer } from '../../engine/io/tokenizer.ts';
import { forEachPair } from '../../engine/model/lora.ts';
import { countParameters } from '../../engine/model/llama.ts';
import type { LoraWeights } from '../../engine/model/types.ts';
import { listCheckpoints } from '../../engine/train/checkpoint.ts';
import { runTraining } from '../../engine/train/run-training.ts';
import type { TrainerSettings } from '../../engine/train/run-config.ts';
import { Trainer, type TrainerOptions } from '../../engine/train/trainer.ts';
import { longestExample, webgpuBackend, type WebgpuBackendOptions } from '../../engine/train/webgpu-trainer-backend.ts';
import { repoRoot } from '../helpers/python.ts';
import { randomExamples, tinyTrainerSettings, writeTinyTrainModel } from '../helpers/tiny-trainer.ts';
import { assertClose } from './gpu.ts';
import { randomLora } from './model.ts';

if (process.env.CI === 'true') {
  const p = await probeAdapter();
  if (!p.available) {
    assert.fail(
      `CI=true: the webgpu suite needs a WebGPU adapter and found none (${p.error ?? 'no adapter'}). Install Mesa's Vulkan ` +
        'drivers (llvmpipe/lavapipe) from Debian bookworm-backports: echo "deb http://deb.debian.org/debian bookworm-backports main" ' +
        '> /etc/apt/sources.list.d/backports.list && apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers',
    );
  }
}

const dir = mkdtempSync(join(tmpdir(), 'trainer-webgpu-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const { modelDir, model } = writeTinyTrainModel(dir);
const train = randomExamples(11, 1);
const validation = randomExamples(3, 2);
const gpuSizing: WebgpuBackendOptions = { maxSeqLen: longestExample(train, validation) };

// Dropout 0: the device draws its masks from a hash, not from the host Rng (same distribution, other bits).
function settings(over: Partial<RunConfigInput['train']> = {}): TrainerSettings {
  return tinyTrainerSettings(modelDir, { dropout: 0 }, { steps: 4, warmupSteps: 1, evalEverySteps: 2, ...over });
}

function trainer(s: TrainerSettings, extra: Partial<TrainerOptions> = {}): Trainer {
  return new Trainer({ model, settings: s, train, validation, padTokenId: 0, ...extra }, countParameters(model));
}

async function onGpu(t: Trainer, opts: WebgpuBackendOptions = gpuSizing): Promise<Trainer> {
  await t.attachBackend(webgpuBackend(model, 0, opts));
  return t;
}

function assertLoraClose(what: string, got: LoraWeights, want: LoraWeights, rtol: number): void {
  let n = 0;
  forEachPair(want, (target, l, p) => {
    const q = got.layers[l][target];
    assert.ok(q, `${what}: no layers.${l}.${target}`);
    assertClose(`${what} layers.${l}.${target}.lora_A`, q.A, p.A, rtol);
    assertClose(`${what} layers.${l}.${target}.lora_B`, q.B, p.B, rtol);
    n++;
  });
  assert.equal(n, 2 * 3);
}

function assertLossesClose(what: string, got: MetricPoint[], want: MetricPoint[], rtol: number): void {
  assert.deepEqual(got.map((p) => p.step), want.map((p) => p.step), `${what}: steps`);
  assertClose(`${what}: losses`, got.map((p) => p.loss), want.map((p) => p.loss), rtol);
  assert.deepEqual(got.map((p) => p.tokens), want.map((p) => p.tokens), `${what}: tokens per step`);
}

test('fp32: the Trainer on webgpu follows the cpu trainer (losses 1e-5, validation, final LoRA 1e-4)', async () => {
  const s = settings();
  const cpu = await trainer(s).run();
  const gpuTrainer = await onGpu(trainer(s));
  assert.equal(gpuTrainer.backend?.id, 'webgpu');
  try {
    const gpu = await gpuTrainer.run();
    assert.equal(gpu.status, 'done');
    assertLossesClose('webgpu vs cpu', gpu.metrics, cpu.metrics, 1e-5);
    assert.deepEqual(gpu.metrics.map((p) => p.validationLoss !== undefined), [false, true, false, true]);
    assertClose('validation losses', gpu.metrics.flatMap((p) => p.validationLoss ?? []), cpu.metrics.flatMap((p) => p.validationLoss ?? []), 1e-5);
    assertClose('grad norms', gpu.metrics.map((p) => p.gradNorm), cpu.metrics.map((p) => p.gradNorm), 1e-4);
    assert.ok(gpu.metrics.every((p) => p.lossScale === undefined && p.skipped === undefined));
    assertLoraClose('final LoRA', gpu.lora, cpu.lora, 1e-4);
    const mem = gpuTrainer.backend?.memory();
    assert.ok(mem && mem.peakBytes > 0 && mem.peakBytes >= mem.liveBytes, JSON.stringify(mem));
    // each point carries the device bytes the session holds (weights, activations, LoRA/AdamW stay allocated between
    // steps; the first validation adds its programs' buffers) and the process's resident set
    const device = gpu.metrics.map((p) => p.deviceBytes ?? 0);
    assert.ok(device.every((b, i) => b > 0 && (i === 0 || b >= device[i - 1])), JSON.stringify(device));
    assert.equal(device.at(-1), mem.liveBytes);
    assert.ok(gpu.metrics.every((p) => p.rssBytes !== undefined && p.rssBytes > 1 << 20), JSON.stringify(gpu.metrics.map((p) => p.rssBytes)));
  } finally {
    gpuTrainer.backend?.destroy();
  }
});

test('fp16: every step reports the loss scale, which follows the cpu GradScaler; losses within 1e-2 of fp32', async () => {
  const s16 = { ...settings({ precision: 'fp16', steps: 5 }), lossScaleGrowthInterval: 2 };
  const cpu16 = await trainer(s16).run();
  const cpu32 = await trainer(settings({ steps: 5 })).run();
  const t = await onGpu(trainer(s16));
  try {
    const gpu = await t.run();
    const scales = gpu.metrics.map((p) => [p.lossScale, p.skipped === true]);
    assert.ok(gpu.metrics.every((p) => typeof p.lossScale === 'number'), JSON.stringify(scales));
    assert.deepEqual(scales, cpu16.metrics.map((p) => [p.lossScale, p.skipped === true]), 'scale and skips as the cpu trainer');
    assert.deepEqual(gpu.metrics.map((p) => p.lossScale), [65536, 65536, 131072, 131072, 262144], 'growth every 2 clean steps (DESIGN §4)');
    assertLossesClose('fp16 webgpu vs fp32 cpu', gpu.metrics, cpu32.metrics, 1e-2);
  } finally {
    t.backend?.destroy();
  }
});

test('stop + resume on webgpu continues from the checkpoint (device LoRA and AdamW state saved), also on the cpu', async () => {
  const s = settings({ steps: 6, checkpointEverySteps: 2 });
  const full = await onGpu(trainer(s));
  const fullResult = await full.run();
  full.backend?.destroy();

  const runDir = join(dir, 'run-stop');
  let seen = 0;
  const first = await onGpu(trainer(s, { runDir, onMetric: () => seen++, shouldStop: () => (seen === 3 ? { save: true } : null) }));
  const r1 = await first.run();
  first.backend?.destroy();
  assert.equal(r1.status, 'stopped');
  assert.equal(r1.checkpoint, join(runDir, 'checkpoints', 'step-3'));
  assert.deepEqual(listCheckpoints(runDir).map((c) => c.step), [3, 2]);
  const state = JSON.parse(readFileSync(join(runDir, 'checkpoints', 'step-3', 'trainer_state.json'), 'utf8')) as { optimizerStep: number };
  assert.equal(state.optimizerStep, 3, 'AdamW t of the device');
  // The checkpoint holds what the device had, not the host's initial weights.
  assertLoraClose('checkpoint vs stopped run', loadAdapter(join(runDir, 'checkpoints', 'step-3'), model.config), r1.lora, 0);
  withSafetensors(join(runDir, 'checkpoints', 'step-3', 'optimizer.safetensors'), (f) => {
    const v = f.readFloat('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight.exp_avg_sq');
    assert.ok(v.some((x) => x > 0), 'AdamW second moments came from the device');
  });

  const points: MetricPoint[] = [];
  const second = await onGpu(trainer(s, { runDir, resume: true, onMetric: (p) => points.push(p) }));
  assert.equal(second.resumedFromStep, 3);
  const r2 = await second.run();
  second.backend?.destroy();
  assert.deepEqual(points.map((p) => p.step), [4, 5, 6]);
  assertLossesClose('resumed vs uninterrupted (webgpu)', r2.metrics, fullResult.metrics, 1e-6);
  assertLoraClose('resumed vs uninterrupted (webgpu)', r2.lora, fullResult.lora, 1e-6);

  // The checkpoint format is the cpu backend's: the webgpu checkpoint resumes there too.
  const cpuDir = join(dir, 'run-stop-cpu');
  let steps = 0;
  const onGpuFirst = await onGpu(trainer(s, { runDir: cpuDir, onMetric: () => steps++, shouldStop: () => (steps === 3 ? { save: true } : null) }));
  assert.equal((await onGpuFirst.run()).status, 'stopped');
  onGpuFirst.backend?.destroy();
  const onCpu = trainer(s, { runDir: cpuDir, resume: true });
  assert.equal(onCpu.resumedFromStep, 3);
  assertLoraClose('webgpu checkpoint resumed on the cpu', (await onCpu.run()).lora, fullResult.lora, 1e-4);
});

test('a lost device rejects the run with GpuDeviceLostError instead of hanging', async () => {
  const ctx = await acquireGpu();
  try {
    let steps = 0;
    const t = await onGpu(
      trainer(settings({ steps: 4 }), {
        onMetric: () => {
          if (++steps === 1) ctx.device.destroy();
        },
      }),
      { ...gpuSizing, gpu: ctx },
    );
    await assert.rejects(t.run(), (e: unknown) => e instanceof GpuDeviceLostError && /GPU device lost/.test(e.message));
    assert.equal(steps, 1);
    t.backend?.destroy();
  } finally {
    ctx.destroy();
  }
});

const sample = await ensureSample();

function sampleConfig(over: Partial<RunConfig['train']>, backend: RunConfig['backend']): RunConfig {
  return {
    ...DEFAULT_RUN_CONFIG,
    backend,
    name: 'webgpu run',
    modelPath: sample.modelDir,
    datasetPath: sample.datasetPath,
    lora: { ...DEFAULT_RUN_CONFIG.lora, r: 4, alpha: 8 },
    train: { ...DEFAULT_RUN_CONFIG.train, steps: 2, batchSize: 2, maxSeqLen: 64, ...over },
  };
}

test('a run that cannot fit fails before it starts: "needs X GiB, adapter allows Y"', async () => {
  const events: EngineEvent[] = [];
  const before = process.env.LORA_STUDIO_GPU_MEMORY_GIB;
  process.env.LORA_STUDIO_GPU_MEMORY_GIB = '0.001';
  try {
    await assert.rejects(
      runTraining({ type: 'train', runId: 'oom', config: sampleConfig({}, 'webgpu'), runDir: join(dir, 'run-oom'), resume: false }, { post: (e) => events.push(e), shouldStop: () => null }),
      /needs \d[\d.]* GiB, adapter allows 0\.0010 GiB/,
    );
  } finally {
    if (before === undefined) delete process.env.LORA_STUDIO_GPU_MEMORY_GIB;
    else process.env.LORA_STUDIO_GPU_MEMORY_GIB = before;
  }
  assert.ok(!events.some((e) => e.type === 'started' || e.type === 'metric'), 'nothing started');
});

test('the engine worker trains on webgpu: started names the adapter, done reports peak GPU memory', async () => {
  const engine = startEngine();
  try {
    const events = await new Promise<EngineEvent[]>((resolve) => {
      const seen: EngineEvent[] = [];
      const off = engine.on((e) => {
        seen.push(e);
        if (e.type === 'done' || e.type === 'stopped' || e.type === 'error') {
          off();
          resolve(seen);
        }
      });
      engine.send({ type: 'train', runId: 'w', config: sampleConfig({ precision: 'fp16', gradientCheckpointing: true }, 'webgpu'), runDir: join(dir, 'run-worker'), resume: false });
    });
    const last = events[events.length - 1];
    assert.equal(last.type, 'done', JSON.stringify(last));
    const started = events.find((e) => e.type === 'started');
    assert.ok(started?.type === 'started');
    assert.equal(started.backend, 'webgpu');
    const probe = await probeAdapter();
    assert.equal(started.adapterName, probe.name);
    const metrics = events.flatMap((e) => (e.type === 'metric' ? [e.point] : []));
    assert.deepEqual(metrics.map((p) => p.step), [1, 2]);
    assert.ok(metrics.every((p) => p.lossScale === 65536), JSON.stringify(metrics));
    assert.ok(last.type === 'done' && last.peakGpuBytes !== undefined && last.peakGpuBytes > 0);
    assert.ok(events.some((e) => e.type === 'log' && /GPU memory: .* peak on /.test(e.message)));
    loadAdapter(last.adapterDir, loadModel(sample.modelDir).config);
  } finally {
    await engine.terminate();
  }
});

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/lora-studio.mjs'), ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, LORA_STUDIO_FROM_SOURCE: '1' }, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('eval-loss --backend webgpu equals --backend cpu on the sample model (loss 1e-5, --grads 1e-4; fp16 1e-2)', async () => {
  const tok = await loadTokenizer(sample.modelDir);
  assert.ok(tok);
  const data = join(dir, 'eval.jsonl');
  const texts = ['The quick brown fox jumps over the lazy dog.', 'In the beginning there was a sample model, and it was small.'];
  writeFileSync(data, texts.map((t) => JSON.stringify({ input_ids: tok.encode(t) })).join('\n') + '\n');
  const run = (backend: string, extra: string[] = []): { loss: number; tokens: number } => {
    const r = cli(['eval-loss', '--model', sample.modelDir, '--data', data, '--backend', backend, ...extra]);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { loss: number; tokens: number };
  };
  const cpu = run('cpu');
  const gpu = run('webgpu');
  assert.equal(gpu.tokens, cpu.tokens);
  assertClose('eval-loss webgpu vs cpu', [gpu.loss], [cpu.loss], 1e-5);

  const gradArgs = (out: string): string[] => ['--grads', out, '--lora-r', '4', '--lora-alpha', '8', '--lora-targets', 'q_proj,down_proj', '--seed', '1'];
  const gc = join(dir, 'grads-cpu.safetensors');
  const gg = join(dir, 'grads-webgpu.safetensors');
  assertClose('eval-loss --grads loss', [run('webgpu', gradArgs(gg)).loss], [run('cpu', gradArgs(gc)).loss], 1e-5);
  const read = (f: string): Map<string, Float32Array> => withSafetensors(f, (s) => new Map(s.names().map((n) => [n, Float32Array.from(s.readFloat(n))])));
  const want = read(gc);
  const got = read(gg);
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [name, w] of want) {
    const g = got.get(name);
    assert.ok(g);
    // B = 0 in a fresh adapter, so dA is exactly 0 on both backends; dB is where the numbers are.
    if (name.includes('lora_B')) assertClose(name, g, w, 1e-4);
    else assert.ok(g.every((x) => x === 0), `${name} is 0 when B = 0`);
  }
  assertClose('eval-loss webgpu fp16 vs cpu fp32', [run('webgpu', ['--dtype', 'fp16']).loss], [cpu.loss], 1e-2);

  const bad = cli(['eval-loss', '--model', sample.modelDir, '--data', data, '--backend', 'vulkan']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--backend must be cpu or webgpu, got "vulkan"/);
});

test('generate on webgpu: greedy decoding gives the cpu backend tokens, with and without an adapter', async () => {
  const m = loadModel(sample.modelDir);
  const tok = await loadTokenizer(sample.modelDir);
  assert.ok(tok);
  const prompt = tok.encode('Once upon a time');
  const opts = { maxNewTokens: 6, temperature: 0, topP: 1, seed: 1, eosTokenIds: [] };
  assert.deepEqual(await generateWebgpu(m, null, prompt, opts), generate(m, null, prompt, opts));
  // With an adapter that moves the logits (B ≠ 0), applied unmerged on both backends.
  const lora = randomLora(m.config, { r: 4, alpha: 32, dropout: 0, targets: ['q_proj', 'v_proj', 'down_proj'], rslora: false }, 3);
  const withLora = generate(m, lora, prompt, opts);
  assert.notDeepEqual(withLora, generate(m, null, prompt, opts), 'the adapter changes the greedy continuation');
  assert.deepEqual(await generateWebgpu(m, lora, prompt, opts), withLora);
  const r = cli(['generate', '--model', sample.modelDir, '--prompt', 'Once upon a time', '--max-new-tokens', '6', '--backend', 'webgpu']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, cli(['generate', '--model', sample.modelDir, '--prompt', 'Once upon a time', '--max-new-tokens', '6']).stdout);
});
