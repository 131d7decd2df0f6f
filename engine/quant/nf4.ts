/**
 * NF4 as bitsandbytes stores it (quant_type="nf4", no double quantization): the flattened tensor is cut into blocks
 * of 64, each block keeps its absmax in fp32, and every weight becomes the index of the NF4 code nearest to
 * w·(1/absmax). Ties go to the lower code, as bitsandbytes' decision tree (`x > midpoint`) does.
 * Layout: ceil(n/2) bytes of codes, first element of each pair in the HIGH nibble (bitsandbytes order), then
 * ceil(n/64) fp32 absmax values, little-endian. A last partial block is allowed.
 */
import { checkBytes, checkMatrix, type QuantFormat } from './format-common.ts';

export const NF4_BLOCK = 64;

/** The 16 NF4 values (bitsandbytes `get_4bit_type('nf4')`, as fp32). */
export const NF4_CODE = new Float32Array([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

const MIDPOINTS = Array.from({ length: 15 }, (_, i) => (NF4_CODE[i] + NF4_CODE[i + 1]) / 2);

/** Index of the NF4 code nearest to x (x in [−1, 1]); ties to the lower code. */
export function nf4Index(x: number): number {
  let lo = 0;
  let hi = 15;
  // Binary search for the first midpoint ≥ x: 4 comparisons.
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (x > MIDPOINTS[mid]) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function layout(n: number): { codeBytes: number; blocks: number; size: number } {
  const codeBytes = Math.ceil(n / 2);
  const blocks = Math.ceil(n / NF4_BLOCK);
  return { codeBytes, blocks, size: codeBytes + 4 * blocks };
}

function absmaxOf(bytes: Uint8Array, n: number): Float32Array {
  const L = layout(n);
  return new Float32Array(bytes.slice(L.codeBytes, L.size).buffer);
}

export const nf4Format: QuantFormat = {
  name: 'nf4',
  label: 'NF4 (block 64)',
  bitsPerWeight: 4 + 32 / NF4_BLOCK,
  ggmlType: null,
  sizeBytes: (rows, cols) => layout(rows * cols).size,
  check(rows, cols) {
    checkMatrix('nf4', { length: rows * cols }, rows, cols);
  },
  quantize(w, rows, cols) {
    checkMatrix('nf4', w, rows, cols);
    const n = w.length;
    const L = layout(n);
    const out = new Uint8Array(L.size);
    const absmax = new Float32Array(L.blocks);
    for (let b = 0; b < L.blocks; b++) {
      const i0 = b * NF4_BLOCK;
      const i1 = Math.min(n, i0 + NF4_BLOCK);
      let amax = 0;
      for (let i = i0; i < i1; i++) {
        const a = Math.abs(w[i]);
        if (a > amax) amax = a;
      }
      absmax[b] = amax;
      const inv = amax === 0 ? 0 : Math.fround(1 / amax);
      for (let i = i0; i < i1; i++) {
        const q = nf4Index(Math.fround(w[i] * inv));
        out[i >> 1] |= i & 1 ? q : q << 4;
      }
    }
    // A padding nibble (odd n) stays 0, as bitsandbytes leaves it.
    out.set(new Uint8Array(absmax.buffer), L.codeBytes);
    return out;
  },
  dequantize(bytes, rows, cols) {
    const n = rows * cols;
    checkBytes('nf4', bytes, layout(n).size, rows, cols);
    const absmax = absmaxOf(bytes, n);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const b = bytes[i >> 1];
      out[i] = NF4_CODE[i & 1 ? b & 15 : b >> 4] * absmax[Math.floor(i / NF4_BLOCK)];
    }
    return out;
  },
  levels(bytes, rows, cols, index) {
    const a = absmaxOf(bytes, rows * cols)[Math.floor(index / NF4_BLOCK)];
    return Array.from(NF4_CODE, (c) => Math.fround(c * a));
  },
};
