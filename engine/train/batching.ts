/**
 * Examples → padded batches. Each epoch visits the examples in an order shuffled by the data Rng; batches are always
 * full (an epoch that runs out continues into the next one). The position is saved as the Rng state from before the
 * current epoch's shuffle plus the offset into that epoch, so restoring it replays the exact same order.
 */
import { IGNORE_INDEX } from '../model/types.ts';
import type { Batch, TrainingExample } from '../model/types.ts';
import { Rng } from '../util/rng.ts';

/** Right-pads examples to the longest one; padding gets `padTokenId` as input and −100 as label. */
export function padBatch(examples: readonly TrainingExample[], padTokenId: number): Batch {
  if (examples.length === 0) throw new Error('padBatch: no examples');
  const seqLen = Math.max(...examples.map((e) => e.inputIds.length));
  if (seqLen === 0) throw new Error('padBatch: every example is empty');
  const inputIds = new Int32Array(examples.length * seqLen).fill(padTokenId);
  const labels = new Int32Array(examples.length * seqLen).fill(IGNORE_INDEX);
  examples.forEach((e, b) => {
    if (e.labels.length !== e.inputIds.length) throw new Error(`padBatch: example ${b} has ${e.inputIds.length} input ids but ${e.labels.length} labels`);
    inputIds.set(e.inputIds, b * seqLen);
    labels.set(e.labels, b * seqLen);
  });
  return { batchSize: examples.length, seqLen, inputIds, labels };
}

/** Positions that count in the causal-LM loss: labels[t+1] ≠ −100 within each row. */
export function countTargetTokens(batch: Batch): number {
  let n = 0;
  for (let b = 0; b < batch.batchSize; b++) {
    const row = b * batch.seqLen;
    for (let t = 1; t < batch.seqLen; t++) if (batch.labels[row + t] !== IGNORE_INDEX) n++;
  }
  return n;
}

export interface DataPosition {
  epoch: number;
  /** How many examples of this epoch's order were consumed. */
  offset: number;
  /** The data Rng state from before this epoch's shuffle. */
  epochRngState: number[];
}

export class BatchIterator {
  private readonly examples: readonly TrainingExample[];
  private readonly batchSize: number;
  private readonly padTokenId: number;
  private epoch = 0;
  private offset = 0;
  private epochRngState: number[];
  private rng: Rng;
  private order: number[];

  constructor(examples: readonly TrainingExample[], opts: { batchSize: number; padTokenId: number; seed: number; position?: DataPosition }) {
    if (examples.length === 0) throw new Error('the training split has no examples');
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new Error(`batch size must be a whole number ≥ 1, got ${opts.batchSize}`);
    this.examples = examples;
    this.batchSize = opts.batchSize;
    this.padTokenId = opts.padTokenId;
    const pos = opts.position;
    this.rng = pos ? Rng.fromState(pos.epochRngState) : new Rng(opts.seed);
    this.epochRngState = this.rng.state();
    this.order = this.shuffled();
    if (pos) {
      if (!Number.isInteger(pos.offset) || pos.offset < 0 || pos.offset > examples.length) {
        throw new Error(`saved data position offset ${pos.offset} does not fit a training split of ${examples.length} examples`);
      }
      this.epoch = pos.epoch;
      this.offset = pos.offset;
    }
  }

  private shuffled(): number[] {
    return this.rng.shuffle(Array.from({ length: this.examples.length }, (_, i) => i));
  }

  /** The examples of the next batch, in order. */
  nextExamples(): TrainingExample[] {
    const out: TrainingExample[] = [];
    while (out.length < this.batchSize) {
      if (this.offset === this.order.length) {
        this.epoch++;
        this.offset = 0;
        this.epochRngState = this.rng.state();
        this.order = this.shuffled();
      }
      out.push(this.examples[this.order[this.offset++]]);
    }
    return out;
  }

  next(): Batch {
    return padBatch(this.nextExamples(), this.padTokenId);
  }

  position(): DataPosition {
    return { epoch: this.epoch, offset: this.offset, epochRngState: [...this.epochRngState] };
  }
}

/** Fixed, unshuffled batches (validation). */
export function sequentialBatches(examples: readonly TrainingExample[], batchSize: number, padTokenId: number): Batch[] {
  const out: Batch[] = [];
  for (let i = 0; i < examples.length; i += batchSize) out.push(padBatch(examples.slice(i, i + batchSize), padTokenId));
  return out;
}
