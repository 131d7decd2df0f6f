/** Token embedding lookup: out[n, :] = table[ids[n], :]. */
import { decodePackedRows, PackedWeight } from './packed-rows.ts';
import { decodeF16Rows } from './weight-array.ts';
import { F16Array, type FloatArray, type LinearWeight } from './types.ts';

/**
 * out[N,C] = table[ids[n]]; `vocabSize` rows in table. Throws naming the position of an out-of-range id.
 * An f16 or packed table (QLoRA) has just the looked-up rows decoded, each to the values its dequantize() gives.
 */
export function forward(out: FloatArray, ids: Int32Array, table: LinearWeight, N: number, C: number): void {
  const vocabSize = Math.floor(table.length / C);
  if (table instanceof PackedWeight && table.cols !== C) throw new Error(`embedding: the ${table.format} table has rows of ${table.cols}, expected hidden ${C}`);
  // f16 / packed rows are decoded through a small f32 buffer (out may be f64).
  const row = table instanceof F16Array || table instanceof PackedWeight ? new Float32Array(C) : null;
  for (let n = 0; n < N; n++) {
    const id = ids[n];
    if (!(id >= 0 && id < vocabSize)) throw new Error(`embedding: token id ${id} at position ${n} is outside the vocabulary [0, ${vocabSize})`);
    const dst = n * C;
    if (row !== null) {
      if (table instanceof PackedWeight) decodePackedRows(row, table, id, 1);
      else decodeF16Rows(row, table as F16Array, id, 1, C);
      out.set(row, dst);
    } else {
      const t = table as FloatArray;
      const src = id * C;
      for (let c = 0; c < C; c++) out[dst + c] = t[src + c];
    }
  }
}

/** dTable[ids[n]] += dOut[n]. */
export function backward(dTable: FloatArray, dOut: FloatArray, ids: Int32Array, _table: LinearWeight, N: number, C: number): void {
  for (let n = 0; n < N; n++) {
    const dst = ids[n] * C;
    const src = n * C;
    for (let c = 0; c < C; c++) dTable[dst + c] += dOut[src + c];
  }
}
