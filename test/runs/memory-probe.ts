/**
 * Child process of memory-estimate.test.ts: builds a model of the given shape, takes a few real training steps,
 * and prints the peak resident memory they added (maxRSS after the steps − RSS before anything was allocated).
 * The peak settles after two or three steps: the cpu engine allocates each step's activations afresh and V8 frees
 * the previous step's only at its next full collection.
 */
import { RunConfigSchema, type RunConfigInput } from '../../common/protocol.ts';
import { countParameters } from '../../engine/model/llama.ts';
import type { TrainingExample } from '../../engine/model/types.ts';
import { trainerSettings } from '../../engine/train/run-config.ts';
import { Trainer } from '../../engine/train/trainer.ts';
import { tinyWeights, type TinyOptions } from '../helpers/tiny-weights.ts';

export interface ProbeShape {
  model: Omit<TinyOptions, 'ArrayCtor' | 'family' | 'seed'>;
  run: Pick<RunConfigInput, 'lora' | 'train'>;
  /** Examples in the training set, each maxSeqLen tokens long. */
  examples: number;
  /** Train on only the last this many tokens of each example (the rest have label −100); default all. */
  trainedTokens?: number;
  steps: number;
}

export interface ProbeResult {
  /** Bytes the model, the trainer and `steps` steps added at their peak. */
  added: number;
  /** Bytes resident after the weights were built (minus the baseline). */
  weights: number;
  losses: number[];
}

const shape = JSON.parse(process.argv[2] ?? '') as ProbeShape;
const config = RunConfigSchema.parse({ modelPath: 'model', datasetPath: 'data', ...shape.run });
const settings = trainerSettings(config);
const T = config.train.maxSeqLen;
const vocab = shape.model.vocab ?? 23;
const trained = shape.trainedTokens ?? T;

await new Promise((r) => setTimeout(r, 50));
const base = process.memoryUsage().rss;

const model = tinyWeights({ family: 'llama', ...shape.model, ArrayCtor: Float32Array, seed: 7 });
const weights = process.memoryUsage().rss - base;
const train: TrainingExample[] = [];
for (let e = 0; e < shape.examples; e++) {
  const ids: number[] = [];
  for (let t = 0; t < T; t++) ids.push(1 + ((e * 31 + t * 7) % (vocab - 1)));
  train.push({ inputIds: ids, labels: ids.map((id, t) => (t >= T - trained ? id : -100)) });
}
const trainer = new Trainer({ model, settings, train, validation: [], padTokenId: 0 }, countParameters(model));
const losses: number[] = [];
for (let s = 0; s < shape.steps; s++) losses.push((await trainer.trainStep()).loss);
const result: ProbeResult = { added: process.resourceUsage().maxRSS * 1024 - base, weights, losses };
process.stdout.write(`${JSON.stringify(result)}\n`);
