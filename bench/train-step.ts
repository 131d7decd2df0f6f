/**
 * One training benchmark case (run by bench.ts in a child process): load a random-weight model of a real shape,
 * run `steps` LoRA training steps (forward + backward + AdamW) and print one JSON row with tokens/s, step time, peak
 * memory (peakRssMiB on cpu, peakGpuMiB on webgpu) and MFU (bench/flops.ts; needs a peak: --peak-tflops or
 * --peak-gflops, or a GPU that the peak table knows). The first step is a warm-up and is not timed.
 * bench/peft_reference.py prints the same keys for PyTorch + PEFT.
 *
 * `--base <format>` (cpu): QLoRA — the seven Linears of every layer are quantized at load to a packed format (q8_0,
 * q4_0, q4_1, nf4, int4-g128: the ones the studio can quantize random weights to) and trained on as PackedWeights,
 * loaded as a run with train.baseWeights = <format> is (embeddings and lm_head as f16, norms f32). The row adds `weightsMiB` (the frozen
 * weights' own bytes) and `trainRssMiB` (the largest RSS seen after a step, once loading is over: the f16 file is
 * read before quantizing, so the lifetime peakRssMiB includes that transient).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuBackendInfo, cpuSharedMemoryWanted } from '../engine/backend/cpu/cpu-ops.ts';
import { loadModel } from '../engine/io/model-source.ts';
import type { LinearWeight } from '../engine/model/types.ts';
import { weightBytes } from '../engine/model/weight-array.ts';
import { isPackedFormat, type PackedFormat } from '../engine/quant/packed-weight.ts';
import { newLora, forEachPair } from '../engine/model/lora.ts';
import { countParameters } from '../engine/model/llama.ts';
import type { Batch, FloatArray, LoraConfig } from '../engine/model/types.ts';
import { AdamW } from '../engine/train/adamw.ts';
import { CpuStepBackend } from '../engine/train/cpu-trainer-backend.ts';
import { trainerSettings } from '../engine/train/run-config.ts';
import { RunConfigSchema } from '../common/protocol.ts';
import { Rng } from '../engine/util/rng.ts';
import { ALL_TARGETS, flopShapeFromHf, mfu, peakTflopsFor, trainingFlops } from './flops.ts';
import { SHAPES, type ShapeName } from './shapes.ts';
import type { BaseWeights } from '../common/protocol.ts';
import { estimateTrainingMemory } from '../engine/train/memory-estimate.ts';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'cpu' },
    shape: { type: 'string', default: 'tiny' },
    seq: { type: 'string', default: '128' },
    batch: { type: 'string', default: '1' },
    steps: { type: 'string', default: '3' },
    precision: { type: 'string', default: 'fp32' },
    checkpointing: { type: 'boolean', default: false },
    'peak-tflops': { type: 'string' },
    'peak-gflops': { type: 'string' },
    'make-only': { type: 'boolean', default: false },
    base: { type: 'string', default: 'f32' },
    gguf: { type: 'string' },
  },
});
const baseFormat = values.base ?? 'f32';
const QUANTIZABLE: PackedFormat[] = ['q8_0', 'q4_0', 'q4_1', 'nf4', 'int4-g128'];
if (baseFormat !== 'f32' && !(isPackedFormat(baseFormat) && QUANTIZABLE.includes(baseFormat))) {
  throw new Error(`--base must be f32 or one of ${QUANTIZABLE.join(', ')} (random weights are quantized at load; q4_k and q6_k bases come from a GGUF stored that way), not ${baseFormat}`);
}
const shape = values.shape as ShapeName;
if (!(shape in SHAPES)) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(', ')}, not ${shape}`);
const spec = SHAPES[shape];
// --gguf FILE (cpu): a real model's weights instead of the shape's random ones (its shape must be --shape's, for
// the FLOP count); read as the studio reads a GGUF, dequantized to f32 (or as --base says).
const gguf = values.gguf;
if (gguf !== undefined && !existsSync(gguf)) throw new Error(`--gguf ${gguf}: no such file`);
const dir = gguf ?? join(tmpdir(), 'lora-studio-bench', shape);
const precision = values.precision;
if (precision !== 'fp32' && precision !== 'fp16') throw new Error(`--precision must be fp32 or fp16, not ${precision}`);
const B = positiveInt('batch');
const T = positiveInt('seq');
const steps = Math.max(2, positiveInt('steps'));
const LORA: LoraConfig = { r: 8, alpha: 16, dropout: 0, targets: [...ALL_TARGETS], rslora: false };
const flops = trainingFlops(flopShapeFromHf(spec.hf), LORA, B, T);
const envTflops = Number(process.env.LORA_STUDIO_PEAK_TFLOPS);
const peakOverride =
  values['peak-tflops'] !== undefined
    ? positiveNumber('peak-tflops') * 1e12
    : values['peak-gflops'] !== undefined
      ? positiveNumber('peak-gflops') * 1e9
      : envTflops > 0
        ? envTflops * 1e12
        : null;

function positiveInt(flag: 'batch' | 'seq' | 'steps'): number {
  const v = Number(values[flag]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${flag} must be a positive integer, not ${values[flag]}`);
  return v;
}
function positiveNumber(flag: 'peak-tflops' | 'peak-gflops'): number {
  const v = Number(values[flag]);
  if (!(v > 0)) throw new Error(`--${flag} must be a positive number, not ${values[flag]}`);
  return v;
}

/** The figures every backend reports the same way, computed here so that they cannot drift between backends. */
function common(stepMs: number, peakFlops: number | null): Record<string, number | null> {
  return {
    stepMs,
    tokensPerSecond: ((B * T) / stepMs) * 1000,
    flopsPerStep: flops.total,
    trainableParams: flops.loraParams,
    peakTflops: peakFlops === null ? null : peakFlops / 1e12,
    mfu: mfu(flops.total, stepMs, peakFlops),
  };
}

if (values['make-only']) {
  const { writeRandomModel } = await import('../engine/io/make-model.ts');
  writeRandomModel(dir, spec.hf, { seed: 1, dtype: 'F16' });
  process.exit(0);
}

if (values.backend === 'webgpu') {
  // The webgpu bench generates its random weights on the device (llama-weights.ts, source 'random'): writing 13 GB of
  // Llama-2-7B weights from JavaScript first would take minutes. It gets the config.json only.
  if (!existsSync(join(dir, 'config.json'))) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(spec.hf, null, 2) + '\n');
  }
  const { benchWebgpu } = await import('./webgpu-bench.ts');
  // benchWebgpu's `steps` are the timed ones after its own warm-up; here, as on cpu and in peft_reference.py,
  // --steps counts the warm-up too.
  const r = await benchWebgpu({ shape, seq: T, batch: B, steps: steps - 1, precision, checkpointing: values.checkpointing ?? false, modelDir: dir });
  const tableTflops = peakTflopsFor(r.adapter, precision);
  const peakFlops = peakOverride ?? (tableTflops === null ? null : tableTflops * 1e12);
  const { flopsPerStep: _f, peakTflops: _p, mfu: _mfu, peakGpuGiB: _gib, ...rest } = r;
  console.log(
    JSON.stringify({
      bench: 'train',
      backend: 'webgpu',
      shape,
      ...rest,
      steps,
      ...common(r.stepMs, peakFlops),
      peakGpuMiB: r.peakGpuBytes / 2 ** 20,
      estimatedGpuMiB: r.estimatedGpuBytes / 2 ** 20,
    }),
  );
  process.exit(0);
}
if (values.backend !== 'cpu') throw new Error(`--backend must be cpu or webgpu, not ${values.backend}`);
if (precision !== 'fp32') throw new Error('the cpu backend trains in fp32 only');
if (!gguf && (!existsSync(join(dir, 'config.json')) || !existsSync(join(dir, 'model.safetensors')))) {
  // Made in its own process so the generator's memory does not count in this case's peak RSS.
  const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1], '--shape', shape, '--make-only'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`could not make the ${shape} model in ${dir}`);
}

// A packed base through the studio's own loader (engine/io/base-weights.ts): each Linear quantized at load as it is
// read, embed_tokens and lm_head held q8_0 — what a run with train.baseWeights = <format> holds.
// The process before the model: Node, tsx's compiled modules, the native addon and its threads (the estimate counts
// what the run adds on top of this).
cpuBackendInfo();
const baselineRss = process.memoryUsage.rss();
const model = loadModel(dir, { dtype: Float32Array, shared: cpuSharedMemoryWanted(), baseWeights: baseFormat as BaseWeights });
const cfg = model.config;
const want = spec.hf as Record<string, unknown>;
if (gguf && (cfg.hiddenSize !== want.hidden_size || cfg.numLayers !== want.num_hidden_layers || cfg.vocabSize !== want.vocab_size)) {
  throw new Error(`--gguf ${gguf} is not the ${shape} shape (hidden ${cfg.hiddenSize}, ${cfg.numLayers} layers, vocab ${cfg.vocabSize}); pass the --shape it has`);
}
const weightsMiB = (() => {
  const seen = new Set<LinearWeight>([model.embedTokens, model.lmHead, model.norm]);
  for (const L of model.layers) for (const a of [L.inputNorm, L.postAttentionNorm, L.qNorm, L.kNorm, ...[L.q, L.k, L.v, L.o, L.gate, L.up, L.down].flatMap((l) => [l.weight, l.bias])]) if (a) seen.add(a);
  let n = 0;
  for (const a of seen) n += weightBytes(a);
  return n / 2 ** 20;
})();
const lora = newLora(cfg, LORA, new Rng(1), Float32Array);
const params: FloatArray[] = [];
forEachPair(lora, (_t, _l, p) => params.push(p.A, p.B));
const opt = new AdamW(params, {});
// The training run's own step: CpuStepBackend (the kernels, unscale, clip at 1.0, AdamW), as the Trainer calls it.
const settings = trainerSettings(
  RunConfigSchema.parse({
    modelPath: dir,
    datasetPath: 'bench',
    lora: { r: LORA.r, alpha: LORA.alpha, dropout: 0, targets: LORA.targets },
    train: { learningRate: 1e-4, steps, maxGradNorm: 1, gradientCheckpointing: values.checkpointing ?? false, batchSize: B, maxSeqLen: Math.max(8, T) },
  }),
);
const backend = new CpuStepBackend(model, lora, opt, settings);

const rng = new Rng(2);
const inputIds = new Int32Array(B * T).map(() => rng.int(cfg.vocabSize));
const batch: Batch = { batchSize: B, seqLen: T, inputIds, labels: inputIds.slice() };
const plan = { micro: [batch], normalizer: B * (T - 1), lr: 1e-4, lossScale: 1 };

const times: number[] = [];
let loss = 0;
let trainRss = 0;
const dropoutRng = new Rng(3);
for (let s = 0; s < steps; s++) {
  const t0 = performance.now();
  const r = await backend.step(plan, dropoutRng);
  loss = r.lossSum / plan.normalizer;
  if (s > 0) times.push(performance.now() - t0);
  trainRss = Math.max(trainRss, process.memoryUsage.rss());
}
const stepMs = times.reduce((a, b) => a + b, 0) / times.length;
const cpu = cpuBackendInfo();
// The studio's own estimate of this run (what the Train form shows), to set beside the measured RSS.
const estimate = estimateTrainingMemory(
  cfg,
  { lora: { r: LORA.r, targets: LORA.targets, dropout: 0 }, train: { batchSize: B, maxSeqLen: T, gradientCheckpointing: values.checkpointing ?? false, precision, baseWeights: baseFormat as BaseWeights } },
  { backend: 'cpu', threads: cpu.threads, kernels: cpu.native ? 'native' : 'portable' },
);
console.log(
  JSON.stringify({
    bench: 'train',
    backend: 'cpu',
    shape,
    base: baseFormat,
    params: countParameters(model),
    batch: B,
    seq: T,
    steps,
    precision,
    checkpointing: values.checkpointing ?? false,
    ...common(stepMs, peakOverride),
    loss,
    kernels: cpu.native ? `native ${cpu.isa}` : 'portable',
    threads: cpu.threads,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    trainRssMiB: trainRss / 2 ** 20,
    baselineRssMiB: baselineRss / 2 ** 20,
    estimatedMiB: estimate.total / 2 ** 20,
    // (baseline + the studio's estimate) against the RSS measured during training.
    estimateVsRss: (baselineRss + estimate.total) / trainRss,
    weightsMiB,
  }),
);
