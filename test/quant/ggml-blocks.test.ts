/**
 * GGML blocks and fp16 bits derived by hand from ggml's reference quantizers (ggml-quants.c):
 *   Q8_0: d = amax/127, id = 1/d, q = roundf(x·id)                      → { fp16 d, int8 q[32] }
 *   Q4_0: max = signed value of largest |x| (first on ties), d = max/−8, → { fp16 d, u8 qs[16] },
 *         q = min(15, (int8)(x·id + 8.5f)), qs[j] = q[j] | q[j+16] << 4
 *   Q4_1: d = (max − min)/15, q = min(15, (int8)((x − min)·id + 0.5f))   → { fp16 d, fp16 min, u8 qs[16] }
 * fp16 bits used below: 1.0 = 0x3C00, 2.0 = 0x4000, −0.5 = 0xB800, 0.5 = 0x3800, −1.0 = 0xBC00, −8.0 = 0xC800;
 * 1/127 = 0.0078740157 lies between 0x2008 = 2^-7·(1 + 8/1024) = 0.0078735352 (off by 4.8e-7) and
 * 0x2009 = 0.0078811646 (off by 7.1e-6), so it rounds to 0x2008.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { q8_0Format } from '../../engine/quant/ggml-q8_0.ts';
import { q4_0Format } from '../../engine/quant/ggml-q4_0.ts';
import { q4_1Format } from '../../engine/quant/ggml-q4_1.ts';
import { f32ToF16Bits, f16BitsToF32 } from '../../engine/quant/half.ts';

function block(values: Record<number, number>, fill = 0): Float32Array {
  const b = new Float32Array(32).fill(fill);
  for (const [k, v] of Object.entries(values)) b[Number(k)] = v;
  return b;
}

function hex(bytes: ArrayLike<number>): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

function expectBytes(actual: Uint8Array, expected: number[]): void {
  assert.equal(hex(actual), hex(expected));
}

const zeros = (n: number, v = 0): number[] => new Array<number>(n).fill(v);

test('fp16: round to nearest even, subnormals, overflow, NaN', () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff], // largest finite
    [65520, 0x7c00], // halfway between 65504 and 65536: ties to even (the next "even" is infinity)
    [65519, 0x7bff],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // exactly half of it: ties to even → 0
    [3 * 2 ** -25, 0x0002], // 1.5 subnormal steps → 2
    [1 + 2 ** -11, 0x3c00], // halfway between 1 and 1 + 2^-10: even mantissa (0) wins
    [1 + 3 * 2 ** -11, 0x3c02], // halfway between mantissa 1 and 2: even (2) wins
    [2 ** -14, 0x0400], // smallest normal
    [-0, 0x8000],
    [Infinity, 0x7c00],
  ];
  for (const [x, bits] of cases) assert.equal(f32ToF16Bits(x), bits, `fp16(${x})`);
  assert.equal(f32ToF16Bits(NaN) & 0x7e00, 0x7e00);
  assert.equal(f16BitsToF32(0x3555), 0.333251953125); // 2^-2·(1 + 341/1024)
  assert.equal(f16BitsToF32(0xfbff), -65504);
});

test('Q8_0: half-away ties, exact scale, all-zero block, negative extreme, inexact scale', () => {
  // Block A: amax 127 → d = 1, id = 1; roundf: 63.5 → 64, −63.5 → −64, 0.5 → 1, −0.5 → −1, 1.5 → 2, 2.5 → 3.
  const a = block({ 0: 127, 1: -127, 2: 63.5, 3: -63.5, 4: 0.5, 5: -0.5, 6: 1.5, 7: 2.5 });
  // Block B: all zero → d = 0, id = 0, every q = 0.
  const b = block({});
  // Block C: negative extreme −254 → amax 254, d = 2, id = 0.5: −254 → −127, 2 → 1, −1 → −0.5 → −1, 3 → 1.5 → 2.
  const c = block({ 0: -254, 1: 2, 2: -1, 3: 3 });
  // Block D: amax 1 → d = fp32(1/127), stored as 0x2008; id ≈ 127: 1 → 127, 0.25 → 31.75 → 32, −1 → −127.
  const d = block({ 0: 1, 1: 0.25, 2: -1 });
  const w = new Float32Array([...a, ...b, ...c, ...d]);
  const out = q8_0Format.quantize(w, 1, 128);
  expectBytes(out.subarray(0, 34), [0x00, 0x3c, 0x7f, 0x81, 0x40, 0xc0, 0x01, 0xff, 0x02, 0x03, ...zeros(24)]);
  expectBytes(out.subarray(34, 68), zeros(34));
  expectBytes(out.subarray(68, 102), [0x00, 0x40, 0x81, 0x01, 0xff, 0x02, ...zeros(28)]);
  expectBytes(out.subarray(102, 136), [0x08, 0x20, 0x7f, 0x20, 0x81, ...zeros(29)]);
  const back = q8_0Format.dequantize(out, 1, 128);
  assert.deepEqual(Array.from(back.subarray(0, 8)), [127, -127, 64, -64, 1, -1, 2, 3]);
  assert.deepEqual(Array.from(back.subarray(64, 68)), [-254, 2, -2, 4]);
  assert.equal(back[96], 127 * 0.00787353515625);
});

test('Q4_0: signed max, clipping at q = 15, ties, an fp32 rounding step, all-zero block', () => {
  // Block A: −8 has the largest magnitude (the later +8 does not replace it: strict <) → d = −8/−8 = 1, id = 1.
  // q = min(15, trunc(x + 8.5)): −8 → 0, 7 → 15, 8 → 16 → 15, 0 → 8, −0.5 → 8, 0.5 → 9, −4.5 → 4,
  // 0.5 − 2^-25 → fp32(8.99999997) = 9 (in f64 it would truncate to 8); −7.75 → 0, 3.25 → 11.
  const a = block({ 0: -8, 1: 7, 2: 8, 3: 0, 4: -0.5, 5: 0.5, 6: -4.5, 7: 0.5 - 2 ** -25, 16: -7.75, 17: 3.25 });
  // Block B: +4 is the largest (−4 ties in magnitude but comes later) → d = 4/−8 = −0.5 (0xB800), id = −2.
  // q = min(15, trunc(−2x + 8.5)): 4 → 0, −4 → 16 → 15, 1 → 6, −0.25 → 9, 0.25 → 8, 0 → 8.
  const b = block({ 0: 4, 1: -4, 2: 1, 3: -0.25, 4: 0.25, 16: -4 });
  // Block C: all zero → max = +0, d = +0/−8 = −0 in IEEE arithmetic (fp16 0x8000), id = 0 → q = trunc(8.5) = 8.
  const c = block({});
  const w = new Float32Array([...a, ...b, ...c]);
  const out = q4_0Format.quantize(w, 1, 96);
  // qs[j] = q[j] | q[j+16] << 4
  expectBytes(out.subarray(0, 18), [0x00, 0x3c, 0x00, 0xbf, 0x8f, 0x88, 0x88, 0x89, 0x84, 0x89, ...zeros(8, 0x88)]);
  expectBytes(out.subarray(18, 36), [0x00, 0xb8, 0xf0, 0x8f, 0x86, 0x89, 0x88, ...zeros(11, 0x88)]);
  expectBytes(out.subarray(36, 54), [0x00, 0x80, ...zeros(16, 0x88)]);
  const back = q4_0Format.dequantize(out, 1, 96);
  // (q − 8)·d
  assert.deepEqual(Array.from(back.subarray(0, 8)), [-8, 7, 7, 0, 0, 1, -4, 1]);
  assert.deepEqual(Array.from(back.subarray(32, 37)), [4, -3.5, 1, -0.5, -0]); // 0·(−0.5) = −0
  assert.equal(back[48], -3.5);
});

test('Q4_1: min/max scale, ties, all-zero block, all-negative block', () => {
  // Block A: min −1, max 14 → d = 1, id = 1, m = −1 (0xBC00). q = min(15, trunc(x + 1 + 0.5)):
  // −1 → 0, 14 → 15, 0.5 → 2, 1.5 → 3, −0.5 → 1, 0 → 1, 13.75 → 15.
  const a = block({ 0: -1, 1: 14, 2: 0.5, 3: 1.5, 4: -0.5, 16: 13.75 });
  // Block B: all zero → d = 0, m = 0, q = trunc(0.5) = 0.
  const b = block({});
  // Block C: min −8, max −0.5 → d = 0.5 (0x3800), id = 2, m = −8 (0xC800). q = trunc(2(x + 8) + 0.5):
  // −8 → 0, −0.5 → 15, −4 → 8, −5.25 → 6.
  const c = block({ 0: -8, 1: -0.5, 2: -4, 3: -5.25, 16: -0.5 }, -8);
  const w = new Float32Array([...a, ...b, ...c]);
  const out = q4_1Format.quantize(w, 1, 96);
  expectBytes(out.subarray(0, 20), [0x00, 0x3c, 0x00, 0xbc, 0xf0, 0x1f, 0x12, 0x13, 0x11, ...zeros(11, 0x11)]);
  expectBytes(out.subarray(20, 40), zeros(20));
  expectBytes(out.subarray(40, 60), [0x00, 0x38, 0x00, 0xc8, 0xf0, 0x0f, 0x08, 0x06, ...zeros(12)]);
  const back = q4_1Format.dequantize(out, 1, 96);
  // q·d + m
  assert.deepEqual(Array.from(back.subarray(0, 6)), [-1, 14, 1, 2, 0, 0]);
  assert.deepEqual(Array.from(back.subarray(64, 68)), [-8, -0.5, -4, -5]);
});

test('GGML formats reject rows that do not split into blocks of 32, and wrong byte counts', () => {
  assert.throws(() => q8_0Format.quantize(new Float32Array(40), 1, 40), /q8_0: the row length \(40\) must be a multiple of the block size 32/);
  assert.throws(() => q4_0Format.dequantize(new Uint8Array(17), 1, 32), /q4_0: a \[1, 32\] matrix takes 18 bytes, got 17/);
  assert.throws(() => q4_1Format.quantize(new Float32Array(31), 1, 32), /q4_1: expected 32 values, got 31/);
});
