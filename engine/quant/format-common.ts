/**
 * What every weight format implements, and the argument checks they share. A weight is a row-major [rows, cols]
 * matrix ([out, in] for a Linear); formats that block along a row (GGML, int4 groups, int8 channels) use `cols` as the
 * innermost dimension, exactly as ggml's ne[0].
 */

export interface QuantFormat {
  /** Registry key, as the CLI and the report name it: f16, int8, int4-g128, nf4, q8_0, q4_0, q4_1. */
  name: string;
  /** Human label for the UI. */
  label: string;
  /** Storage per weight, scales and zero points included (for a matrix whose dims fit the blocks). */
  bitsPerWeight: number;
  /** GGUF / ggml tensor type id when this format exists in GGUF, else null. */
  ggmlType: number | null;
  /** Bytes `quantize` returns for a [rows, cols] matrix. */
  sizeBytes(rows: number, cols: number): number;
  /** Throws with the reason when the format cannot hold a [rows, cols] matrix (e.g. cols not a multiple of 32). */
  check(rows: number, cols: number): void;
  quantize(w: Float32Array, rows: number, cols: number): Uint8Array;
  dequantize(bytes: Uint8Array, rows: number, cols: number): Float32Array;
  /**
   * The values the format can reconstruct in the block (group, channel) that holds element `index`, ascending;
   * null when the grid is too fine to draw (f16). The UI lays them over the weight histogram.
   */
  levels(bytes: Uint8Array, rows: number, cols: number, index: number): number[] | null;
}

export function checkMatrix(fmt: string, w: ArrayLike<number>, rows: number, cols: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) {
    throw new Error(`${fmt}: shape must be positive integers, got [${rows}, ${cols}]`);
  }
  if (w.length !== rows * cols) throw new Error(`${fmt}: expected ${rows}×${cols} = ${rows * cols} values, got ${w.length}`);
}

export function checkBytes(fmt: string, bytes: Uint8Array, expected: number, rows: number, cols: number): void {
  if (bytes.length !== expected) {
    throw new Error(`${fmt}: a [${rows}, ${cols}] matrix takes ${expected} bytes, got ${bytes.length}`);
  }
}

export function checkBlockCols(fmt: string, rows: number, cols: number, block: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) {
    throw new Error(`${fmt}: shape must be positive integers, got [${rows}, ${cols}]`);
  }
  if (cols % block !== 0) throw new Error(`${fmt}: the row length (${cols}) must be a multiple of the block size ${block}`);
}

/** Round half to even, as torch.round and numpy.round do. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Round half away from zero, as C's roundf. Exact for fp32 inputs (|x| + 0.5 is exact in f64 below 2^28). */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

export function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}
