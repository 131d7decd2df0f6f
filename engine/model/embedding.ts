/** Token embedding lookup: out[n, :] = table[ids[n], :]. */
import { decodeF16Rows } from './weight-array.ts';
import { F16Array, type FloatArray, type WeightArray } from './types.ts';

/** out[N,C] = table[ids[n]]; `vocabSize` rows in table. Throws naming the position of an out-of-range id. */
export function forward(out: FloatArray, ids: Int32Array, table: WeightArray, N: number, C: number): void {
  const vocabSize = Math.floor(table.length / C);
  // f16 rows are decoded through a small f32 buffer (out may be f64).
  const f16 = table instanceof F16Array ? table : null;
  const row = f16 === null ? null : new Float32Array(C);
  for (let n = 0; n < N; n++) {
    const id = ids[n];
    if (!(id >= 0 && id < vocabSize)) throw new Error(`embedding: token id ${id} at position ${n} is outside the vocabulary [0, ${vocabSize})`);
    const src = id * C;
    const dst = n * C;
    if (f16 !== null && row !== null) {
      decodeF16Rows(row, f16, id, 1, C);
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
