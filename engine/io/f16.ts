/**
 * IEEE half (f16) and bfloat16 conversions.
 *
 * Encoding goes through f32 first (a Float64Array input is rounded to f32, as `tensor.float().half()` does), then
 * rounds to nearest, ties to even. NaN keeps its sign and top payload bits like numpy's `astype(float16)`; bf16 NaN
 * becomes 0x7fc0 like torch. Decoding f16 uses a 65 536-entry table, so bulk decode is one lookup per value.
 */
import type { FloatArray } from '../model/types.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Bits of an f16 from the f32 bit pattern `bits` (round to nearest even). */
function f16FromF32Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const a = bits & 0x7fffffff;
  if (a >= 0x7f800000) {
    if (a === 0x7f800000) return sign | 0x7c00;
    const payload = (a & 0x7fffff) >>> 13;
    return sign | 0x7c00 | (payload === 0 ? 1 : payload);
  }
  // 65520 = halfway between 65504 (largest f16, odd mantissa) and 65536: ties to even → inf.
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a < 0x38800000) {
    // Below 2^-14: an f16 subnormal (or zero), counted in units of 2^-24. 2^-25 itself ties to even → 0.
    if (a <= 0x33000000) return sign;
    const e = a >>> 23;
    const m = (a & 0x7fffff) | 0x800000;
    const shift = 126 - e;
    let q = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (q & 1) === 1)) q++;
    return sign | q;
  }
  let h = (a - 0x38000000) >>> 13;
  const rem = a & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/** f16 bits of x (x is rounded to f32 first). */
export function f32ToF16(x: number): number {
  f32[0] = x;
  return f16FromF32Bits(u32[0]);
}

function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

let f16Table: Float32Array | null = null;

/** Value of every f16 bit pattern; NaN patterns keep their payload in the f32 bits. */
function table(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  const tb = new Uint32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const e = (h >>> 10) & 0x1f;
    if (e === 31 && (h & 0x3ff) !== 0) tb[h] = ((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13);
    else t[h] = f16BitsToNumber(h);
  }
  f16Table = t;
  return t;
}

/** Value of the f16 bit pattern h. */
export function f16ToF32(h: number): number {
  return table()[h & 0xffff];
}

/** bf16 bits of x (rounded to f32 first, then to nearest even; NaN → 0x7fc0). */
export function f32ToBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Value of the bf16 bit pattern b. */
export function bf16ToF32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0];
}

function asF32(src: FloatArray): Float32Array {
  return src instanceof Float32Array ? src : Float32Array.from(src);
}

/** f16 bit patterns of every value. */
export function encodeF16(src: FloatArray): Uint16Array {
  const f = asF32(src);
  const bits = new Uint32Array(f.buffer, f.byteOffset, f.length);
  const out = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16FromF32Bits(bits[i]);
  return out;
}

/** bf16 bit patterns of every value. */
export function encodeBf16(src: FloatArray): Uint16Array {
  const f = asF32(src);
  const bits = new Uint32Array(f.buffer, f.byteOffset, f.length);
  const out = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    out[i] = (b & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/** Decodes f16 bit patterns into dst (allocated when not given). */
export function decodeF16<T extends FloatArray = Float32Array>(src: Uint16Array, dst?: T): T {
  const out = dst ?? (new Float32Array(src.length) as T);
  if (out.length !== src.length) throw new Error(`decodeF16: destination has ${out.length} values, source ${src.length}`);
  const t = table();
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return out;
}

/** Decodes bf16 bit patterns into dst (allocated when not given). */
export function decodeBf16<T extends FloatArray = Float32Array>(src: Uint16Array, dst?: T): T {
  const out = dst ?? (new Float32Array(src.length) as T);
  if (out.length !== src.length) throw new Error(`decodeBf16: destination has ${out.length} values, source ${src.length}`);
  if (out instanceof Float32Array) {
    // Write the 32-bit patterns directly: a bf16 is the top half of an f32.
    const ob = new Uint32Array(out.buffer, out.byteOffset, out.length);
    for (let i = 0; i < src.length; i++) ob[i] = src[i] << 16;
  } else {
    for (let i = 0; i < src.length; i++) out[i] = bf16ToF32(src[i]);
  }
  return out;
}

/** Rounds every value to the nearest f16 in place (what storing as f16 and reading back gives). */
export function roundToF16InPlace(a: FloatArray): void {
  const t = table();
  for (let i = 0; i < a.length; i++) a[i] = t[f32ToF16(a[i])];
}
