/**
 * Rows of a PackedWeight decoded to f32, a panel at a time (QLoRA on the portable cpu path): the products never hold
 * the whole weight in floats. Every value is exactly what `PackedWeight.dequantize()` gives for that element — the
 * GGML formats through their own block dequantizers (rows are whole blocks), NF4 and INT4-g128 by the formats'
 * formulas on the formats' layouts (engine/quant/nf4.ts, int4.ts) — so a product over decoded panels equals the same
 * product on the dequantized f32 matrix bit for bit. native/src/packed-decode.h is the same decoding in C++.
 */
import { dequantizeBlocksQ4_0, Q4_0_BLOCK_BYTES, QK4_0 } from '../quant/ggml-q4_0.ts';
import { dequantizeBlocksQ4_1, Q4_1_BLOCK_BYTES, QK4_1 } from '../quant/ggml-q4_1.ts';
import { dequantizeBlocksQ4_K, Q4_K_BLOCK_BYTES } from '../quant/ggml-q4_k.ts';
import { dequantizeBlocksQ6_K, Q6_K_BLOCK_BYTES } from '../quant/ggml-q6_k.ts';
import { dequantizeBlocksQ8_0, Q8_0_BLOCK_BYTES, QK8_0 } from '../quant/ggml-q8_0.ts';
import { QK_K } from '../quant/ggml-q2_k.ts';
import { F16_TABLE } from '../quant/half.ts';
import { INT4_GROUP } from '../quant/int4.ts';
import { NF4_BLOCK, NF4_CODE } from '../quant/nf4.ts';
import { PackedWeight } from '../quant/packed-weight.ts';
import type { DequantizeBlocks } from '../quant/ggml-blocks.ts';

export { PackedWeight };

const GGML_ROWS: Partial<Record<PackedWeight['format'], { bs: number; bb: number; f: DequantizeBlocks }>> = {
  q8_0: { bs: QK8_0, bb: Q8_0_BLOCK_BYTES, f: dequantizeBlocksQ8_0 },
  q4_0: { bs: QK4_0, bb: Q4_0_BLOCK_BYTES, f: dequantizeBlocksQ4_0 },
  q4_1: { bs: QK4_1, bb: Q4_1_BLOCK_BYTES, f: dequantizeBlocksQ4_1 },
  q4_k: { bs: QK_K, bb: Q4_K_BLOCK_BYTES, f: dequantizeBlocksQ4_K },
  q6_k: { bs: QK_K, bb: Q6_K_BLOCK_BYTES, f: dequantizeBlocksQ6_K },
};

/** Rows [r0, r0+nr) of `w` into dst[0 .. nr·cols), as f32 (the values of w.dequantize() there). */
export function decodePackedRows(dst: Float32Array, w: PackedWeight, r0: number, nr: number): void {
  const { rows, cols, bytes } = w;
  if (r0 < 0 || nr < 0 || r0 + nr > rows) throw new Error(`${w.format} [${rows}, ${cols}]: rows [${r0}, ${r0 + nr}) are outside the weight`);
  if (dst.length < nr * cols) throw new Error(`${w.format}: a panel of ${nr} rows needs ${nr * cols} floats, got ${dst.length}`);
  const g = GGML_ROWS[w.format];
  if (g) {
    const perRow = cols / g.bs;
    g.f(bytes, r0 * perRow * g.bb, dst, 0, nr * perRow);
    return;
  }
  if (w.format === 'nf4') {
    // Codes: ceil(n/2) bytes, first of a pair in the high nibble; then one fp32 absmax per 64 elements (flat).
    const n = rows * cols;
    const absAt = Math.ceil(n / 2);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let block = -1;
    let amax = 0;
    for (let t = 0, i = r0 * cols; t < nr * cols; t++, i++) {
      const bi = Math.floor(i / NF4_BLOCK);
      if (bi !== block) {
        block = bi;
        amax = view.getFloat32(absAt + 4 * bi, true);
      }
      const b = bytes[i >> 1];
      dst[t] = NF4_CODE[i & 1 ? b & 15 : b >> 4] * amax;
    }
    return;
  }
  // int4-g128: rows × ceil(cols/2) code bytes (low nibble first), then rows × groups fp16 scales, then the zero points
  // two per byte (low nibble first) over rows·groups.
  const rowBytes = Math.ceil(cols / 2);
  const groups = Math.ceil(cols / INT4_GROUP);
  const scalesAt = rows * rowBytes;
  const zerosAt = scalesAt + 2 * rows * groups;
  for (let rr = 0; rr < nr; rr++) {
    const r = r0 + rr;
    const o = rr * cols;
    for (let gi0 = 0; gi0 < groups; gi0++) {
      const gi = r * groups + gi0;
      const s = F16_TABLE[bytes[scalesAt + 2 * gi] | (bytes[scalesAt + 2 * gi + 1] << 8)];
      const zb = bytes[zerosAt + (gi >> 1)];
      const z = gi & 1 ? zb >> 4 : zb & 15;
      const j1 = Math.min(cols, (gi0 + 1) * INT4_GROUP);
      for (let j = gi0 * INT4_GROUP; j < j1; j++) {
        const b = bytes[r * rowBytes + (j >> 1)];
        dst[o + j] = ((j & 1 ? b >> 4 : b & 15) - z) * s;
      }
    }
  }
}

/** Stable numeric ids of the packed formats, shared with the native kernels (native/src/kernels.h WType). */
export const PACKED_WTYPE: Readonly<Record<PackedWeight['format'], number>> = { q8_0: 2, q4_0: 3, q4_1: 4, q4_k: 5, q6_k: 6, nf4: 7, 'int4-g128': 8 };
