// "Export for a cluster", proved on the real stack: `lora-studio export-bundle` writes a bundle for the sample model
// and dataset, Hugging Face Accelerate trains it for real in two processes over gloo (DDP, then DeepSpeed ZeRO-2),
// and the loss curve, gradient norms, learning rates and validation loss agree with the studio's own run of the same
// config; the adapter it writes imports into the Adapters list, and its eval loss in the studio is the loss
// transformers + PEFT report for it.
//
// How the runs are aligned: the bundle carries the studio's batch order (data/plan.jsonl: the examples of every
// micro-batch, from the trainer's BatchIterator) and its dropout seeds; with `--dropout studio` train.py draws the
// studio's own masks (xoshiro128** in Python), so both engines compute the same function at every step and only
// float rounding differs. With PEFT's own dropout (the default) the masks differ; that run's distance is measured too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunConfigSchema, type EngineEvent, type MetricPoint } from '../../common/protocol.ts';
import { loadModel } from '../../engine/io/hf-model.ts';
import { loadAdapter } from '../../engine/io/peft-adapter.ts';
import { SafetensorsFile } from '../../engine/io/safetensors.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import { evalLoss } from '../../engine/model/llama.ts';
import { newLora } from '../../engine/model/lora.ts';
import type { TrainingExample } from '../../engine/model/types.ts';
import { sequentialBatches } from '../../engine/train/batching.ts';
import { runTraining } from '../../engine/train/run-training.ts';
import { INIT_STREAM } from '../../engine/train/seed-streams.ts';
import { Rng } from '../../engine/util/rng.ts';
import { AdapterStore } from '../../host/services/adapter-store.ts';
import { importAdapter } from '../../host/services/adapter-import.ts';
import { openHome } from '../../host/services/home.ts';
import { pythonPath, repoRoot, runPython } from '../helpers/python.ts';

const dir = mkdtempSync(join(tmpdir(), 'bundle-accelerate-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
// One thread for the studio's run: the two cores are the accelerate processes' while they run.
process.env.LORA_STUDIO_CPU_THREADS = '1';
const sample = await ensureSample();

// Every setting the bundle must carry differs from its default: rsLoRA, three targets of two input sizes, dropout,
// an odd batch (rows split 2/1 over two processes), accumulation, cosine with warmup, weight decay, clipping that
// bites (the norms are ~0.6), gradient checkpointing, packing, a validation split evaluated twice.
const config = RunConfigSchema.parse({
  name: 'bundle-test',
  modelPath: sample.modelDir,
  datasetPath: sample.datasetPath,
  lora: { r: 4, alpha: 8, dropout: 0.1, targets: ['q_proj', 'v_proj', 'down_proj'], rslora: true },
  train: {
    learningRate: 3e-3,
    steps: 8,
    batchSize: 3,
    gradAccumulation: 2,
    maxSeqLen: 64,
    warmupSteps: 2,
    schedule: 'cosine',
    weightDecay: 0.01,
    maxGradNorm: 0.5,
    seed: 7,
    gradientCheckpointing: true,
    validationPercent: 10,
    evalEverySteps: 4,
  },
  data: { packing: true },
});
const runJson = join(dir, 'run.json');
writeFileSync(runJson, JSON.stringify(config, null, 2));
const bundle = join(dir, 'bundle');

/** Measured agreement, printed at the end for the report. */
const measured: Record<string, number> = {};

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * `accelerate launch … train.py …` in the bundle. Two processes without a GPU: `--multi_gpu --num_processes 2`
 * starts them through torchrun and train.py puts them on the CPU over gloo (accelerate 1.16's `--cpu` starts a
 * single process unless mpirun is installed); the DeepSpeed config starts them through its own launcher.
 */
async function launch(launchArgs: string[], trainArgs: string[], timeoutMs = 240_000): Promise<string> {
  const port = await freePort();
  const args = ['-m', 'accelerate.commands.launch', ...launchArgs, '--num_processes', '2', '--num_machines', '1', '--main_process_port', String(port), '--dynamo_backend', 'no', 'train.py', ...trainArgs];
  return new Promise((resolve, reject) => {
    const child = spawn(pythonPath(), args, { cwd: bundle, env: { ...process.env, OMP_NUM_THREADS: '1', TOKENIZERS_PARALLELISM: 'false' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`accelerate launch ${launchArgs.join(' ')} failed (exit ${code}):\n${out.slice(-6000)}`));
    });
  });
}

function readMetrics(outDir: string): MetricPoint[] {
  return readFileSync(join(outDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as MetricPoint);
}

function readStatus(outDir: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(outDir, 'status.json'), 'utf8')) as Record<string, unknown>;
}

function readRows(file: string): TrainingExample[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const r = JSON.parse(l) as { input_ids: number[]; labels: number[] };
      return { inputIds: r.input_ids, labels: r.labels };
    });
}

/** Compares an external run's points with the studio's, step by step; returns the largest differences. */
function compareCurves(studio: MetricPoint[], ext: MetricPoint[], steps: number): { loss: number; gradNormRel: number; validation: number } {
  assert.equal(ext.length, steps);
  let loss = 0;
  let gradNormRel = 0;
  let validation = 0;
  for (let i = 0; i < steps; i++) {
    const a = studio[i];
    const b = ext[i];
    assert.equal(b.step, a.step);
    assert.equal(b.tokens, a.tokens, `step ${a.step}: the same target tokens`);
    assert.ok(Math.abs(b.learningRate - a.learningRate) <= 1e-12 * Math.max(1, a.learningRate), `step ${a.step}: lr ${b.learningRate} vs ${a.learningRate}`);
    loss = Math.max(loss, Math.abs(b.loss - a.loss));
    gradNormRel = Math.max(gradNormRel, Math.abs(b.gradNorm - a.gradNorm) / a.gradNorm);
    if (a.validationLoss !== undefined && b.validationLoss !== undefined) validation = Math.max(validation, Math.abs(b.validationLoss - a.validationLoss));
  }
  return { loss, gradNormRel, validation };
}

let studioPoints: MetricPoint[] = [];
let studioAdapterDir = '';

test('export-bundle run.json --out: the bundle holds the studio-prepared data, step plan, initial adapter, configs and pinned requirements', () => {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/lora-studio.mjs'), 'export-bundle', runJson, '--out', bundle, '--json'], {
    encoding: 'utf8',
    env: { ...process.env, LORA_STUDIO_FROM_SOURCE: '1', LORA_STUDIO_HOME: join(dir, 'home') },
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { path: string; steps: number; files: string[]; modelIncluded: boolean; trainExamples: number };
  assert.equal(summary.path, bundle);
  assert.equal(summary.steps, 8);
  assert.ok(summary.modelIncluded, 'the small sample model travels inside the bundle');
  for (const f of ['train.py', 'bundle.json', 'run.json', 'README.md', 'slurm.sbatch', 'requirements.txt', 'requirements-deepspeed.txt', 'data/train.jsonl', 'data/validation.jsonl', 'data/plan.jsonl', 'initial_adapter/adapter_model.safetensors', 'accelerate/single-gpu.yaml', 'accelerate/multi-gpu.yaml', 'accelerate/deepspeed-zero2.yaml', 'accelerate/deepspeed-zero2.json', 'accelerate/fsdp.yaml', 'model/model.safetensors']) {
    assert.ok(summary.files.includes(f), `${f} is in the bundle`);
  }
  const b = JSON.parse(readFileSync(join(bundle, 'bundle.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  assert.deepEqual(b.lora, { r: 4, alpha: 8, dropout: 0.1, targets: ['q_proj', 'v_proj', 'down_proj'], rslora: true });
  assert.deepEqual(b.optim, { learningRate: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 0.5 });
  assert.deepEqual(b.schedule, { kind: 'cosine', warmupSteps: 2, totalSteps: 8 });
  assert.equal(b.data.packing, true);
  // The plan: 8 steps of 2 micro-batches of 3 rows, each with one dropout seed per layer.
  const plan = readFileSync(join(bundle, 'data/plan.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { micro: { examples: number[]; dropoutSeeds: number[] }[] });
  assert.equal(plan.length, 8);
  for (const s of plan) {
    assert.equal(s.micro.length, 2);
    for (const m of s.micro) {
      assert.equal(m.examples.length, 3);
      assert.equal(m.dropoutSeeds.length, 2);
    }
  }
  // The initial adapter is the trainer's: newLora on the init stream of the seed.
  const model = loadModel(sample.modelDir, { dtype: Float32Array });
  const initial = loadAdapter(join(bundle, 'initial_adapter'), model.config);
  const expected = newLora(model.config, { r: 4, alpha: 8, dropout: 0.1, targets: ['q_proj', 'v_proj', 'down_proj'], rslora: true }, new Rng(7 + INIT_STREAM), Float32Array);
  assert.deepEqual(Array.from(initial.layers[1].down_proj?.A ?? []), Array.from(expected.layers[1].down_proj?.A ?? []));
  // The bundle pins exactly what this test trains it with (tests/python/requirements.txt).
  const pins = (file: string): string[] => readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => /^[\w-]+==/.test(l));
  const reference = new Set(pins(join(repoRoot, 'tests/python/requirements.txt')));
  for (const p of [...pins(join(bundle, 'requirements.txt')), ...pins(join(bundle, 'requirements-deepspeed.txt'))]) assert.ok(reference.has(p), `${p} is the version the tests use`);
  assert.ok(pins(join(bundle, 'requirements.txt')).some((p) => p.startsWith('accelerate==')));
  assert.ok(pins(join(bundle, 'requirements-deepspeed.txt')).some((p) => p.startsWith('deepspeed==')));
});

test('the studio trains the same config (the reference curve)', async () => {
  const events: EngineEvent[] = [];
  await runTraining({ type: 'train', runId: 'studio', config, runDir: join(dir, 'studio-run'), resume: false }, { post: (e) => events.push(e), shouldStop: () => null });
  const err = events.find((e) => e.type === 'error');
  assert.equal(err, undefined, JSON.stringify(err));
  studioPoints = events.flatMap((e) => (e.type === 'metric' ? [e.point] : []));
  assert.equal(studioPoints.length, 8);
  const done = events.find((e) => e.type === 'done');
  assert.ok(done && done.type === 'done');
  studioAdapterDir = done.adapterDir;
});

test('accelerate, 2 processes (gloo), studio dropout masks: the same curve as the studio', async () => {
  const out = join(bundle, 'out-ddp');
  const log = await launch(['--multi_gpu', '--mixed_precision', 'no'], ['--dropout', 'studio', '--output', out]);
  const status = readStatus(out);
  assert.equal(status.state, 'completed', log.slice(-3000));
  assert.equal(status.worldSize, 2, 'two processes trained it');
  assert.equal(status.distributedType, 'MULTI_CPU');
  const ext = readMetrics(out);
  // Step 1: the same examples, the same loss, and (B = 0, so the loss does not see A) the same gradient norm, which
  // does depend on the initial A: the step starts from the studio's initial adapter.
  assert.ok(Math.abs(ext[0].loss - studioPoints[0].loss) <= 1e-5, `first-step loss ${ext[0].loss} vs the studio's ${studioPoints[0].loss}`);
  assert.ok(Math.abs(ext[0].gradNorm - studioPoints[0].gradNorm) <= 1e-5 * studioPoints[0].gradNorm, `first-step grad norm ${ext[0].gradNorm} vs ${studioPoints[0].gradNorm}`);
  const d = compareCurves(studioPoints, ext, 8);
  measured['ddp first-step |Δloss|'] = Math.abs(ext[0].loss - studioPoints[0].loss);
  measured['ddp max |Δloss| over 8 steps'] = d.loss;
  measured['ddp max rel Δ grad norm'] = d.gradNormRel;
  measured['ddp max |Δ validation loss|'] = d.validation;
  assert.ok(d.loss <= 1e-5, `loss curves agree to 1e-5 (max |Δ| ${d.loss})`);
  assert.ok(d.gradNormRel <= 1e-4, `grad norms agree to 1e-4 relative (max ${d.gradNormRel})`);
  assert.ok(d.validation <= 1e-5, `validation losses agree to 1e-5 (max |Δ| ${d.validation})`);
  assert.equal(ext.filter((p) => p.validationLoss !== undefined).length, 2, 'validation at steps 4 and 8, as the studio');

  // The final adapters: the same weights, up to float rounding.
  const a = SafetensorsFile.open(join(studioAdapterDir, 'adapter_model.safetensors'));
  const b = SafetensorsFile.open(join(out, 'adapter', 'adapter_model.safetensors'));
  let maxDiff = 0;
  try {
    assert.deepEqual(b.names().sort(), a.names().sort());
    for (const k of a.names()) {
      const x = a.readFloat(k);
      const y = b.readFloat(k);
      for (let i = 0; i < x.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x[i] - y[i]));
    }
  } finally {
    a.close();
    b.close();
  }
  measured['ddp max |Δ adapter weight|'] = maxDiff;
  assert.ok(maxDiff <= 1e-5, `adapter weights agree (max |Δ| ${maxDiff})`);
});

test("the imported adapter's eval loss in the studio equals transformers + PEFT's", () => {
  const out = join(bundle, 'out-ddp');
  const store = new AdapterStore(openHome(join(dir, 'home')));
  const { adapter, warnings } = importAdapter(store, { path: join(out, 'adapter'), modelPath: sample.modelDir });
  assert.deepEqual(warnings, []);
  assert.equal(adapter.baseModel, sample.modelDir, 'the copy points at the base model on this machine');
  assert.deepEqual(adapter.targets.sort(), ['down_proj', 'q_proj', 'v_proj']);
  const model = loadModel(sample.modelDir, { dtype: Float32Array });
  const lora = loadAdapter(adapter.path, model.config);
  assert.equal(lora.config.rslora, true);
  const validation = readRows(join(bundle, 'data/validation.jsonl'));
  let sum = 0;
  let tokens = 0;
  for (const batch of sequentialBatches(validation, 3, 0)) {
    const r = evalLoss(model, lora, batch);
    sum += r.sumLoss;
    tokens += r.tokens;
  }
  const studio = sum / tokens;
  const peft = JSON.parse(runPython('bundle_eval.py', [sample.modelDir, adapter.path, join(bundle, 'data/validation.jsonl'), '3'])) as { loss: number; tokens: number };
  const reported = readStatus(out).finalValidationLoss as number;
  measured['imported adapter: |studio eval − PEFT eval|'] = Math.abs(studio - peft.loss);
  assert.equal(peft.tokens, tokens);
  assert.ok(Math.abs(studio - peft.loss) <= 1e-5, `studio ${studio} vs transformers + PEFT ${peft.loss}`);
  assert.ok(Math.abs(reported - peft.loss) <= 1e-5, `what train.py reported (${reported}) is that loss`);
});

test('DeepSpeed ZeRO-2 (2 processes, gloo): accelerate accepts the config and trains the same curve', async () => {
  const out = join(bundle, 'out-zero2');
  const log = await launch(['--config_file', 'accelerate/deepspeed-zero2.yaml'], ['--dropout', 'studio', '--max-steps', '4', '--output', out], 420_000);
  const status = readStatus(out);
  assert.equal(status.state, 'completed', log.slice(-3000));
  assert.equal(status.distributedType, 'DEEPSPEED');
  assert.equal(status.zeroStage, 2);
  assert.equal(status.worldSize, 2);
  const d = compareCurves(studioPoints, readMetrics(out), 4);
  measured['zero2 max |Δloss| over 4 steps'] = d.loss;
  measured['zero2 max rel Δ grad norm'] = d.gradNormRel;
  assert.ok(d.loss <= 1e-5, `loss curves agree to 1e-5 (max |Δ| ${d.loss})`);
  assert.ok(d.gradNormRel <= 1e-4, `grad norms (DeepSpeed's own) agree to 1e-4 relative (max ${d.gradNormRel})`);
  assert.ok(existsSync(join(out, 'adapter', 'adapter_model.safetensors')));
});

test("PEFT's own dropout (the default): the same data and init, masks of its own; distance measured", async () => {
  const out = join(bundle, 'out-torch-dropout');
  await launch(['--multi_gpu', '--mixed_precision', 'no'], ['--max-steps', '4', '--output', out]);
  const ext = readMetrics(out);
  assert.equal(readStatus(out).dropoutMasks, 'torch');
  // B = 0 at step 1 and the warmup rate of step 1 is 0: the first two losses cannot see the masks.
  assert.ok(Math.abs(ext[0].loss - studioPoints[0].loss) <= 1e-5);
  assert.ok(Math.abs(ext[1].loss - studioPoints[1].loss) <= 1e-5);
  let worst = 0;
  for (let i = 2; i < 4; i++) worst = Math.max(worst, Math.abs(ext[i].loss - studioPoints[i].loss) / studioPoints[i].loss);
  measured['torch-dropout max relative Δloss, steps 3-4'] = worst;
  assert.ok(worst > 0 && worst < 5e-3, `other masks move the loss a little, not a lot (max relative Δ ${worst})`);
});

test('accelerate reads every launch configuration (one GPU, DDP, ZeRO-2, FSDP) and DeepSpeed validates its JSON', () => {
  // DeepSpeed logs to stdout on import: the answer is the last line.
  const r = JSON.parse(runPython('accelerate_config_check.py', [bundle]).trim().split('\n').pop() ?? '') as Record<string, { distributed_type?: string; fsdp_config?: Record<string, unknown> }> & {
    deepspeed: { zero_stage: number; gradient_accumulation_steps: number; gradient_clipping: number; validated: { zero_stage: number } };
  };
  assert.equal(r['single-gpu.yaml'].distributed_type, 'NO');
  assert.equal(r['multi-gpu.yaml'].distributed_type, 'MULTI_GPU');
  assert.equal(r['deepspeed-zero2.yaml'].distributed_type, 'DEEPSPEED');
  assert.equal(r['fsdp.yaml'].distributed_type, 'FSDP');
  assert.equal(r['fsdp.yaml'].fsdp_config?.fsdp_transformer_layer_cls_to_wrap, 'LlamaDecoderLayer');
  assert.equal(r.deepspeed.zero_stage, 2);
  assert.equal(r.deepspeed.validated.zero_stage, 2);
  assert.equal(r.deepspeed.gradient_accumulation_steps, 2);
  assert.equal(r.deepspeed.gradient_clipping, 0.5);
  console.log(`bundle agreement with the studio: ${JSON.stringify(measured, null, 2)}`);
});
