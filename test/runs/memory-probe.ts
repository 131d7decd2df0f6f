/**
 * Child process of memory-estimate.test.ts: builds a model of the given shape, takes one real training step, and
 * prints the peak resident memory it added (maxRSS after the step − RSS before anything was allocated) as JSON.
 * Run with --expose-gc so the baseline is measured on a collected heap.
 */
import { RunConfigSchema, type RunConfigInput } from '../../common/protocol.ts';
import { countParameters } from '../../engine/model/llama.ts';
import { trainerSettings } from '../../engine/train/run-config.ts';
import { Trainer } from '../../engine/train/trainer.ts';
import type { TrainingExample } from '../../engine/model/types.ts';
import { tinyWeights, type TinyOptions } from '../helpers/tiny-weights.ts';

export interface ProbeShape {
  model: Omit<TinyOptions, 'ArrayCtor' | 'family'>;
  run: Pick<RunConfigInput, 'lora' | 'train'>;
  /** Examples in the training set, each maxSeqLen tokens long. */
  examples: number;
  /** Train on only the last this many tokens of each example (the rest have label −100); default all. */
  trainedTokens?: number;
}

const shape = JSON.parse(process.argv[2] ?? '') as ProbeShape;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('memory-probe: run with --expose-gc');
const config = RunConfigSchema.parse({ modelPath: 'x', datasetPath: 'y', ...shape.run });
const settings = trainerSettings(config);
const T = config.train.maxSeqLen;
const vocab = shape.model.vocab ?? 23;

await new Promise((r) => setTimeout(r, 50));
const before = process.memoryUsage();
const base = before.rss;
const peakBefore = process.resourceUsage().maxRSS * 1024;

const model = tinyWeights({ family: 'llama', ...shape.model, ArrayCtor: Float32Array, seed: 7 });
const train: TrainingExample[] = [];
for (let e = 0; e < shape.examples; e++) {
  const ids: number[] = [];
  for (let t = 0; t < T; t++) ids.push(1 + ((e * 31 + t * 7) % (vocab - 1)));
  const keep = shape.trainedTokens ?? T;
  train.push({ inputIds: ids, labels: ids.map((id, t) => (t >= T - keep ? id : -100)) });
}
const trainer = new Trainer({ model, settings, train, validation: [], padTokenId: 0 }, countParameters(model));
const point = trainer.trainStep();
const peak = process.resourceUsage().maxRSS * 1024;
const after = process.memoryUsage();
process.stdout.write(`${JSON.stringify({ base, peakBefore, peak, added: peak - base, heapBefore: before.heapTotal, heapAfter: after.heapTotal, loss: point.loss })}\n`);
