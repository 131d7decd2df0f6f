/**
 * Cross-check against independent implementations: the PyPI `gguf` package's numpy ports of ggml's reference
 * quantizers (byte for byte), numpy's float16 cast, and numpy/torch versions of NF4, INT8 per-channel and AWQ-style
 * INT4 (dequantized values, bit for bit).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPython } from '../helpers/python.ts';
import { QUANT_FORMATS, QUANT_FORMAT_NAMES } from '../../engine/quant/format.ts';
import { edgeCaseMatrix, gaussianMatrix } from './data.ts';

function readF32(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function firstBitMismatch(a: Float32Array, b: Float32Array): number {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i] && !(a[i] === 0 && b[i] === 0)) return i;
  return -1;
}

for (const [label, rows, cols, make] of [
  ['edge cases', 32, 256, () => edgeCaseMatrix(32, 256, 7)],
  ['gaussian', 24, 384, () => gaussianMatrix(24, 384, 11, 0.05)],
] as const) {
  test(`every format matches the Python reference on ${label} [${rows}, ${cols}]`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'quant-ref-'));
    try {
      const w = make();
      writeFileSync(join(dir, 'w.f32'), new Uint8Array(w.buffer));
      runPython('quant_reference.py', [join(dir, 'w.f32'), String(rows), String(cols), dir, QUANT_FORMAT_NAMES.join(',')]);
      for (const name of QUANT_FORMAT_NAMES) {
        const fmt = QUANT_FORMATS[name];
        const packed = fmt.quantize(w, rows, cols);
        assert.equal(packed.length, fmt.sizeBytes(rows, cols), `${name}: size`);
        if (name === 'q8_0' || name === 'q4_0' || name === 'q4_1' || name === 'f16') {
          const ref = new Uint8Array(readFileSync(join(dir, `${name}.bin`)));
          assert.equal(packed.length, ref.length, `${name}: byte length`);
          const bad = packed.findIndex((v, i) => v !== ref[i]);
          assert.equal(bad, -1, `${name}: first differing byte at ${bad} (ours ${packed[bad]}, gguf ${ref[bad]})`);
        }
        const deq = fmt.dequantize(packed, rows, cols);
        const refDeq = readF32(join(dir, `${name}.deq.f32`));
        const i = firstBitMismatch(deq, refDeq);
        assert.equal(i, -1, `${name}: dequantized value ${i} (row ${Math.floor(i / cols)}) is ${deq[i]}, reference ${refDeq[i]} (w = ${w[i]})`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
