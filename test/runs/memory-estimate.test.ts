/**
 * The memory estimate against reality: parameter counts against the engine's own model and LoRA objects, and the
 * estimated peak of a step against the peak RSS a child process really reaches training that shape on the cpu
 * backend (within 10 %). The child runs with --single-threaded-gc so V8 frees memory at the same points every run
 * (concurrent sweeping only frees it sooner).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { RunConfigSchema } from '../../common/protocol.ts';
import { countParameters } from '../../engine/model/llama.ts';
import { loraParameterCount, newLora } from '../../engine/model/lora.ts';
import { trainerSettings } from '../../engine/train/run-config.ts';
import { cpuBackendInfo } from '../../engine/backend/cpu/cpu-ops.ts';
import { baseParameterCount, estimateTrainingMemory, formatBytes, loraParameterCountFor } from '../../engine/train/memory-estimate.ts';
import { Rng } from '../../engine/util/rng.ts';
import { tinyConfig, tinyWeights } from '../helpers/tiny-weights.ts';
import type { ProbeResult, ProbeShape } from './memory-probe.ts';

const run = promisify(execFile);
const probe = fileURLToPath(new URL('./memory-probe.ts', import.meta.url));

async function measure(shape: ProbeShape): Promise<ProbeResult> {
  const { stdout } = await run(process.execPath, ['--single-threaded-gc', '--import', 'tsx', probe, JSON.stringify(shape)], { maxBuffer: 1 << 20, timeout: 120_000 });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '') as ProbeResult;
}

function estimateFor(shape: ProbeShape) {
  const config = RunConfigSchema.parse({ modelPath: 'model', datasetPath: 'data', ...shape.run });
  // The probe trains on the kernels this process would use (same environment): the estimate is asked for those.
  return estimateTrainingMemory(tinyConfig({ family: 'llama', ...shape.model }), config, { datasetTokens: shape.examples * config.train.maxSeqLen, kernels: cpuBackendInfo().native ? 'native' : 'portable' });
}

describe('parameter counts match the engine', () => {
  for (const family of ['llama', 'qwen2', 'qwen3'] as const) {
    for (const tie of [false, true]) {
      test(`${family}${tie ? ' tied' : ''}: base and LoRA parameters`, () => {
        const o = { family, vocab: 97, hidden: 24, intermediate: 40, layers: 3, heads: 4, kvHeads: 2, tie, ArrayCtor: Float32Array };
        const model = tinyWeights(o);
        assert.equal(baseParameterCount(model.config), countParameters(model));
        const lora = { r: 5, alpha: 10, dropout: 0, targets: ['q_proj', 'k_proj', 'o_proj', 'down_proj'] as const, rslora: false };
        const weights = newLora(model.config, { ...lora, targets: [...lora.targets] }, new Rng(1), Float32Array);
        assert.equal(loraParameterCountFor(model.config, lora), loraParameterCount(weights));
      });
    }
  }
});

describe('the estimate follows the settings', () => {
  const cfg = tinyConfig({ family: 'llama', vocab: 32000, hidden: 512, intermediate: 1376, layers: 8, heads: 8, kvHeads: 4 });
  const base = RunConfigSchema.parse({ modelPath: 'm', datasetPath: 'd', lora: { r: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'v_proj'] }, train: { learningRate: 1e-3, steps: 1, batchSize: 4, maxSeqLen: 512 } });

  test('optimizer = 2 × LoRA = 2 × gradients (fp32 moments)', () => {
    const e = estimateTrainingMemory(cfg, base);
    assert.equal(e.lora, e.parameters.trainable * 4);
    assert.equal(e.gradients, e.lora);
    assert.equal(e.optimizer, 2 * e.lora);
    assert.equal(e.total, e.weights + e.lora + e.gradients + e.optimizer + e.data + e.activations);
  });

  test('checkpointing keeps one layer of activations instead of all', () => {
    const e = estimateTrainingMemory(cfg, base);
    assert.ok(e.activationsWithCheckpointing < e.activationsWithoutCheckpointing);
    assert.equal(e.activations, e.activationsWithoutCheckpointing);
    const ck = estimateTrainingMemory(cfg, { ...base, train: { ...base.train, gradientCheckpointing: true } });
    assert.equal(ck.activations, ck.activationsWithCheckpointing);
    // Each extra layer costs a full layer of activations without checkpointing and only its residual with it.
    const deeper = estimateTrainingMemory({ ...cfg, numLayers: 9 }, base);
    const perLayerWithout = deeper.activationsWithoutCheckpointing - e.activationsWithoutCheckpointing;
    const perLayerWith = deeper.activationsWithCheckpointing - e.activationsWithCheckpointing;
    assert.equal(perLayerWith, 4 * 4 * 512 * 512); // one more [B·T, H] fp32 residual
    assert.ok(perLayerWithout > 10 * perLayerWith);
  });

  test('the logits chunk stays near 16 MiB whatever the vocabulary', () => {
    for (const vocab of [32000, 128256, 151936]) {
      const e = estimateTrainingMemory({ ...cfg, vocabSize: vocab }, base);
      assert.ok(e.logitsChunk <= 16 * 2 ** 20 + 2 * 64 * 512 * 8, `${vocab}: ${formatBytes(e.logitsChunk)}`);
      assert.ok(e.logitsChunk >= 15 * 2 ** 20, `${vocab}: ${formatBytes(e.logitsChunk)}`);
    }
  });

  test('webgpu with fp16 halves weights and activations, not the fp32 LoRA state', () => {
    const cpu = estimateTrainingMemory(cfg, base, { backend: 'cpu' });
    const gpu = estimateTrainingMemory(cfg, { ...base, train: { ...base.train, precision: 'fp16' } }, { backend: 'webgpu' });
    assert.ok(Math.abs(gpu.weights - cpu.weights / 2) < cpu.weights * 0.01);
    assert.equal(gpu.optimizer, cpu.optimizer);
    assert.ok(gpu.activations < cpu.activations * 0.6);
  });

  test('bad settings are refused naming the field', () => {
    assert.throws(() => estimateTrainingMemory(cfg, { ...base, train: { ...base.train, batchSize: 0 } }), /train\.batchSize/);
    assert.throws(() => estimateTrainingMemory(cfg, { ...base, lora: { ...base.lora, r: 1.5 } }), /lora\.r/);
  });

  test('trainer settings of a real RunConfig are accepted as they are', () => {
    const s = trainerSettings(base);
    assert.equal(estimateTrainingMemory(cfg, base).parameters.trainable, loraParameterCountFor(cfg, s.lora));
  });
});

describe('the estimate is within 10 % of the measured peak RSS (cpu)', () => {
  const shapes: Record<string, ProbeShape> = {
    // Activations dominate: 32 layers, dropout on every target (masks and dropped inputs kept), no checkpointing.
    'activations, no checkpointing': {
      model: { vocab: 512, hidden: 16, intermediate: 64, layers: 32, heads: 2, kvHeads: 1 },
      run: { lora: { r: 4, alpha: 8, dropout: 0.1, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }, train: { learningRate: 1e-3, steps: 3, batchSize: 64, maxSeqLen: 64 } },
      examples: 128,
      steps: 5,
    },
    // A large vocabulary (weights and the cross-entropy chunk), gradient checkpointing, rank 16 on every target.
    'large vocabulary, checkpointing': {
      model: { vocab: 640_000, hidden: 32, intermediate: 64, layers: 4, heads: 4, kvHeads: 2 },
      run: { lora: { r: 16, alpha: 16, dropout: 0.1, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }, train: { learningRate: 1e-3, steps: 3, batchSize: 16, maxSeqLen: 128, gradientCheckpointing: true } },
      examples: 32,
      trainedTokens: 1,
      steps: 3,
    },
  };
  for (const [name, shape] of Object.entries(shapes)) {
    test(name, async (t) => {
      const e = estimateFor(shape);
      let m = await measure(shape);
      // V8 frees dead activation buffers lazily, and on a loaded machine its timers fire at other points of the
      // program, so a measurement can only come out too high (garbage still resident), never too low. When the
      // first one misses, measure up to twice more and keep the smallest peak.
      for (let retry = 0; retry < 2 && !(e.total / m.added > 0.9 && e.total / m.added < 1.1); retry++) {
        const again = await measure(shape);
        if (again.added < m.added) m = again;
      }
      assert.ok(m.losses.every(Number.isFinite), `the steps trained: losses ${m.losses.join(', ')}`);
      const ratio = e.total / m.added;
      const detail = `estimated ${formatBytes(e.total)} (weights ${formatBytes(e.weights)}, activations ${formatBytes(e.activations)}), measured ${formatBytes(m.added)} (weights ${formatBytes(m.weights)})`;
      t.diagnostic(`${detail}: ratio ${ratio.toFixed(3)}`);
      assert.ok(ratio > 0.9 && ratio < 1.1, `${detail}: ratio ${ratio.toFixed(3)}`);
    });
  }
});
