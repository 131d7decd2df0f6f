/**
 * The studio's step plan of a run, written into an exported bundle so Accelerate trains on exactly what the studio
 * would have: for every optimizer step, which training examples form each micro-batch (the trainer's BatchIterator on
 * the data stream of the seed), the step's target-token count (the gradient normaliser), its learning rate, and the
 * per-layer dropout seeds the cpu trainer draws for each micro-batch (llama.ts lossAndGrads draws one uint32 per
 * layer from the dropout stream; drawMasks then fills every target's mask, in module order, from Rng(seed)).
 */
import type { TrainingExample } from '../model/types.ts';
import { IGNORE_INDEX } from '../model/types.ts';
import { BatchIterator } from '../train/batching.ts';
import type { TrainerSettings } from '../train/run-config.ts';
import { learningRateAt } from '../train/schedule.ts';
import { DATA_STREAM, DROPOUT_STREAM } from '../train/seed-streams.ts';
import { Rng } from '../util/rng.ts';

export interface PlannedMicroBatch {
  /** Indices into the bundle's train split, in batch-row order. */
  examples: number[];
  /** The padded length of the studio's micro-batch (its longest example). */
  seqLen: number;
  /** Positions that count in the loss: labels[t] ≠ −100 for t ≥ 1, summed over the rows. */
  tokens: number;
  /** One uint32 per decoder layer: the seed of that layer's dropout masks (absent without dropout). */
  dropoutSeeds?: number[];
}

export interface PlannedStep {
  /** 1-based, as MetricPoint.step. */
  step: number;
  learningRate: number;
  /** The step's gradient normaliser: target tokens over all its micro-batches. */
  tokens: number;
  micro: PlannedMicroBatch[];
}

/** Target tokens of one example as the trainer counts them (labels are shifted inside the loss). */
export function exampleTargets(e: TrainingExample): number {
  let n = 0;
  for (let t = 1; t < e.labels.length; t++) if (e.labels[t] !== IGNORE_INDEX) n++;
  return n;
}

/**
 * Every step of the run, in order, as the cpu trainer would take them (trainer.ts planStep / cpuStep): the same
 * BatchIterator, learning-rate schedule and dropout draws. `numLayers` sizes the dropout seeds.
 */
export function* planSteps(train: readonly TrainingExample[], settings: TrainerSettings, padTokenId: number, numLayers: number): Generator<PlannedStep> {
  const index = new Map<TrainingExample, number>();
  train.forEach((e, i) => index.set(e, i));
  if (index.size !== train.length) throw new Error('planSteps: the training split holds the same example object twice');
  const batches = new BatchIterator(train, { batchSize: settings.batchSize, padTokenId, seed: settings.seed + DATA_STREAM });
  const dropoutRng = new Rng(settings.seed + DROPOUT_STREAM);
  const dropout = settings.lora.dropout > 0;
  for (let k = 0; k < settings.steps; k++) {
    const micro: PlannedMicroBatch[] = [];
    for (let m = 0; m < settings.gradAccumulation; m++) {
      const rows = batches.nextExamples();
      micro.push({
        examples: rows.map((e) => index.get(e) as number),
        seqLen: Math.max(...rows.map((e) => e.inputIds.length)),
        tokens: rows.reduce((n, e) => n + exampleTargets(e), 0),
      });
    }
    const tokens = micro.reduce((n, b) => n + b.tokens, 0);
    // The trainer runs the micro-batches (and so draws their seeds) only when the step has a token to train on.
    if (dropout && tokens > 0) for (const b of micro) b.dropoutSeeds = Array.from({ length: numLayers }, () => dropoutRng.nextU32());
    const learningRate = learningRateAt({ kind: settings.schedule, baseLr: settings.learningRate, warmupSteps: settings.warmupSteps, totalSteps: settings.steps }, k);
    yield { step: k + 1, learningRate, tokens, micro };
  }
}
