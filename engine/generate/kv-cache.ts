/**
 * Keys (after RoPE) and values of every layer for the tokens seen so far, one sequence: layer l holds
 * [capacity, kvHeads·headDim] rows, of which the first `length` are filled.
 */
import type { FloatArrayConstructor } from '../model/lora.ts';
import type { FloatArray, ModelConfig } from '../model/types.ts';

export class KvCache {
  readonly k: FloatArray[] = [];
  readonly v: FloatArray[] = [];
  readonly kvDim: number;
  length = 0;

  constructor(
    config: ModelConfig,
    readonly capacity: number,
    ArrayCtor: FloatArrayConstructor = Float32Array,
  ) {
    if (!Number.isInteger(capacity) || capacity <= 0) throw new Error(`KvCache: capacity must be a positive integer, got ${capacity}`);
    this.kvDim = config.numKvHeads * config.headDim;
    for (let l = 0; l < config.numLayers; l++) {
      this.k.push(new ArrayCtor(capacity * this.kvDim));
      this.v.push(new ArrayCtor(capacity * this.kvDim));
    }
  }

  /** Throws when `n` more tokens do not fit. */
  ensureRoom(n: number): void {
    if (this.length + n > this.capacity) throw new Error(`KvCache: ${this.length} cached + ${n} new tokens exceed the capacity of ${this.capacity}`);
  }

  reset(): void {
    this.length = 0;
  }
}
