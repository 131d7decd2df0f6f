/** Token embedding lookup: out[n, :] = table[ids[n], :]. */
import { decodeF16Rows } from './weight-array.ts';
import { F16Array, type FloatArray, type WeightArray } from './types.ts';

/** out[N,C] = table[ids[n]]; `vocabSize` rows in table. Throws naming the position of an out-of-range id. */
export function forward(out: FloatArray, ids: Int32Array, table: WeightArray, N: number, C: number): void {
  const vocabSize = Math.floor(table.length / C);
  const row = table instanceof F16Array ? new Float32Array(C) : null;
  for (let n = 0; n < N; n++) {
    const id = ids[n];
    if (!(id >= 0 && id < vocabSize)) throw new Error(`embedding: token id ${id} at position ${n} is outside the vocabulary [0, ${vocabSize})`);
    const src = id * C;
    const dst = n * C;
    if (row !== null && table instanceof F16Array) {
      decodeF16Rows(row, table, id, 1, C);
      out.set(row, dst);
    } else if (!(table instanceof F16Array)) {
      for (let c = 0; c < C; c++) out[dst + c] = table[src + c];
    }
  }
}

/** dTable[ids[n]] += dOut[n]. */
export function backward(dTable: FloatArray, dOut: FloatArray, ids: Int32Array, _table: WeightArray, N: number, C: number): void {
  for (let n = 0; n < N; n++) {
    const dst = ids[n] * C;
    const src = n * C;
    for (let c = 0; c < C; c++) dTable[dst + c] += dOut[src + c];
  }
}
