/**
 * QLoRA on the cpu: products with a packed (quantized) frozen weight, for every packed format, equal the same
 * products on the f32 weight PackedWeight.dequantize() gives — bit for bit, since the kernels decode panels to exactly
 * those floats and run the f32 micro-kernels in the same summation order. Native (every ISA this CPU runs, 1/2/3
 * threads) and portable (serial, and the thread pool split by rows and by columns over 2 and 3 parts), on odd shapes
 * that cross the kernels' tiles and the formats' blocks. Also: the decoded rows equal dequantize(), and bad bytes are
 * refused with the size named.
 */
process.env.LORA_STUDIO_CPU_THREADS = '3';

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { matmulAB as poolAB, matmulABt as poolABt, runMatmulPart } from '../../engine/backend/cpu/matmul.ts';
import { nativeOps } from '../../engine/backend/cpu/native-ops.ts';
import { nativeStatus, type NativeCpu } from '../../engine/backend/cpu/native.ts';
import { sharedCtor, toSharedPacked } from '../../engine/backend/cpu/shared-arrays.ts';
import { configuredThreads, cpuPool, sharedRef, type MatmulPart } from '../../engine/backend/cpu/thread-pool.ts';
import * as linear from '../../engine/model/linear.ts';
import { matmulAB, matmulABt } from '../../engine/model/matmul.ts';
import { decodePackedRows, PACKED_WTYPE } from '../../engine/model/packed-rows.ts';
import type { Linear, LoraPair } from '../../engine/model/types.ts';
import { PACKED_FORMATS, PackedWeight, type PackedFormat } from '../../engine/quant/packed-weight.ts';
import { Rng } from '../../engine/util/rng.ts';
import { packedShape, randomPacked } from '../helpers/packed-weights.ts';
import { runPython } from '../helpers/python.ts';

const status = nativeStatus();
assert.ok(status.native, `the native cpu kernels are not loaded: ${status.reason} (build them with npm run build:native)`);
const native: NativeCpu = status.native;
const SharedF32 = sharedCtor(Float32Array) as unknown as new (n: number) => Float32Array;

function rand(n: number, rng: Rng, scale = 1, F: new (n: number) => Float32Array = Float32Array): Float32Array {
  const a = new F(n);
  for (let i = 0; i < n; i++) a[i] = scale * rng.normal();
  return a;
}

function sameBits(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) assert.fail(`${what}: element ${i} is ${got[i]}, on the dequantized f32 weight ${want[i]}`);
}

const weights = new Map<PackedFormat, PackedWeight>();
function weightOf(f: PackedFormat): PackedWeight {
  let w = weights.get(f);
  if (!w) {
    const [rows, cols] = packedShape(f);
    w = randomPacked(f, rows, cols, 11 + PACKED_FORMATS.indexOf(f));
    weights.set(f, w);
  }
  return w;
}

test('decoded rows of every packed format are the values of dequantize(), for any row range', () => {
  for (const f of PACKED_FORMATS) {
    const w = weightOf(f);
    const full = w.dequantize();
    assert.ok(full.some((x) => x !== 0) && full.every(Number.isFinite), `${f}: a usable random weight`);
    for (const [r0, nr] of [[0, w.rows], [5, 1], [w.rows - 3, 3], [7, 13]]) {
      const dst = new Float32Array(nr * w.cols);
      decodePackedRows(dst, w, r0, nr);
      sameBits(dst, full.subarray(r0 * w.cols, (r0 + nr) * w.cols), `${f} rows [${r0}, ${r0 + nr})`);
    }
  }
});

/**
 * W [rows, cols] as the native kernels decode it: I·Wᵀ has one non-zero term per sum (exact), so it is Wᵀ — up to the
 * sign of zeros (+0 + −0 = +0), which `sameValues` ignores.
 */
function nativeDecoded(w: PackedWeight): Float32Array {
  const { rows: N, cols: K } = w;
  const eye = new Float32Array(K * K);
  for (let i = 0; i < K; i++) eye[i * K + i] = 1;
  const wt = new Float32Array(K * N);
  native.gemmAbt(wt, eye, w.bytes, null, K, K, N, 1, false, PACKED_WTYPE[w.format]);
  const out = new Float32Array(N * K);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) out[n * K + k] = wt[k * N + n];
  return out;
}

function sameValues(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) assert.fail(`${what}: element ${i} is ${got[i]}, expected ${want[i]}`);
}

const GGML_NAME: Partial<Record<PackedFormat, string>> = { q8_0: 'Q8_0', q4_0: 'Q4_0', q4_1: 'Q4_1', q4_k: 'Q4_K', q6_k: 'Q6_K' };

test('the native decoders give the values of the PyPI gguf package (GGML types) and of dequantize() (every format)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'packed-cpu-'));
  try {
    for (const f of PACKED_FORMATS) {
      const w = weightOf(f);
      sameValues(nativeDecoded(w), w.dequantize(), `${f} native decode vs dequantize()`);
      const name = GGML_NAME[f];
      if (name) writeFileSync(join(dir, `${name}.bin`), w.bytes);
    }
    runPython('ggml_dequant.py', ['blocks', dir]);
    for (const f of PACKED_FORMATS) {
      const name = GGML_NAME[f];
      if (!name) continue;
      const buf = readFileSync(join(dir, `${name}.f32`));
      sameValues(nativeDecoded(weightOf(f)), new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4), `${f} native decode vs gguf`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The native products with `w` packed and with it dequantized, for M rows of input. */
function nativeProducts(w: PackedWeight, M: number, seed: number): { packed: Float32Array[]; f32: Float32Array[] } {
  const rng = new Rng(seed);
  const { rows: N, cols: K } = w;
  const deq = w.dequantize();
  const fmt = PACKED_WTYPE[w.format];
  const a = rand(M * K, rng);
  const bias = rand(N, rng);
  const dy = rand(M * N, rng);
  const init = rand(M * N, rng);
  const initK = rand(M * K, rng);
  const run = (b: Float32Array | Uint8Array, format: number | null): Float32Array[] => {
    const y = new Float32Array(M * N);
    native.gemmAbt(y, a, b, bias, M, K, N, 0.75, false, format);
    const yAcc = Float32Array.from(init);
    native.gemmAbt(yAcc, a, b, null, M, K, N, 1, true, format);
    // dx[M,K] = dY[M,N]·W[N,K]: W is gemm_nn's b with N rows of K.
    const dx = Float32Array.from(initK);
    native.gemmNn(dx, dy, b, M, N, K, false, 1, true, format);
    const dxT = new Float32Array(M * K);
    // transA: a given as [N, M] (here dy reinterpreted): the other stride of the panel kernel.
    native.gemmNn(dxT, dy, b, M, N, K, true, 0.5, false, format);
    return [y, yAcc, dx, dxT];
  };
  return { packed: run(w.bytes, fmt), f32: run(deq, null) };
}

test('native: x·Wᵀ and dY·W with W packed equal the products on the dequantized W, every format, ISA and 1/2/3 threads', () => {
  const threads = configuredThreads();
  const isa = native.info().isa;
  try {
    for (const f of PACKED_FORMATS) {
      const w = weightOf(f);
      for (const M of [1, 7, 300]) {
        native.setThreads(1);
        const want = nativeProducts(w, M, M).f32;
        for (const other of native.info().isas) {
          assert.ok(native.setIsa(other));
          for (const t of [1, 2, 3]) {
            native.setThreads(t);
            nativeProducts(w, M, M).packed.forEach((o, i) => sameBits(o, want[i], `${f} M=${M} ${other} ${t} threads, product ${i}`));
          }
        }
        native.setIsa(isa);
      }
    }
  } finally {
    native.setThreads(threads);
    native.setIsa(isa);
  }
});

test('native: a LoRA Linear forward and backward on a packed base equal the step on the dequantized base', () => {
  const ops = nativeOps(native);
  for (const f of PACKED_FORMATS) {
    const w = weightOf(f);
    const { rows: N, cols: K } = w;
    const M = 19;
    const r = 4;
    const rng = new Rng(3);
    const lora: LoraPair = { A: rand(r * K, rng, 0.1), B: rand(N * r, rng, 0.1) };
    const x = rand(M * K, rng);
    const dY = rand(M * N, rng);
    const bias = rand(N, rng);
    const mask = { keep: Uint8Array.from({ length: M * K }, () => (rng.uniform() < 0.1 ? 0 : 1)), scale: 1 / 0.9 };
    const step = (weight: PackedWeight | Float32Array): Float32Array[] => {
      const lin: Linear = { weight, bias, outFeatures: N, inFeatures: K };
      const y = new Float32Array(M * N), u = new Float32Array(M * r), xd = new Float32Array(M * K);
      ops.linearForward(y, u, xd, x, lin, lora, 2, mask, M);
      const dx = new Float32Array(M * K), dA = new Float32Array(r * K), dB = new Float32Array(N * r);
      ops.linearBackward(dx, dA, dB, dY, u, xd, x, lin, lora, 2, mask, M);
      return [y, u, dx, dA, dB];
    };
    const want = step(w.dequantize());
    step(w).forEach((o, i) => sameBits(o, want[i], `${f} linear output ${i}`));
  }
});

test('native: packed bytes of the wrong size or an unknown format id are refused, naming the argument', () => {
  const w = weightOf('q4_0');
  const { rows: N, cols: K } = w;
  const out = new Float32Array(N);
  const a = new Float32Array(K);
  assert.throws(() => native.gemmAbt(out, a, w.bytes.subarray(1), null, 1, K, N, 1, false, PACKED_WTYPE.q4_0), /b has \d+ bytes, a packed \[37, 96\] matrix needs 1998/);
  assert.throws(() => native.gemmAbt(out, a, w.bytes, null, 1, K, N, 1, false, 42), /unknown packed weight format id 42/);
  assert.throws(() => native.gemmAbt(out, a, new Float32Array(N * K), null, 1, K, N, 1, false, PACKED_WTYPE.q4_0), /wrong element type/);
  assert.throws(() => native.gemmAbt(out, a, w.bytes, null, 1, K - 1, N, 1, false, PACKED_WTYPE.q4_0), /does not fit packed format id 3/);
});

test('portable: serial products on a packed W equal those on the dequantized W (bias, alpha, accumulate; AB over N > 256)', () => {
  for (const f of PACKED_FORMATS) {
    const w = weightOf(f);
    const { rows: N, cols: K } = w;
    const deq = w.dequantize();
    const rng = new Rng(5);
    for (const M of [1, 6]) {
      const a = rand(M * K, rng);
      const bias = rand(N, rng);
      const init = rand(M * N, rng);
      const y1 = Float32Array.from(init), y2 = Float32Array.from(init);
      matmulABt(y1, a, w, bias, M, K, N, true, 0.5);
      matmulABt(y2, a, deq, bias, M, K, N, true, 0.5);
      sameBits(y1, y2, `${f} ABt M=${M}`);
      const dy = rand(M * N, rng);
      const d1 = new Float64Array(M * K), d2 = new Float64Array(M * K);
      matmulAB(d1, dy, w, M, N, K, false, 2);
      matmulAB(d2, dy, deq, M, N, K, false, 2);
      sameBits(d1, d2, `${f} AB M=${M}`);
    }
  }
  // dY·W with more than 256 rows of W (the blocked transpose path).
  const tall = randomPacked('q8_0', 301, 64, 9);
  const rng = new Rng(6);
  const dy = rand(3 * 301, rng);
  const d1 = new Float32Array(3 * 64), d2 = new Float32Array(3 * 64);
  matmulAB(d1, dy, tall, 3, 301, 64);
  matmulAB(d2, dy, tall.dequantize(), 3, 301, 64);
  sameBits(d1, d2, 'q8_0 AB, 301 rows');
});

test('portable pool: products on a shared packed W, split by rows and by columns over 2 and 3 parts, equal the serial ones', () => {
  const pool = cpuPool();
  assert.ok(pool && pool.threads === 3, 'a pool of 3 threads');
  for (const f of PACKED_FORMATS) {
    const kq = f === 'q4_k' || f === 'q6_k';
    const w = toSharedPacked(randomPacked(f, 600, kq ? 256 : 64, 21));
    const { rows: N, cols: K } = w;
    const deq = w.dequantize();
    const rng = new Rng(7);
    for (const M of [2, 40]) {
      const a = rand(M * K, rng, 1, SharedF32);
      const bias = rand(N, rng, 1, SharedF32);
      const want = new Float32Array(M * N);
      matmulABt(want, a, deq, bias, M, K, N, false, 1.5);
      const got = new SharedF32(M * N);
      poolABt(got, a, w, bias, M, K, N, false, 1.5);
      sameBits(got, want, `${f} pool ABt M=${M}`);
      for (const parts of [2, 3]) {
        const base = { op: 'ABt' as const, out: sharedRef(got), a: sharedRef(a), b: { ...sharedRef(w.bytes, 'u8'), packed: { format: w.format, rows: N, cols: K } }, bias: sharedRef(bias), M, K, N, accumulate: false, alpha: 1.5 };
        got.fill(NaN);
        const step = Math.ceil(N / parts);
        const split: MatmulPart[] = [];
        for (let c = 0; c < N; c += step) split.push({ ...base, rows: null, cols: [c, Math.min(N, c + step)] });
        for (const part of split) runMatmulPart(part);
        sameBits(got, want, `${f} ABt over ${parts} column parts, M=${M}`);
      }
      const dy = rand(M * N, rng, 1, SharedF32);
      const dWant = new Float32Array(M * K);
      matmulAB(dWant, dy, deq, M, N, K);
      const dGot = new SharedF32(M * K);
      poolAB(dGot, dy, w, M, N, K);
      sameBits(dGot, dWant, `${f} pool AB M=${M}`);
    }
  }
});

test('portable: a LoRA Linear on a packed base equals the one on the dequantized base', () => {
  const w = weightOf('nf4');
  const { rows: N, cols: K } = w;
  const rng = new Rng(8);
  const M = 5, r = 2;
  const lora: LoraPair = { A: rand(r * K, rng, 0.1), B: rand(N * r, rng, 0.1) };
  const x = rand(M * K, rng), dY = rand(M * N, rng);
  const run = (weight: PackedWeight | Float32Array): Float32Array[] => {
    const lin: Linear = { weight, bias: null, outFeatures: N, inFeatures: K };
    const y = new Float32Array(M * N), u = new Float32Array(M * r);
    linear.forward(y, u, null, x, lin, lora, 1.5, null, M);
    const dx = new Float32Array(M * K), dA = new Float32Array(r * K), dB = new Float32Array(N * r);
    linear.backward(dx, dA, dB, dY, u, null, x, lin, lora, 1.5, null, M);
    return [y, dx, dA, dB];
  };
  const want = run(w.dequantize());
  run(w).forEach((o, i) => sameBits(o, want[i], `portable linear output ${i}`));
});
