/**
 * INT4, asymmetric, group size 128 along each row (the input dimension), as AWQ and GPTQ store weights:
 *   s = max((max − min)/15, 1e-5), stored fp16;  z = clamp(−round(min/s), 0, 15);  q = clamp(round(w/s) + z, 0, 15);
 *   w' = (q − z)·s.
 * round is half-to-even (torch.round); s is rounded to fp16 before it is used, so encoder and decoder agree. The
 * floor on s is AWQ's clamp(min=1e-5), which keeps a constant group from dividing by zero.
 * Layout (little-endian):
 *   rows × ceil(cols/2) bytes of codes, element 2j in the low nibble and 2j+1 in the high nibble (GPTQ/AWQ order);
 *   rows × groups fp16 scales; ceil(rows·groups/2) bytes of zero points, two per byte, low nibble first.
 */
import { checkBytes, checkMatrix, clamp, roundHalfEven, type QuantFormat } from './format-common.ts';
import { F16_TABLE, f32ToF16Bits } from './half.ts';

export const INT4_GROUP = 128;
const MIN_SCALE = 1e-5;

function layout(rows: number, cols: number): { rowBytes: number; groups: number; scalesAt: number; zerosAt: number; size: number } {
  const rowBytes = Math.ceil(cols / 2);
  const groups = Math.ceil(cols / INT4_GROUP);
  const scalesAt = rows * rowBytes;
  const zerosAt = scalesAt + 2 * rows * groups;
  return { rowBytes, groups, scalesAt, zerosAt, size: zerosAt + Math.ceil((rows * groups) / 2) };
}

function groupParams(bytes: Uint8Array, rows: number, cols: number, r: number, g: number): { s: number; z: number } {
  const L = layout(rows, cols);
  const gi = r * L.groups + g;
  const so = L.scalesAt + 2 * gi;
  const s = F16_TABLE[bytes[so] | (bytes[so + 1] << 8)];
  const zb = bytes[L.zerosAt + (gi >> 1)];
  return { s, z: gi & 1 ? zb >> 4 : zb & 15 };
}

export const int4Format: QuantFormat = {
  name: 'int4-g128',
  label: 'INT4 g128 (asym)',
  bitsPerWeight: 4 + 16 / INT4_GROUP + 4 / INT4_GROUP,
  ggmlType: null,
  sizeBytes: (rows, cols) => layout(rows, cols).size,
  check(rows, cols) {
    checkMatrix('int4-g128', { length: rows * cols }, rows, cols);
  },
  quantize(w, rows, cols) {
    checkMatrix('int4-g128', w, rows, cols);
    const L = layout(rows, cols);
    const out = new Uint8Array(L.size);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      for (let g = 0; g < L.groups; g++) {
        const j0 = g * INT4_GROUP;
        const j1 = Math.min(cols, j0 + INT4_GROUP);
        let min = Infinity;
        let max = -Infinity;
        for (let j = j0; j < j1; j++) {
          const v = w[o + j];
          if (v < min) min = v;
          if (v > max) max = v;
        }
        const h = f32ToF16Bits(Math.max(Math.fround((max - min) / 15), MIN_SCALE));
        const s = F16_TABLE[h];
        const z = clamp(-roundHalfEven(Math.fround(min / s)), 0, 15);
        const gi = r * L.groups + g;
        out[L.scalesAt + 2 * gi] = h & 0xff;
        out[L.scalesAt + 2 * gi + 1] = h >>> 8;
        out[L.zerosAt + (gi >> 1)] |= gi & 1 ? z << 4 : z;
        for (let j = j0; j < j1; j++) {
          const q = clamp(roundHalfEven(Math.fround(w[o + j] / s)) + z, 0, 15);
          out[r * L.rowBytes + (j >> 1)] |= j & 1 ? q << 4 : q;
        }
      }
    }
    return out;
  },
  dequantize(bytes, rows, cols) {
    const L = layout(rows, cols);
    checkBytes('int4-g128', bytes, L.size, rows, cols);
    const out = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let g = 0; g < L.groups; g++) {
        const { s, z } = groupParams(bytes, rows, cols, r, g);
        const j1 = Math.min(cols, (g + 1) * INT4_GROUP);
        for (let j = g * INT4_GROUP; j < j1; j++) {
          const b = bytes[r * L.rowBytes + (j >> 1)];
          out[r * cols + j] = ((j & 1 ? b >> 4 : b & 15) - z) * s;
        }
      }
    }
    return out;
  },
  levels(bytes, rows, cols, index) {
    const r = Math.floor(index / cols);
    const { s, z } = groupParams(bytes, rows, cols, r, Math.floor((index % cols) / INT4_GROUP));
    const out: number[] = [];
    for (let q = 0; q < 16; q++) out.push(Math.fround((q - z) * s));
    return out;
  },
};
