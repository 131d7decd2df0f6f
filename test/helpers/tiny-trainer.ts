/** The tiny model, examples and run settings shared by the trainer tests on the cpu and webgpu backends. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DEFAULT_RUN_CONFIG, validateRunConfig } from '../../common/protocol.ts';
import type { RunConfigInput } from '../../common/protocol.ts';
import { loadModel } from '../../engine/io/hf-model.ts';
import { tinyHfConfig, writeRandomModel } from '../../engine/io/make-model.ts';
import type { ModelWeights, TrainingExample } from '../../engine/model/types.ts';
import { trainerSettings, type TrainerSettings } from '../../engine/train/run-config.ts';
import { Rng } from '../../engine/util/rng.ts';

/** Writes a seeded 2-layer llama (vocab 64, hidden 16) to `dir`/model and loads it. */
export function writeTinyTrainModel(dir: string): { modelDir: string; model: ModelWeights } {
  const modelDir = join(dir, 'model');
  writeRandomModel(modelDir, tinyHfConfig('llama', { vocab_size: 64, hidden_size: 16, intermediate_size: 32, num_attention_heads: 2, num_key_value_heads: 1 }), { seed: 5, std: 0.2 });
  return { modelDir, model: loadModel(modelDir) };
}

/** n sequences of 4–12 tokens in [3, 64), each with a prompt of 0–2 unlabeled tokens. */
export function randomExamples(n: number, seed: number): TrainingExample[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const len = 4 + rng.int(9);
    const inputIds = Array.from({ length: len }, () => 3 + rng.int(61));
    const prompt = rng.int(3);
    return { inputIds, labels: inputIds.map((x, i) => (i < prompt ? -100 : x)) };
  });
}

/** Validated settings: r 4 on q/v/down, lr 1e-2, batch 3 × accumulation 2, cosine, clipping 0.5, seed 9, then `lora`/`train`. */
export function tinyTrainerSettings(modelDir: string, lora: Partial<RunConfigInput['lora']>, train: Partial<RunConfigInput['train']>): TrainerSettings {
  const v = validateRunConfig({
    ...DEFAULT_RUN_CONFIG,
    modelPath: modelDir,
    datasetPath: 'unused.jsonl',
    lora: { ...DEFAULT_RUN_CONFIG.lora, r: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj'], ...lora },
    train: {
      ...DEFAULT_RUN_CONFIG.train,
      learningRate: 1e-2,
      batchSize: 3,
      gradAccumulation: 2,
      schedule: 'cosine',
      weightDecay: 0.01,
      maxGradNorm: 0.5,
      seed: 9,
      ...train,
    },
  });
  assert.ok(v.ok, JSON.stringify(v));
  return trainerSettings(v.config);
}
