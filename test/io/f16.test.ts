import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { bf16ToF32, decodeBf16, decodeF16, encodeBf16, encodeF16, f16ToF32, f32ToBf16, f32ToF16 } from '../../engine/io/f16.ts';
import { runPython } from '../helpers/python.ts';

const hex = (n: number): string => '0x' + n.toString(16).padStart(4, '0');

describe('f16 encode: IEEE bit patterns', () => {
  // Expected patterns follow from the IEEE 754 binary16 layout (1 sign, 5 exponent bits biased 15, 10 mantissa bits).
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite
    [65519.99, 0x7bff], // below the midpoint to 65536
    [65520, 0x7c00], // midpoint: ties to even (mantissa 0x3ff is odd) → inf
    [1e6, 0x7c00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // half the smallest subnormal: tie to even → 0
    [-(2 ** -25), 0x8000],
    [1.5 * 2 ** -25, 0x0001], // above the tie → rounds up
    [3 * 2 ** -25, 0x0002], // 1.5 units: tie between 1 and 2 → even 2
    [5 * 2 ** -25, 0x0002], // 2.5 units: tie between 2 and 3 → even 2
    [2 ** -14 - 2 ** -25, 0x0400], // 1023.5 units: tie → 1024, the smallest normal
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10 → even (1)
    [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 and 0x3c02 → even
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
    [2049, 0x6800], // 2048 + 1: tie → even 2048
    [2051, 0x6802], // tie between 2050 (0x6801) and 2052 (0x6802) → even
  ];
  for (const [x, bits] of cases) {
    test(`${x} → ${hex(bits)}`, () => assert.equal(hex(f32ToF16(x)), hex(bits)));
  }
  test('NaN → quiet NaN with sign kept', () => {
    assert.equal(hex(f32ToF16(NaN) & 0x7fff), hex(0x7e00));
    const negNaN = new Float32Array(new Uint32Array([0xffc00000]).buffer)[0];
    assert.equal(hex(f32ToF16(negNaN)), hex(0xfe00));
  });
});

describe('f16 decode', () => {
  const cases: [number, number][] = [
    [0x3c00, 1],
    [0xc000, -2],
    [0x0001, 2 ** -24],
    [0x03ff, 1023 * 2 ** -24],
    [0x0400, 2 ** -14],
    [0x7bff, 65504],
    [0x3555, 0.333251953125],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
  ];
  for (const [bits, x] of cases) test(`${hex(bits)} → ${x}`, () => assert.equal(f16ToF32(bits), x));
  test('signed zero and NaN', () => {
    assert.ok(Object.is(f16ToF32(0x8000), -0));
    assert.ok(Number.isNaN(f16ToF32(0x7e00)));
    assert.ok(Number.isNaN(f16ToF32(0x7c01)));
  });
  test('every finite f16 survives decode → encode', () => {
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue;
      assert.equal(f32ToF16(f16ToF32(h)), h, hex(h));
    }
  });
  test('bulk decode into Float64Array equals scalar decode', () => {
    const bits = Uint16Array.from([0x3c00, 0x0001, 0xfbff, 0x8000]);
    const out = decodeF16(bits, new Float64Array(4));
    assert.deepEqual([...out], [1, 2 ** -24, -65504, -0]);
  });
});

describe('bf16', () => {
  const enc: [number, number][] = [
    [1, 0x3f80],
    [-2, 0xc000],
    [1 + 2 ** -8, 0x3f80], // tie → even
    [1 + 3 * 2 ** -8, 0x3f82], // tie between 0x3f81 and 0x3f82 → even
    [1 + 2 ** -8 + 2 ** -20, 0x3f81],
    [Infinity, 0x7f80],
    [-Infinity, 0xff80],
    [3.4028234663852886e38, 0x7f80], // f32 max rounds up to inf
    [2 ** -133, 0x0001], // an f32 subnormal that is a bf16 subnormal
  ];
  for (const [x, bits] of enc) test(`${x} → ${hex(bits)}`, () => assert.equal(hex(f32ToBf16(x)), hex(bits)));
  test('NaN → 0x7fc0, decode', () => {
    assert.equal(hex(f32ToBf16(NaN)), hex(0x7fc0));
    assert.equal(bf16ToF32(0x3f80), 1);
    assert.equal(bf16ToF32(0xc0a0), -5);
    assert.ok(Number.isNaN(bf16ToF32(0x7fc0)));
    const back = decodeBf16(Uint16Array.from([0x3f80, 0xc0a0]), new Float64Array(2));
    assert.deepEqual([...back], [1, -5]);
  });
});

describe('f16 / bf16 against numpy and torch on random values', () => {
  const dir = mkdtempSync(join(tmpdir(), 'f16-ref-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('encode and decode match bit for bit', () => {
    // Random bit patterns (every exponent) plus values in and around the f16 range, and exact ties.
    let s = 12345;
    const rand = (): number => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 4294967296;
    };
    const n = 30000;
    const x = new Float32Array(n);
    const bits = new Uint32Array(x.buffer);
    for (let i = 0; i < n; i++) {
      const kind = i % 5;
      if (kind === 0) {
        bits[i] = Math.floor(rand() * 4294967296);
        if ((bits[i] & 0x7f800000) === 0x7f800000) bits[i] &= 0xbfffffff; // no NaN/inf here
      } else if (kind === 1) x[i] = (rand() * 2 - 1) * 70000;
      else if (kind === 2) x[i] = (rand() * 2 - 1) * 2 ** -13;
      else if (kind === 3) x[i] = (rand() * 2 - 1) * 4;
      else {
        // f32 values exactly halfway between two f16 or bf16 neighbours
        const h = Math.floor(rand() * 0x7bff);
        x[i] = (f16ToF32(h) + f16ToF32(h + 1)) / 2;
        if (i % 2) x[i] = (bf16ToF32(h) + bf16ToF32(h + 1)) / 2;
      }
    }
    const inPath = join(dir, 'x.f32');
    writeFileSync(inPath, new Uint8Array(x.buffer));
    runPython('f16_reference.py', [inPath, dir]);
    const npF16 = new Uint16Array(new Uint8Array(readFileSync(join(dir, 'f16.bin'))).buffer);
    const torchBf16 = new Uint16Array(new Uint8Array(readFileSync(join(dir, 'bf16.bin'))).buffer);
    const ours16 = encodeF16(x);
    const oursBf = encodeBf16(x);
    let bad16 = 0;
    let badBf = 0;
    for (let i = 0; i < n; i++) {
      if (ours16[i] !== npF16[i] && bad16++ < 5) console.error(`f16 ${x[i]}: ours ${hex(ours16[i])} numpy ${hex(npF16[i])}`);
      if (oursBf[i] !== torchBf16[i] && badBf++ < 5) console.error(`bf16 ${x[i]}: ours ${hex(oursBf[i])} torch ${hex(torchBf16[i])}`);
    }
    assert.equal(bad16, 0, 'f16 encodings differing from numpy');
    assert.equal(badBf, 0, 'bf16 encodings differing from torch');

    const npDecode = new Float32Array(new Uint8Array(readFileSync(join(dir, 'f16_decode.bin'))).buffer);
    const all = new Uint16Array(65536).map((_, i) => i);
    const ours = decodeF16(all);
    const ob = new Uint32Array(ours.buffer);
    const nb = new Uint32Array(npDecode.buffer);
    for (let h = 0; h < 65536; h++) {
      if (Number.isNaN(npDecode[h])) assert.ok(Number.isNaN(ours[h]), hex(h));
      else assert.equal(ob[h], nb[h], `decode ${hex(h)}`);
    }
  });
});
