/**
 * QLoRA's packed frozen weights on the GPU: the matmul kernels decode each element of a quantized weight where the
 * tile is staged (quant-wgsl.ts). Proof, for every packed format:
 * - decoded values are bit-identical to the host reference dequantizer (x·Wᵀ and dY·W with an identity operand return
 *   W exactly), and for the GGML types the host reference equals the PyPI `gguf` package's dequantize bit for bit;
 * - products with the packed weight are bit-identical to the same kernel on the dequantized f32 weight, for the
 *   forward (x·Wᵀ) and input-gradient (dY·W) layouts, on the plain and the subgroup kernel families.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { GpuContext } from '../../engine/backend/webgpu/device.ts';
import { matmul, resolveMatmulPath, type LayoutB, type MatmulPath } from '../../engine/backend/webgpu/matmul.ts';
import type { Runner } from '../../engine/backend/webgpu/runner.ts';
import { createTensor, download, packedTensor, tensorFrom, type GpuTensor } from '../../engine/backend/webgpu/tensor.ts';
import { PACKED_FORMATS, PackedWeight, packedSizeBytes, type PackedFormat } from '../../engine/quant/packed-weight.ts';
import { f32ToF16Bits } from '../../engine/quant/half.ts';
import { Rng } from '../../engine/util/rng.ts';
import { runPython } from '../helpers/python.ts';
import { gpuForTest, randn } from './gpu.ts';

let ctx: GpuContext;
let runner: Runner;
before(async () => ({ ctx, runner } = await gpuForTest()));
after(() => ctx.destroy());

/** Bytes of a random [rows, cols] weight in `f`: quantized from Gaussian values, or (K-quants, which the studio only reads) random blocks with finite fp16 scales. */
function randomPacked(f: PackedFormat, rows: number, cols: number, seed: number): PackedWeight {
  const rng = new Rng(seed);
  if (f !== 'q4_k' && f !== 'q6_k') return PackedWeight.quantize(f, randn(rng, rows * cols, 0.05), rows, cols);
  const bytes = new Uint8Array(packedSizeBytes(f, rows, cols));
  for (let i = 0; i < bytes.length; i++) bytes[i] = rng.nextU32() & 0xff;
  const setF16 = (off: number, v: number): void => {
    const h = f32ToF16Bits(v);
    bytes[off] = h & 0xff;
    bytes[off + 1] = h >>> 8;
  };
  const blockBytes = f === 'q4_k' ? 144 : 210;
  for (let y = 0; y < bytes.length; y += blockBytes) {
    if (f === 'q4_k') {
      setF16(y, rng.normal() * 1e-3);
      setF16(y + 2, Math.abs(rng.normal()) * 1e-3);
    } else {
      setF16(y + 208, rng.normal() * 1e-3);
    }
  }
  return new PackedWeight(f, rows, cols, bytes);
}

const GGML_NAME: Partial<Record<PackedFormat, string>> = { q8_0: 'Q8_0', q4_0: 'Q4_0', q4_1: 'Q4_1', q4_k: 'Q4_K', q6_k: 'Q6_K' };

/** Shapes per format: rows odd so tile edges run; cols a whole number of blocks, and not a multiple of the 64-wide tile where the format allows. */
function shape(f: PackedFormat): [number, number] {
  if (f === 'q4_k' || f === 'q6_k') return [37, 512];
  if (f === 'nf4' || f === 'int4-g128') return [37, 200];
  return [37, 96];
}

function identity(n: number): Float32Array {
  const out = new Float32Array(n * n);
  for (let i = 0; i < n; i++) out[i * n + i] = 1;
  return out;
}

async function product(a: Float32Array, b: GpuTensor, M: number, N: number, K: number, layoutB: LayoutB, path: MatmulPath): Promise<Float32Array> {
  const ta = tensorFrom(ctx, 'a', a, 'f32');
  const tc = createTensor(ctx, 'c', M * N, 'f32');
  await runner.runOnce((p) => matmul(p, { a: ta, b, out: tc, M, N, K, layoutA: 'mk', layoutB, path }));
  const [got] = await download(ctx, [tc]);
  ctx.allocator.destroy(ta.buffer);
  ctx.allocator.destroy(tc.buffer);
  return got;
}

function assertBitEqual(name: string, got: Float32Array, want: Float32Array): void {
  assert.equal(got.length, want.length, `${name}: length`);
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < g.length; i++) {
    // +0 and −0 compare equal as values (an exact zero from a sum of zeros may carry either sign)
    if (g[i] !== w[i] && !(got[i] === 0 && want[i] === 0)) assert.fail(`${name}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c];
  return out;
}

for (const f of PACKED_FORMATS) {
  test(`${f}: the GPU decodes every element exactly as the host reference`, async () => {
    const [rows, cols] = shape(f);
    const w = randomPacked(f, rows, cols, 11);
    const ref = w.dequantize();
    const tb = packedTensor(ctx, `w.${f}`, w);
    // I·Wᵀ with x·Wᵀ's layout gives Wᵀ; I·W with dY·W's layout gives W — each element through the decoder once.
    assertBitEqual(`${f} nk`, await product(identity(cols), tb, cols, rows, cols, 'nk', 'plain'), transpose(ref, rows, cols));
    assertBitEqual(`${f} kn`, await product(identity(rows), tb, rows, cols, rows, 'kn', 'plain'), ref);
    ctx.allocator.destroy(tb.buffer);
  });
}

test('the host dequantizers of the GGML types equal the PyPI gguf package bit for bit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'packed-'));
  try {
    const weights = new Map<string, PackedWeight>();
    for (const f of PACKED_FORMATS) {
      const name = GGML_NAME[f];
      if (!name) continue;
      const [rows, cols] = shape(f);
      const w = randomPacked(f, rows, cols, 23);
      weights.set(name, w);
      writeFileSync(join(dir, `${name}.bin`), w.bytes);
    }
    runPython('ggml_dequant.py', ['blocks', dir]);
    for (const [name, w] of weights) {
      const buf = readFileSync(join(dir, `${name}.f32`));
      assertBitEqual(`${w.format} vs gguf`, w.dequantize(), new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const f of PACKED_FORMATS) {
  test(`${f}: x·Wᵀ and dY·W on the packed weight equal the same kernels on its f32 dequantization`, async () => {
    const [N, K] = shape(f); // W is [out = N, in = K]
    const w = randomPacked(f, N, K, 5);
    const tq = packedTensor(ctx, `w.${f}`, w);
    const tf = tensorFrom(ctx, 'w.f32', w.dequantize(), 'f32');
    const rng = new Rng(9);
    const M = 19;
    const x = randn(rng, M * K);
    const dY = randn(rng, M * N);
    const paths: MatmulPath[] = ['plain'];
    if (resolveMatmulPath(ctx, { layoutA: 'mk', layoutB: 'nk', ta: 'f32', tb: f, tc: 'f32', bias: null }).path === 'subgroup') paths.push('subgroup');
    for (const path of paths) {
      assertBitEqual(`${f} x·Wᵀ ${path}`, await product(x, tq, M, N, K, 'nk', path), await product(x, tf, M, N, K, 'nk', path));
      assertBitEqual(`${f} dY·W ${path}`, await product(dY, tq, M, K, N, 'kn', path), await product(dY, tf, M, K, N, 'kn', path));
    }
    ctx.allocator.destroy(tq.buffer);
    ctx.allocator.destroy(tf.buffer);
  });
}

test('a packed weight read with the wrong shape is refused with both shapes named', async () => {
  const w = randomPacked('q4_0', 8, 64, 1);
  const tq = packedTensor(ctx, 'w.q4_0', w);
  const ta = createTensor(ctx, 'a', 4 * 32, 'f32');
  const tc = createTensor(ctx, 'c', 4 * 8, 'f32');
  await assert.rejects(
    runner.runOnce((p) => matmul(p, { a: ta, b: tq, out: tc, M: 4, N: 8, K: 32, layoutA: 'mk', layoutB: 'nk' })),
    /packed B 'w\.q4_0' is \[8, 64\], the product needs \[8, 32\]/,
  );
  for (const t of [tq, ta, tc]) ctx.allocator.destroy(t.buffer);
});

test('decoding one row (matvec) on a packed weight equals matvec on its f32 dequantization, for every format', async () => {
  const { matvec } = await import('../../engine/backend/webgpu/matvec.ts');
  for (const f of PACKED_FORMATS) {
    const [N, K] = shape(f);
    const w = randomPacked(f, N, K, 7);
    const tq = packedTensor(ctx, `w.${f}`, w);
    const tf = tensorFrom(ctx, 'w.f32', w.dequantize(), 'f32');
    const x = tensorFrom(ctx, 'x', randn(new Rng(3), K), 'f32');
    const yq = createTensor(ctx, 'yq', N, 'f32');
    const yf = createTensor(ctx, 'yf', N, 'f32');
    for (const lanes of [1, 8]) {
      await runner.runOnce((p) => {
        matvec(p, { y: yq, x, w: tq, N, K, lanes });
        matvec(p, { y: yf, x, w: tf, N, K, lanes });
      });
      const [gq, gf] = await download(ctx, [yq, yf]);
      assertBitEqual(`${f} matvec lanes ${lanes}`, gq, gf);
    }
    for (const t of [tq, tf, x, yq, yf]) ctx.allocator.destroy(t.buffer);
  }
});
