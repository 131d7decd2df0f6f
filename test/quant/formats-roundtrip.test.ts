/**
 * Pack → unpack for every format: sizes, and the per-element error bound each format guarantees by construction
 * (half a quantization step, widened only by the fp16 rounding of stored scales).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QUANT_FORMATS, QUANT_FORMAT_NAMES, parseFormatList } from '../../engine/quant/format.ts';
import { NF4_CODE } from '../../engine/quant/nf4.ts';
import { roundToF16 } from '../../engine/quant/half.ts';
import { gaussianMatrix } from './data.ts';

const ROWS = 12;
const COLS = 320; // 10 GGML blocks, 2.5 int4 groups, 60 NF4 blocks

function blockStats(w: Float32Array, i0: number, i1: number): { min: number; max: number; amax: number } {
  let min = Infinity;
  let max = -Infinity;
  let amax = 0;
  for (let i = i0; i < i1; i++) {
    min = Math.min(min, w[i]);
    max = Math.max(max, w[i]);
    amax = Math.max(amax, Math.abs(w[i]));
  }
  return { min, max, amax };
}

function roundTrip(name: string, w: Float32Array, rows: number, cols: number): Float32Array {
  const fmt = QUANT_FORMATS[name as keyof typeof QUANT_FORMATS];
  const packed = fmt.quantize(w, rows, cols);
  assert.equal(packed.length, fmt.sizeBytes(rows, cols), `${name}: packed size`);
  return fmt.dequantize(packed, rows, cols);
}

const w = gaussianMatrix(ROWS, COLS, 3, 0.03);
const tiny = 1e-6 * 0.03; // a few fp32 ulps at this scale

test('sizes agree with bits per weight when the blocks fit', () => {
  for (const name of QUANT_FORMAT_NAMES) {
    const fmt = QUANT_FORMATS[name];
    if (name === 'int8') {
      assert.equal(fmt.sizeBytes(ROWS, COLS), ROWS * COLS + 4 * ROWS); // 8 bits + one fp32 scale per row
      continue;
    }
    assert.equal(fmt.sizeBytes(ROWS, 256), (fmt.bitsPerWeight * ROWS * 256) / 8, name);
  }
  assert.equal(QUANT_FORMATS.q8_0.sizeBytes(1, 32), 34);
  assert.equal(QUANT_FORMATS.q4_0.sizeBytes(1, 32), 18);
  assert.equal(QUANT_FORMATS.q4_1.sizeBytes(1, 32), 20);
  assert.equal(QUANT_FORMATS.nf4.sizeBytes(1, 64), 32 + 4);
  assert.equal(QUANT_FORMATS['int4-g128'].sizeBytes(2, 128), 128 + 4 + 1);
});

test('f16: relative error ≤ 2^-11 (2^-25 absolute in the subnormal range)', () => {
  const x = new Float32Array([...w, 1e-7, -3e-8, 6e-5, 65504, -1234.5678]);
  const back = roundTrip('f16', x, 1, x.length);
  for (let i = 0; i < x.length; i++) assert.ok(Math.abs(back[i] - x[i]) <= Math.max(Math.abs(x[i]) * 2 ** -11, 2 ** -25), `f16 at ${i}: ${x[i]} → ${back[i]}`);
});

test('int8 per channel: error ≤ s/2 with s = absmax(row)/127; the row maximum is exact', () => {
  const back = roundTrip('int8', w, ROWS, COLS);
  for (let r = 0; r < ROWS; r++) {
    const { amax } = blockStats(w, r * COLS, (r + 1) * COLS);
    const s = amax / 127;
    for (let j = 0; j < COLS; j++) {
      const i = r * COLS + j;
      assert.ok(Math.abs(back[i] - w[i]) <= s / 2 + tiny, `int8 [${r}, ${j}]`);
      if (Math.abs(w[i]) === amax) assert.ok(Math.abs(back[i] - w[i]) <= tiny);
    }
  }
});

function checkInt4(x: Float32Array, rows: number, cols: number): void {
  const back = roundTrip('int4-g128', x, rows, cols);
  for (let r = 0; r < rows; r++) {
    for (let g0 = 0; g0 < cols; g0 += 128) {
      const g1 = Math.min(cols, g0 + 128);
      const { min, max, amax } = blockStats(x, r * cols + g0, r * cols + g1);
      assert.ok(min < 0 && max > 0, 'test data: gaussian groups span 0');
      const s = (max - min) / 15;
      const s16 = roundToF16(s);
      const bound = s16 / 2 + 16 * Math.abs(s - s16) + 1e-6 * amax;
      for (let j = g0; j < g1; j++) assert.ok(Math.abs(back[r * cols + j] - x[r * cols + j]) <= bound, `int4 [${r}, ${j}] of [${rows}, ${cols}]`);
    }
  }
}

test('int4 g128: error ≤ s/2 per group (groups spanning 0), fp16 scale slack included; partial last group', () => {
  checkInt4(w, ROWS, COLS);
  // Odd row length: nibble padding inside a row and a 3-column last group.
  const odd = gaussianMatrix(3, 131, 5);
  for (let r = 0; r < 3; r++) {
    odd[r * 131 + 128] = -Math.abs(odd[r * 131 + 128]);
    odd[r * 131 + 129] = Math.abs(odd[r * 131 + 129]);
  }
  checkInt4(odd, 3, 131);
});

test('nf4: every weight goes to the nearest code·absmax of its block of 64; error ≤ 0.152·absmax', () => {
  const n = 64 * 5 + 17; // a partial last block and an odd count
  const x = gaussianMatrix(1, n, 9);
  const back = roundTrip('nf4', x, 1, n);
  for (let b0 = 0; b0 < n; b0 += 64) {
    const b1 = Math.min(n, b0 + 64);
    const { amax } = blockStats(x, b0, b1);
    for (let i = b0; i < b1; i++) {
      const err = Math.abs(back[i] - x[i]);
      assert.ok(err <= 0.152 * amax, `nf4 at ${i}`);
      for (const c of NF4_CODE) assert.ok(err <= Math.abs(x[i] - c * amax) + 1e-6 * amax, `nf4 at ${i}: code ${c} is nearer`);
      if (Math.abs(x[i]) === amax) assert.equal(back[i], x[i]);
    }
  }
});

test('q8_0: error ≤ d/2 (+ the fp16 rounding of d times 127)', () => {
  const back = roundTrip('q8_0', w, ROWS, COLS);
  for (let b0 = 0; b0 < w.length; b0 += 32) {
    const d = blockStats(w, b0, b0 + 32).amax / 127;
    const bound = d / 2 + 127 * Math.abs(d - roundToF16(d)) + tiny;
    for (let i = b0; i < b0 + 32; i++) assert.ok(Math.abs(back[i] - w[i]) <= bound, `q8_0 at ${i}`);
  }
});

test('q4_0: error ≤ d/2 inside the grid, ≤ |d| on the clipped side; the largest value is kept', () => {
  const back = roundTrip('q4_0', w, ROWS, COLS);
  for (let b0 = 0; b0 < w.length; b0 += 32) {
    let m = 0;
    for (let i = b0; i < b0 + 32; i++) if (Math.abs(w[i]) > Math.abs(m)) m = w[i];
    const d = m / -8;
    const slack = 8 * Math.abs(d - roundToF16(d)) + tiny;
    for (let i = b0; i < b0 + 32; i++) {
      const err = Math.abs(back[i] - w[i]);
      // Levels run from −8d = m to 7d: values beyond 7|d| on the side opposite to m are clipped.
      const clipped = Math.sign(w[i]) !== Math.sign(m) && Math.abs(w[i]) > 7 * Math.abs(d);
      assert.ok(err <= (clipped ? Math.abs(d) : Math.abs(d) / 2) + slack, `q4_0 at ${i}`);
      if (w[i] === m) assert.ok(err <= slack);
    }
  }
});

test('q4_1: error ≤ d/2 (+ fp16 rounding of d and min)', () => {
  const back = roundTrip('q4_1', w, ROWS, COLS);
  for (let b0 = 0; b0 < w.length; b0 += 32) {
    const { min, max } = blockStats(w, b0, b0 + 32);
    const d = (max - min) / 15;
    const bound = d / 2 + 15 * Math.abs(d - roundToF16(d)) + Math.abs(min - roundToF16(min)) + tiny;
    for (let i = b0; i < b0 + 32; i++) assert.ok(Math.abs(back[i] - w[i]) <= bound, `q4_1 at ${i}`);
  }
});

test('levels(): every dequantized weight is one of the levels of its block', () => {
  for (const name of QUANT_FORMAT_NAMES) {
    const fmt = QUANT_FORMATS[name];
    const packed = fmt.quantize(w, ROWS, COLS);
    const back = fmt.dequantize(packed, ROWS, COLS);
    for (const i of [0, 31, 32, 200, 777, ROWS * COLS - 1]) {
      const lv = fmt.levels(packed, ROWS, COLS, i);
      if (name === 'f16') {
        assert.equal(lv, null);
        continue;
      }
      assert.ok(lv !== null && lv.includes(back[i]), `${name}: value ${i} (${back[i]}) not among its block's levels`);
      for (let k = 1; k < lv.length; k++) assert.ok(lv[k] >= lv[k - 1], `${name}: levels ascending`);
    }
  }
});

test('bad input names the format and what is wrong', () => {
  assert.throws(() => parseFormatList('int8,q5_k'), /unknown quantization format 'q5_k'/);
  assert.throws(() => parseFormatList('int8,int8'), /format 'int8' is listed twice/);
  assert.deepEqual(parseFormatList(' f16, q4_0 '), ['f16', 'q4_0']);
  assert.throws(() => QUANT_FORMATS.nf4.dequantize(new Uint8Array(3), 1, 64), /nf4: a \[1, 64\] matrix takes 36 bytes, got 3/);
  assert.throws(() => QUANT_FORMATS.int8.quantize(new Float32Array(5), 2, 3), /int8: expected 2×3 = 6 values, got 5/);
});
