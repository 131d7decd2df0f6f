/**
 * The GGML tensor types a GGUF model source can be read from, one entry per block layout: its size, and the
 * dequantizer of its own module (ggml-q8_0.ts … ggml-q6_k.ts), each equal bit for bit to the PyPI `gguf` package's
 * `quants.dequantize` (the numpy port of ggml's reference dequantize_row_*). Raw blocks are what a QLoRA kernel
 * would consume packed; this table is the one place that says how big a block is and how it becomes floats.
 */
import { GGML_TYPES } from './gguf-types.ts';
import { F16_TABLE } from './half.ts';
import { dequantizeBlocksQ2_K } from './ggml-q2_k.ts';
import { dequantizeBlocksQ3_K } from './ggml-q3_k.ts';
import { dequantizeBlocksQ4_0 } from './ggml-q4_0.ts';
import { dequantizeBlocksQ4_1 } from './ggml-q4_1.ts';
import { dequantizeBlocksQ4_K } from './ggml-q4_k.ts';
import { dequantizeBlocksQ5_0 } from './ggml-q5_0.ts';
import { dequantizeBlocksQ5_1 } from './ggml-q5_1.ts';
import { dequantizeBlocksQ5_K } from './ggml-q5_k.ts';
import { dequantizeBlocksQ6_K } from './ggml-q6_k.ts';
import { dequantizeBlocksQ8_0 } from './ggml-q8_0.ts';

/** Dequantizes `nBlocks` consecutive blocks starting at byte src[srcOff] into dst[dstOff …]. */
export type DequantizeBlocks = (src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, nBlocks: number) => void;

export interface GgmlBlockLayout {
  /** ggml type id (ggml.h enum ggml_type). */
  type: number;
  name: string;
  /** Elements per block (1 for the float types). */
  blockSize: number;
  blockBytes: number;
  dequantize: DequantizeBlocks;
}

function dequantizeF32(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, n: number): void {
  const view = new DataView(src.buffer, src.byteOffset + srcOff, n * 4);
  for (let i = 0; i < n; i++) dst[dstOff + i] = view.getFloat32(i * 4, true);
}

function dequantizeF16(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, n: number): void {
  for (let i = 0; i < n; i++) dst[dstOff + i] = F16_TABLE[src[srcOff + 2 * i] | (src[srcOff + 2 * i + 1] << 8)];
}

// bf16 is the top half of an fp32: the bits shifted up (as gguf's BF16.dequantize_blocks does) are the value.
const bf16Scratch = new Uint32Array(1);
const bf16View = new Float32Array(bf16Scratch.buffer);
function dequantizeBF16(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, n: number): void {
  for (let i = 0; i < n; i++) {
    bf16Scratch[0] = ((src[srcOff + 2 * i] | (src[srcOff + 2 * i + 1] << 8)) << 16) >>> 0;
    dst[dstOff + i] = bf16View[0];
  }
}

const DEQUANTIZERS: Readonly<Record<number, DequantizeBlocks>> = {
  0: dequantizeF32,
  1: dequantizeF16,
  2: dequantizeBlocksQ4_0,
  3: dequantizeBlocksQ4_1,
  6: dequantizeBlocksQ5_0,
  7: dequantizeBlocksQ5_1,
  8: dequantizeBlocksQ8_0,
  10: dequantizeBlocksQ2_K,
  11: dequantizeBlocksQ3_K,
  12: dequantizeBlocksQ4_K,
  13: dequantizeBlocksQ5_K,
  14: dequantizeBlocksQ6_K,
  30: dequantizeBF16,
};

/** Every layout the studio can turn into floats, by ggml type id. */
export const GGML_BLOCK_LAYOUTS: Readonly<Record<number, GgmlBlockLayout>> = Object.fromEntries(
  Object.entries(DEQUANTIZERS).map(([id, dequantize]) => {
    const t = GGML_TYPES[Number(id)];
    return [id, { type: Number(id), name: t.name, blockSize: t.blockSize, blockBytes: t.blockBytes, dequantize }];
  }),
);

/** Names of the readable types, for messages. */
export const READABLE_GGML_TYPES: readonly string[] = Object.values(GGML_BLOCK_LAYOUTS).map((l) => l.name);

/** A tensor whose ggml type the studio cannot dequantize (IQ*, TQ*, MXFP4, integer types…). */
export class GgmlTypeError extends Error {
  readonly typeName: string;
  constructor(what: string, type: number) {
    const name = GGML_TYPES[type]?.name ?? `#${type}`;
    super(`${what}: ggml type ${name} cannot be read (readable: ${READABLE_GGML_TYPES.join(', ')}); requantize the file (llama-quantize) to one of those`);
    this.name = 'GgmlTypeError';
    this.typeName = name;
  }
}

export function ggmlLayout(type: number, what: string): GgmlBlockLayout {
  const l = GGML_BLOCK_LAYOUTS[type];
  if (!l) throw new GgmlTypeError(what, type);
  return l;
}

/** `bytes` (whole blocks of `type`) as fp32; `what` names the tensor in errors. */
export function dequantizeGgml(type: number, bytes: Uint8Array, what: string, out?: Float32Array): Float32Array {
  const l = ggmlLayout(type, what);
  if (bytes.length % l.blockBytes !== 0) throw new Error(`${what}: ${bytes.length} bytes is not a whole number of ${l.name} blocks (${l.blockBytes} bytes each)`);
  const nBlocks = bytes.length / l.blockBytes;
  const n = nBlocks * l.blockSize;
  const dst = out ?? new Float32Array(n);
  if (dst.length < n) throw new Error(`${what}: output holds ${dst.length} values, the blocks ${n}`);
  l.dequantize(bytes, 0, dst, 0, nBlocks);
  return dst;
}
