import { IGNORE_INDEX, type TrainingExample } from '../model/types.ts';

/**
 * Packs examples, in order, into rows of at most `maxSeqLen` tokens: an example joins the current row while it fits,
 * else it starts a new one (examples are never split; each must already be ≤ maxSeqLen). The first token of every
 * example gets label −100 so no row learns to predict one example's start from the previous example's end.
 * Packed examples share one causal attention window (no per-example position reset): cheap and standard, at the cost
 * of some cross-example attention.
 */
export function packExamples(examples: readonly TrainingExample[], maxSeqLen: number): TrainingExample[] {
  const rows: TrainingExample[] = [];
  let ids: number[] = [];
  let labels: number[] = [];
  for (const ex of examples) {
    if (ex.inputIds.length > maxSeqLen) throw new Error(`packing: an example has ${ex.inputIds.length} tokens, more than maxSeqLen ${maxSeqLen}`);
    if (ids.length > 0 && ids.length + ex.inputIds.length > maxSeqLen) {
      rows.push({ inputIds: ids, labels });
      ids = [];
      labels = [];
    }
    for (let i = 0; i < ex.inputIds.length; i++) {
      ids.push(ex.inputIds[i]);
      labels.push(i === 0 ? IGNORE_INDEX : ex.labels[i]);
    }
  }
  if (ids.length > 0) rows.push({ inputIds: ids, labels });
  return rows;
}
