/**
 * Packed frozen weights on the GPU (QLoRA): a [rows, cols] matrix stays in its quantized bytes, uploaded as they are
 * into a u32 storage buffer, and the matmul kernels read one element at a time through `wq(row, col)`, which decodes
 * it where the tile is staged. W is never materialised in f16/f32 on the device.
 *
 * Each decoder is the WGSL form of the format's reference dequantizer (engine/quant/<format>.ts, ggml's
 * dequantize_row_* for the GGML types, bitsandbytes for NF4) with the float operations in the same order, so a decoded
 * value is bit-identical to the host's: the products of small integers and fp16 scales are exact in f32, and where a
 * product rounds (Q6_K's d·sc·q) it rounds once, as in the reference.
 */
import type { PackedFormat } from '../../quant/packed-weight.ts';
import { NF4_CODE } from '../../quant/nf4.ts';

/** Byte, fp16 and fp32 reads at any byte offset of the u32 binding `name`. */
function byteReaders(name: string): string {
  return `
fn ${name}_u8(i: u32) -> u32 { return (${name}[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu; }
fn ${name}_i8(i: u32) -> i32 { return (i32(${name}_u8(i)) << 24u) >> 24u; }
fn ${name}_f16(i: u32) -> f32 { return unpack2x16float(${name}_u8(i) | (${name}_u8(i + 1u) << 8u)).x; }
fn ${name}_f32(i: u32) -> f32 { return bitcast<f32>(${name}_u8(i) | (${name}_u8(i + 1u) << 8u) | (${name}_u8(i + 2u) << 16u) | (${name}_u8(i + 3u) << 24u)); }`;
}

/** f32 literal that WGSL parses back to exactly `v` (JS prints the shortest round-trip form of the f32 value). */
function f32Literal(v: number): string {
  const s = String(Math.fround(v));
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/**
 * WGSL defining `fn <fnName>(row: u32, col: u32, rows: u32, cols: u32) -> f32` over the u32 binding `name`: element
 * (row, col) of the packed [rows, cols] matrix. Blocked formats block along a row (cols = ggml's ne[0]).
 */
export function packedDecoder(format: PackedFormat, name: string, fnName: string): string {
  const R = byteReaders(name);
  const u8 = `${name}_u8`;
  const i8 = `${name}_i8`;
  const h = `${name}_f16`;
  const sig = `fn ${fnName}(row: u32, col: u32, rows: u32, cols: u32) -> f32`;
  switch (format) {
    case 'q8_0':
      // { d: f16, qs: i8[32] } = 34 bytes; x = q·d
      return `${R}
${sig} {
  let y = (row * (cols / 32u) + col / 32u) * 34u;
  return f32(${i8}(y + 2u + col % 32u)) * ${h}(y);
}`;
    case 'q4_0':
      // { d: f16, qs: u8[16] } = 18 bytes; element j < 16 in the low nibble of qs[j], j ≥ 16 in the high one of qs[j−16]
      return `${R}
${sig} {
  let y = (row * (cols / 32u) + col / 32u) * 18u;
  let j = col % 32u;
  let q = (${u8}(y + 2u + j % 16u) >> ((j / 16u) * 4u)) & 15u;
  return f32(i32(q) - 8) * ${h}(y);
}`;
    case 'q4_1':
      // { d: f16, m: f16, qs: u8[16] } = 20 bytes; x = q·d + m (q·d is exact in f32, so one rounding either way)
      return `${R}
${sig} {
  let y = (row * (cols / 32u) + col / 32u) * 20u;
  let j = col % 32u;
  let q = (${u8}(y + 4u + j % 16u) >> ((j / 16u) * 4u)) & 15u;
  return f32(q) * ${h}(y) + ${h}(y + 2u);
}`;
    case 'q4_k':
      // super-block of 256 = 144 bytes { d: f16, dmin: f16, scales: u8[12], qs: u8[128] }; 4 chunks of 64, each two
      // sub-blocks of 32 sharing qs[32c..32c+32) (low nibble, then high); 6-bit scale/min pairs as get_scale_min_k4.
      // x = (d·sc)·q − dmin·m: every product is exact in f32, the subtraction rounds once.
      return `${R}
${sig} {
  let y = (row * (cols / 256u) + col / 256u) * 144u;
  let e = col % 256u;
  let c = e / 64u;
  let hi = (e % 64u) / 32u;
  let l = e % 32u;
  let j = 2u * c + hi;
  var sc: u32;
  var mn: u32;
  if (j < 4u) {
    sc = ${u8}(y + 4u + j) & 63u;
    mn = ${u8}(y + 4u + j + 4u) & 63u;
  } else {
    sc = (${u8}(y + 4u + j + 4u) & 15u) | ((${u8}(y + 4u + j - 4u) >> 6u) << 4u);
    mn = (${u8}(y + 4u + j + 4u) >> 4u) | ((${u8}(y + 4u + j) >> 6u) << 4u);
  }
  let q = (${u8}(y + 16u + 32u * c + l) >> (hi * 4u)) & 15u;
  let d1 = ${h}(y) * f32(sc);
  let m1 = ${h}(y + 2u) * f32(mn);
  return d1 * f32(q) - m1;
}`;
    case 'q6_k':
      // super-block of 256 = 210 bytes { ql: u8[128], qh: u8[64], scales: i8[16], d: f16 }; two halves of 128, each
      // four quarters g of 32: low 4 bits from ql[64n + l + 32(g&1)] (nibble g>>1), high 2 from qh[32n + l] >> 2g,
      // scale sc[8n + l/16 + 2g]; x = d·sc·(q − 32): d·sc is exact, so the one rounding is the same in any association.
      return `${R}
${sig} {
  let y = (row * (cols / 256u) + col / 256u) * 210u;
  let e = col % 256u;
  let n = e / 128u;
  let w = e % 128u;
  let g = w / 32u;
  let l = w % 32u;
  let lo = (${u8}(y + 64u * n + l + 32u * (g & 1u)) >> ((g >> 1u) * 4u)) & 15u;
  let hb = (${u8}(y + 128u + 32u * n + l) >> (2u * g)) & 3u;
  let q = i32(lo | (hb << 4u)) - 32;
  let sc = ${i8}(y + 192u + 8u * n + l / 16u + 2u * g);
  return (${h}(y + 208u) * f32(sc)) * f32(q);
}`;
    case 'nf4': {
      // bitsandbytes: codes of the flattened matrix, first element of a pair in the HIGH nibble, then fp32 absmax
      // per block of 64 after ceil(n/2) code bytes.
      const codes = Array.from(NF4_CODE, f32Literal).join(', ');
      return `${R}
const ${fnName}_code = array<f32, 16>(${codes});
${sig} {
  let i = row * cols + col;
  let q = (${u8}(i >> 1u) >> (select(4u, 0u, (i & 1u) == 1u))) & 15u;
  let absmax = ${name}_f32((rows * cols + 1u) / 2u + 4u * (i / 64u));
  return ${fnName}_code[q] * absmax;
}`;
    }
    case 'int4-g128':
      // rows × ceil(cols/2) code bytes (even element low nibble), rows × groups fp16 scales, then zero points two per
      // byte (low nibble first); x = (q − z)·s, exact in f32.
      return `${R}
${sig} {
  let rowBytes = (cols + 1u) / 2u;
  let groups = (cols + 127u) / 128u;
  let scalesAt = rows * rowBytes;
  let zerosAt = scalesAt + 2u * rows * groups;
  let q = (${u8}(row * rowBytes + col / 2u) >> ((col & 1u) * 4u)) & 15u;
  let gi = row * groups + col / 128u;
  let z = (${u8}(zerosAt + gi / 2u) >> ((gi & 1u) * 4u)) & 15u;
  return f32(i32(q) - i32(z)) * ${h}(scalesAt + 2u * gi);
}`;
  }
}
