/**
 * A frozen weight kept in its quantized bytes (QLoRA): the [rows, cols] matrix ([out, in] for a Linear) is never held
 * in f32 or f16; the products that read it decode elements where they are used (webgpu: quant-wgsl.ts). The byte
 * layouts are the formats' own (engine/quant/<format>.ts; the K-quants' in ggml-q4_k.ts/ggml-q6_k.ts through ggml-blocks.ts): what the quantization lab writes and
 * the GGUF loader reads, one definition each.
 */
import { QUANT_FORMATS } from './format.ts';
import { dequantizeGgml } from './ggml-blocks.ts';
import { QK_K } from './ggml-q2_k.ts';
import { Q4_K_BLOCK_BYTES } from './ggml-q4_k.ts';
import { Q6_K_BLOCK_BYTES } from './ggml-q6_k.ts';

export const PACKED_FORMATS = ['q8_0', 'q4_0', 'q4_1', 'q4_k', 'q6_k', 'nf4', 'int4-g128'] as const;
export type PackedFormat = (typeof PACKED_FORMATS)[number];

/** GGML type ids of the packed formats that exist in GGUF (DESIGN.md §6). */
export const PACKED_GGML_TYPES: Partial<Record<PackedFormat, number>> = { q8_0: 8, q4_0: 2, q4_1: 3, q4_k: 12, q6_k: 14 };

export function isPackedFormat(s: string): s is PackedFormat {
  return (PACKED_FORMATS as readonly string[]).includes(s);
}

/** Bits per weight, scales included, for the memory estimate and the UI. */
export function packedBitsPerWeight(f: PackedFormat): number {
  if (f === 'q4_k') return (Q4_K_BLOCK_BYTES * 8) / QK_K;
  if (f === 'q6_k') return (Q6_K_BLOCK_BYTES * 8) / QK_K;
  return QUANT_FORMATS[f].bitsPerWeight;
}

/** Throws with the reason when `f` cannot hold a [rows, cols] matrix (a row not a whole number of blocks). */
export function checkPackedShape(f: PackedFormat, rows: number, cols: number): void {
  if (f === 'q4_k' || f === 'q6_k') {
    if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) throw new Error(`${f}: shape must be positive integers, got [${rows}, ${cols}]`);
    if (cols % QK_K !== 0) throw new Error(`${f}: the row length (${cols}) must be a multiple of the super-block size ${QK_K}`);
    return;
  }
  QUANT_FORMATS[f].check(rows, cols);
}

export function packedSizeBytes(f: PackedFormat, rows: number, cols: number): number {
  checkPackedShape(f, rows, cols);
  if (f === 'q4_k') return ((rows * cols) / QK_K) * Q4_K_BLOCK_BYTES;
  if (f === 'q6_k') return ((rows * cols) / QK_K) * Q6_K_BLOCK_BYTES;
  return QUANT_FORMATS[f].sizeBytes(rows, cols);
}

export class PackedWeight {
  readonly format: PackedFormat;
  readonly rows: number;
  readonly cols: number;
  readonly bytes: Uint8Array;

  constructor(format: PackedFormat, rows: number, cols: number, bytes: Uint8Array) {
    const want = packedSizeBytes(format, rows, cols);
    if (bytes.length !== want) throw new Error(`${format}: a [${rows}, ${cols}] matrix takes ${want} bytes, got ${bytes.length}`);
    this.format = format;
    this.rows = rows;
    this.cols = cols;
    this.bytes = bytes;
  }

  /** Elements, as a FloatArray's length. */
  get length(): number {
    return this.rows * this.cols;
  }

  /** Quantizes an f32 [rows, cols] matrix (the formats the studio can write: not the K-quants). */
  static quantize(format: PackedFormat, w: Float32Array, rows: number, cols: number): PackedWeight {
    if (format === 'q4_k' || format === 'q6_k') throw new Error(`${format}: the studio trains on ${format} weights as a GGUF stores them but does not quantize to it; choose q8_0, q4_0, q4_1, nf4 or int4-g128`);
    return new PackedWeight(format, rows, cols, QUANT_FORMATS[format].quantize(w, rows, cols));
  }

  /** The whole matrix in f32 (references and tests; training never calls it). */
  dequantize(): Float32Array {
    const ggmlType = PACKED_GGML_TYPES[this.format];
    if (this.format === 'q4_k' || this.format === 'q6_k') return dequantizeGgml(ggmlType as number, this.bytes, `${this.format} [${this.rows}, ${this.cols}]`);
    return QUANT_FORMATS[this.format].dequantize(this.bytes, this.rows, this.cols);
  }
}
