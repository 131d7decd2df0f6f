/**
 * GGML block dequantization against the PyPI `gguf` package's `quants.dequantize` (numpy port of ggml's reference
 * dequantize_row_*), bit for bit: random blocks of every readable type (scales kept finite, so NaN payloads do not
 * blur the comparison; a second pass with raw random bytes compares NaN as NaN), and every tensor of the real
 * SmolLM2 GGUF by sha256 of its fp32 bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dequantizeGgml, GGML_BLOCK_LAYOUTS, GgmlTypeError } from '../../engine/quant/ggml-blocks.ts';
import { readGguf, readTensorF32 } from '../../engine/quant/gguf-reader.ts';
import { f32ToF16Bits } from '../../engine/quant/half.ts';
import { runPython } from '../helpers/python.ts';
import { realModelPath } from '../helpers/real-model.ts';
import { Rng } from '../../engine/util/rng.ts';

/** Byte offsets of the fp16 scale fields inside one block of each layout. */
const F16_FIELDS: Record<string, number[]> = {
  F16: [0],
  Q4_0: [0],
  Q4_1: [0, 2],
  Q5_0: [0],
  Q5_1: [0, 2],
  Q8_0: [0],
  Q2_K: [80, 82],
  Q3_K: [108],
  Q4_K: [0, 2],
  Q5_K: [0, 2],
  Q6_K: [208],
};

function randomBlocks(name: string, blockBytes: number, nBlocks: number, rng: Rng, finite: boolean): Uint8Array {
  const bytes = new Uint8Array(blockBytes * nBlocks);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rng.uniform() * 256);
  if (!finite) return bytes;
  const view = new DataView(bytes.buffer);
  for (let b = 0; b < nBlocks; b++) {
    if (name === 'F32') for (let j = 0; j < blockBytes; j += 4) view.setFloat32(b * blockBytes + j, (rng.uniform() - 0.5) * 8, true);
    if (name === 'BF16') for (let j = 0; j < blockBytes; j += 2) view.setUint16(b * blockBytes + j, Math.floor(rng.uniform() * 0x7f00) | (rng.uniform() < 0.5 ? 0x8000 : 0), true);
    for (const at of F16_FIELDS[name] ?? []) {
      // Scales from 2^-14 to ~4, either sign, a few exact zeros.
      const v = rng.uniform() < 0.05 ? 0 : (rng.uniform() < 0.5 ? -1 : 1) * 2 ** (rng.uniform() * 16 - 14);
      view.setUint16(b * blockBytes + at, f32ToF16Bits(v), true);
    }
  }
  return bytes;
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (ua[i] === ub[i] || (Number.isNaN(a[i]) && Number.isNaN(b[i]))) continue;
    assert.fail(`${what}: element ${i} is ${a[i]} (0x${ua[i].toString(16)}), gguf.quants.dequantize gives ${b[i]} (0x${ub[i].toString(16)})`);
  }
}

for (const finite of [true, false]) {
  test(`every readable GGML type dequantizes bit for bit as gguf.quants.dequantize (${finite ? 'finite scales' : 'raw random bytes'})`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'ggml-dequant-'));
    try {
      const rng = new Rng(finite ? 1234 : 987);
      const inputs = new Map<string, { type: number; bytes: Uint8Array }>();
      for (const l of Object.values(GGML_BLOCK_LAYOUTS)) {
        // 64 elements per block for the scalar types make them as long as the block types.
        const nBlocks = 8 * (l.blockSize === 1 ? 64 : 6);
        const bytes = randomBlocks(l.name, l.blockBytes, nBlocks, rng, finite);
        inputs.set(l.name, { type: l.type, bytes });
        writeFileSync(join(dir, `${l.name}.bin`), bytes);
      }
      assert.deepEqual([...inputs.keys()].sort(), ['BF16', 'F16', 'F32', 'Q2_K', 'Q3_K', 'Q4_0', 'Q4_1', 'Q4_K', 'Q5_0', 'Q5_1', 'Q5_K', 'Q6_K', 'Q8_0']);
      runPython('ggml_dequant.py', ['blocks', dir]);
      for (const [name, { type, bytes }] of inputs) {
        const raw = readFileSync(join(dir, `${name}.f32`));
        const ref = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
        sameBits(dequantizeGgml(type, bytes, name), ref, name);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('unreadable GGML types (IQ*, TQ*, integer) are refused naming the tensor and the type', () => {
  for (const [type, name] of [
    [16, 'IQ2_XXS'],
    [23, 'IQ4_XS'],
    [35, 'TQ2_0'],
    [26, 'I32'],
  ] as const) {
    assert.throws(() => dequantizeGgml(type, new Uint8Array(0), "model.gguf: tensor 'blk.0.attn_q.weight'"), (e: unknown) => {
      assert.ok(e instanceof GgmlTypeError);
      assert.match(e.message, new RegExp(`model\\.gguf: tensor 'blk\\.0\\.attn_q\\.weight': ggml type ${name} cannot be read`));
      return true;
    });
  }
  assert.throws(() => dequantizeGgml(99, new Uint8Array(0), 'x'), /ggml type #99 cannot be read/);
  assert.throws(() => dequantizeGgml(8, new Uint8Array(35), 'x'), /35 bytes is not a whole number of Q8_0 blocks \(34 bytes each\)/);
});

test('real model: every tensor of SmolLM2-135M-Instruct Q4_1 dequantizes as gguf.quants.dequantize (sha256 of the fp32 bytes)', { timeout: 600_000 }, () => {
  const path = realModelPath();
  const ref = JSON.parse(runPython('ggml_dequant.py', ['file', path])) as Record<string, string>;
  const file = readGguf(path);
  assert.equal(file.tensors.length, Object.keys(ref).length);
  const types = new Set<string>();
  for (const t of file.tensors) {
    const values = readTensorF32(file, t);
    types.add(t.typeName);
    const digest = createHash('sha256').update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest('hex');
    assert.equal(digest, ref[t.name], `${t.name} (${t.typeName})`);
  }
  assert.deepEqual([...types].sort(), ['F32', 'Q4_1', 'Q8_0']);
});
