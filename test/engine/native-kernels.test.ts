/**
 * Every native cpu kernel (native/src, through engine/backend/cpu/native-ops.ts) against the TypeScript reference
 * ops (engine/model/: sums in f64), on odd shapes that cross the kernels' register blocks, K blocks and tiles (1, 7,
 * 13, 37, 129, 300: none a multiple of 4, 6, 12, 16, 32 or 128). The reference sums in f64 and the native kernels in
 * f32, so results agree to f32 rounding: each check states its bound as max |native − reference| / max |reference|.
 * Element-wise f64 work (RoPE, the dropout masks, AdamW) must be bit-identical.
 *
 * Then determinism: every kernel gives the same bits on 1, 2 and 3 threads, and on every instruction set this CPU
 * can run (the summation order is fixed: native/src/simd.h).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nativeOps } from '../../engine/backend/cpu/native-ops.ts';
import { nativeStatus, type NativeCpu } from '../../engine/backend/cpu/native.ts';
import { configuredThreads } from '../../engine/backend/cpu/thread-pool.ts';
import { encodeF16 } from '../../engine/io/f16.ts';
import type { AttentionShape } from '../../engine/model/attention.ts';
import { matmulAB, matmulABt, matmulAtB } from '../../engine/model/matmul.ts';
import { drawDropoutMasks, referenceOps, type ModelOps } from '../../engine/model/ops.ts';
import { ropeTables } from '../../engine/model/rope.ts';
import { F16Array, IGNORE_INDEX, type Linear, type WeightArray } from '../../engine/model/types.ts';
import { adamwUpdate } from '../../engine/train/adamw.ts';
import { Rng } from '../../engine/util/rng.ts';

const status = nativeStatus();
// Not a skip: scripts/test.mjs builds the addon before the tests, so its absence is a failure with the reason.
assert.ok(status.native, `the native cpu kernels are not loaded: ${status.reason} (build them with npm run build:native)`);
const native: NativeCpu = status.native;
const nat: ModelOps = nativeOps(native);
const ref: ModelOps = referenceOps;

function rand(n: number, rng: Rng, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = scale * rng.normal();
  return a;
}

/**
 * max |got − want| / max(max |want|, floor), asserted ≤ tol (and every value finite). `floor`: the scale of the
 * inputs, for outputs that are exactly 0 in exact arithmetic (one visible key: softmax 1, dq 0 up to rounding).
 */
function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string, floor = 1e-30): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let maxDiff = 0;
  let maxRef = 0;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    if (!Number.isFinite(got[i])) assert.fail(`${what}: element ${i} is ${got[i]} (reference ${want[i]})`);
    const d = Math.abs(got[i] - want[i]);
    if (d > maxDiff) {
      maxDiff = d;
      worst = i;
    }
    maxRef = Math.max(maxRef, Math.abs(want[i]));
  }
  const rel = maxDiff / Math.max(maxRef, floor);
  assert.ok(rel <= tol, `${what}: max |native − reference| / max(max |reference|, ${floor}) = ${rel.toExponential(2)} > ${tol} (element ${worst}: ${got[worst]} vs ${want[worst]})`);
}

function sameBits(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) assert.fail(`${what}: element ${i} is ${got[i]}, expected ${want[i]} bit for bit`);
}

/** f16 bits of w, and the same weights as the reference reads them (F16Array). */
function f16Weight(w: Float32Array): { bits: Uint16Array; ref: F16Array } {
  const bits = encodeF16(w);
  return { bits, ref: new F16Array(bits) };
}

// f32 products of K ≤ 300 terms against f64 sums: a few ulps of the largest output.
const GEMM_TOL = 2e-6;
const GEMM_SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 300, 13],
  [7, 37, 13],
  [13, 129, 7],
  [33, 300, 67],
];

test('GEMM x·Wᵀ (gemmAbt): f32 and f16 weights, bias, accumulate, alpha', () => {
  const rng = new Rng(1);
  for (const [M, K, N] of GEMM_SHAPES) {
    for (const f16 of [false, true]) {
      for (const [withBias, accumulate, alpha] of [[false, false, 1], [true, false, 1], [true, true, 0.75], [false, true, -2]] as const) {
        const a = rand(M * K, rng);
        const w = rand(N * K, rng, 1 / Math.sqrt(K));
        const bias = withBias ? rand(N, rng) : null;
        const init = rand(M * N, rng);
        const b = f16 ? f16Weight(w) : { bits: w, ref: w };
        const got = init.slice();
        native.gemmAbt(got, a, b.bits, bias, M, K, N, alpha, accumulate);
        const want = new Float64Array(init);
        matmulABt(want, a, b.ref, bias, M, K, N, accumulate, alpha);
        close(got, want, GEMM_TOL, `gemmAbt ${M}×${K}×${N} ${f16 ? 'f16' : 'f32'} bias=${withBias} acc=${accumulate} alpha=${alpha}`);
      }
    }
  }
});

test('GEMM dY·W and aᵀ·b (gemmNn): f32 and f16 weights, transposed a, accumulate, alpha', () => {
  const rng = new Rng(2);
  for (const [M, K, N] of GEMM_SHAPES) {
    for (const f16 of [false, true]) {
      for (const [accumulate, alpha] of [[false, 1], [true, 0.5]] as const) {
        const a = rand(M * K, rng);
        const w = rand(K * N, rng, 1 / Math.sqrt(K));
        const b = f16 ? f16Weight(w) : { bits: w, ref: w };
        const init = rand(M * N, rng);
        const got = init.slice();
        native.gemmNn(got, a, b.bits, M, K, N, false, alpha, accumulate);
        const want = new Float64Array(init);
        matmulAB(want, a, b.ref, M, K, N, accumulate, alpha);
        close(got, want, GEMM_TOL, `gemmNn ${M}×${K}×${N} ${f16 ? 'f16' : 'f32'} acc=${accumulate}`);
      }
    }
    // transA: a is stored [K, M]; out = aᵀ·b (the LoRA dB = dYᵀ·u product).
    const at = rand(K * M, rng);
    const b = rand(K * N, rng);
    const got = new Float32Array(M * N);
    native.gemmNn(got, at, b, M, K, N, true, 1.5, false);
    const want = new Float64Array(M * N);
    matmulAtB(want, at, b, K, M, N, false, 1.5);
    close(got, want, GEMM_TOL, `gemmNn transA ${M}×${K}×${N}`);
  }
});

function linearCase(rng: Rng, M: number, K: number, N: number, r: number, f16: boolean, bias: boolean): { lin: Linear; A: Float32Array; B: Float32Array } {
  const w = rand(N * K, rng, 1 / Math.sqrt(K));
  const weight: WeightArray = f16 ? new F16Array(encodeF16(w)) : w;
  const lin: Linear = { weight, bias: bias ? rand(N, rng, 0.1) : null, outFeatures: N, inFeatures: K };
  return { lin, A: rand(r * K, rng, 1 / Math.sqrt(K)), B: rand(N * r, rng, 0.3) };
}

test('LoRA linear forward and backward (x·Wᵀ + s·(drop(x)·Aᵀ)·Bᵀ and its dx, dA, dB): f32/f16 weights, dropout', () => {
  const rng = new Rng(3);
  for (const [M, K, N, r] of [[1, 37, 13, 1], [7, 129, 67, 8], [33, 64, 300, 3]] as const) {
    for (const f16 of [false, true]) {
      for (const dropout of [false, true]) {
        const { lin, A, B } = linearCase(rng, M, K, N, r, f16, !dropout);
        const x = rand(M * K, rng);
        const scaling = 2;
        const keep = new Uint8Array(M * K);
        drawDropoutMasks(7, 0.25, [keep]);
        const mask = dropout ? { keep, scale: 1 / 0.75 } : null;
        const out = (ops: ModelOps) => {
          const y = new Float32Array(M * N);
          const u = new Float32Array(M * r);
          const xd = dropout ? new Float32Array(M * K) : null;
          ops.linearForward(y, u, xd, x, lin, { A, B }, scaling, mask, M);
          const dY = rand(M * N, new Rng(11));
          const dx = rand(M * K, new Rng(12)); // accumulated into: start from the same nonzero values
          const dA = rand(r * K, new Rng(13));
          const dB = rand(N * r, new Rng(14));
          ops.linearBackward(dx, dA, dB, dY, u, xd, x, lin, { A, B }, scaling, mask, M);
          return { y, u, xd, dx, dA, dB };
        };
        const g = out(nat);
        const w = out(ref);
        const what = `linear ${M}×${K}→${N} r ${r} ${f16 ? 'f16' : 'f32'}${dropout ? ' dropout' : ''}`;
        close(g.y, w.y, 5e-6, `${what} y`);
        close(g.u, w.u, 5e-6, `${what} u`);
        if (g.xd && w.xd) sameBits(g.xd, w.xd, `${what} xd`);
        close(g.dx, w.dx, 5e-6, `${what} dx`);
        close(g.dA, w.dA, 5e-6, `${what} dA`);
        close(g.dB, w.dB, 5e-6, `${what} dB`);
      }
    }
  }
});

function attentionShapes(): AttentionShape[] {
  return [
    { batch: 1, queryLen: 1, keyLen: 1, nHeads: 1, nKvHeads: 1, headDim: 8, window: null },
    { batch: 2, queryLen: 13, keyLen: 13, nHeads: 6, nKvHeads: 2, headDim: 16, window: null },
    { batch: 1, queryLen: 70, keyLen: 70, nHeads: 3, nKvHeads: 3, headDim: 24, window: 9 },
    // decoding: a few new queries against a longer cache
    { batch: 1, queryLen: 3, keyLen: 131, nHeads: 4, nKvHeads: 1, headDim: 64, window: null },
  ];
}

test('attention forward and backward (causal, GQA, sliding window, queries after a cache)', () => {
  const rng = new Rng(4);
  for (const s of attentionShapes()) {
    const { batch: B, queryLen: Tq, keyLen: Tk, nHeads: nH, nKvHeads: nKv, headDim: D } = s;
    const q = rand(B * Tq * nH * D, rng);
    const k = rand(B * Tk * nKv * D, rng);
    const v = rand(B * Tk * nKv * D, rng);
    const dOut = rand(B * Tq * nH * D, rng);
    const what = `attention B${B} Tq${Tq} Tk${Tk} heads ${nH}/${nKv} D${D} window ${s.window}`;
    const run = (ops: ModelOps) => {
      const out = new Float32Array(q.length);
      const lse = ops.lse(B * nH * Tq);
      ops.attentionForward(out, lse, q, k, v, s);
      const dq = new Float32Array(q.length);
      const dk = new Float32Array(k.length);
      const dv = new Float32Array(v.length);
      ops.attentionBackward(dq, dk, dv, dOut, out, lse, q, k, v, s);
      return { out, lse, dq, dk, dv };
    };
    const g = run(nat);
    const w = run(ref);
    close(g.out, w.out, 5e-6, `${what} out`, 1);
    close(g.lse, w.lse, 1e-6, `${what} lse`);
    close(g.dq, w.dq, 2e-5, `${what} dq`, 1);
    close(g.dk, w.dk, 2e-5, `${what} dk`, 1);
    close(g.dv, w.dv, 2e-5, `${what} dv`, 1);
  }
});

test('RMSNorm, SwiGLU, RoPE, embedding, add forward and backward', () => {
  const rng = new Rng(5);
  for (const [N, C] of [[1, 7], [13, 37], [5, 576]] as const) {
    const x = rand(N * C, rng, 3);
    const w = rand(C, rng, 0.1).map((v) => 1 + v);
    const dOut = rand(N * C, rng);
    const run = (ops: ModelOps) => {
      const out = new Float32Array(N * C);
      const rstd = new Float32Array(N);
      ops.rmsnormForward(out, rstd, x, w, N, C, 1e-5);
      const dx = rand(N * C, new Rng(21));
      ops.rmsnormBackward(dx, dOut, x, w, rstd, N, C);
      return { out, rstd, dx };
    };
    const g = run(nat);
    const r = run(ref);
    close(g.out, r.out, 1e-6, `rmsnorm ${N}×${C} out`);
    close(g.rstd, r.rstd, 1e-6, `rmsnorm ${N}×${C} rstd`);
    close(g.dx, r.dx, 2e-6, `rmsnorm ${N}×${C} dx`);
  }

  for (const n of [1, 15, 1537]) {
    const gate = rand(n, rng, 4);
    const up = rand(n, rng);
    const dOut = rand(n, rng);
    const run = (ops: ModelOps) => {
      const out = new Float32Array(n);
      ops.swigluForward(out, gate, up, n);
      const dGate = rand(n, new Rng(22));
      const dUp = rand(n, new Rng(23));
      ops.swigluBackward(dGate, dUp, dOut, gate, up, n);
      return { out, dGate, dUp };
    };
    const g = run(nat);
    const r = run(ref);
    close(g.out, r.out, 1e-6, `swiglu ${n} out`);
    close(g.dGate, r.dGate, 1e-6, `swiglu ${n} dGate`);
    close(g.dUp, r.dUp, 1e-6, `swiglu ${n} dUp`);
  }

  for (const [B, T, nH, D, pos] of [[1, 1, 1, 2, 0], [2, 7, 3, 10, 0], [1, 5, 2, 64, 37]] as const) {
    const tables = ropeTables({ headDim: D, ropeTheta: 10000, ropeScaling: null }, 64, false);
    const x = rand(B * T * nH * D, rng);
    const dOut = rand(x.length, rng);
    const run = (ops: ModelOps) => {
      const out = new Float32Array(x.length);
      ops.ropeForward(out, x, tables, B, T, nH, D, pos);
      const dx = rand(x.length, new Rng(24));
      ops.ropeBackward(dx, dOut, tables, B, T, nH, D, pos);
      return { out, dx };
    };
    // f64 element-wise on both sides, one rounding to f32: the same bits.
    const g = run(nat);
    const r = run(ref);
    sameBits(g.out, r.out, `rope B${B} T${T} heads ${nH} D${D} from ${pos} out`);
    sameBits(g.dx, r.dx, `rope B${B} T${T} heads ${nH} D${D} from ${pos} dx`);
  }

  const V = 29;
  const C = 13;
  const table = rand(V * C, rng);
  const ids = Int32Array.from([0, 28, 5, 5, 17]);
  for (const t of [table, new F16Array(encodeF16(table))]) {
    const got = new Float32Array(ids.length * C);
    const want = new Float32Array(ids.length * C);
    nat.embedding(got, ids, t, ids.length, C);
    ref.embedding(want, ids, t, ids.length, C);
    sameBits(got, want, `embedding ${t instanceof F16Array ? 'f16' : 'f32'}`);
  }
  assert.throws(() => nat.embedding(new Float32Array(C), Int32Array.from([V]), table, 1, C), /token id 29 at position 0 is outside the vocabulary \[0, 29\)/);

  const a = rand(101, rng);
  const b = rand(101, rng);
  const gotAdd = new Float32Array(101);
  const wantAdd = new Float32Array(101);
  nat.add(gotAdd, a, b, 101);
  ref.add(wantAdd, a, b, 101);
  sameBits(gotAdd, wantAdd, 'add');
});

test('chunked cross-entropy: loss and dHidden, ignored rows, f32/f16 lm_head, chunk sizes that do not divide the rows', () => {
  const rng = new Rng(6);
  for (const [rows, H, V] of [[1, 7, 5], [13, 37, 301], [40, 64, 1000]] as const) {
    for (const f16 of [false, true]) {
      const hidden = rand(rows * H, rng);
      const w = rand(V * H, rng, 1 / Math.sqrt(H));
      const lmHead: WeightArray = f16 ? new F16Array(encodeF16(w)) : w;
      const targets = Int32Array.from({ length: rows }, (_, i) => (i % 4 === 3 ? IGNORE_INDEX : rng.int(V)));
      for (const chunkRows of [1, 3, 64]) {
        const s = { rows, hidden: H, vocab: V, chunkRows };
        const dG = rand(rows * H, new Rng(31));
        const dR = dG.slice();
        const g = nat.crossEntropy(dG, hidden, lmHead, targets, s, 0.5);
        const r = ref.crossEntropy(dR, hidden, lmHead, targets, s, 0.5);
        const what = `cross-entropy ${rows}×${H}×${V} ${f16 ? 'f16' : 'f32'} chunk ${chunkRows}`;
        assert.equal(g.count, r.count, `${what} count`);
        assert.ok(Math.abs(g.sumLoss - r.sumLoss) <= 2e-6 * Math.abs(r.sumLoss), `${what}: loss ${g.sumLoss} vs reference ${r.sumLoss}`);
        close(dG, dR, 5e-6, `${what} dHidden`);
        const lossOnly = nat.crossEntropy(null, hidden, lmHead, targets, s, 1);
        assert.equal(lossOnly.sumLoss, g.sumLoss, `${what}: the loss without the gradient is the same`);
      }
    }
  }
  assert.throws(() => nat.crossEntropy(null, new Float32Array(7), new Float32Array(35), Int32Array.from([5]), { rows: 1, hidden: 7, vocab: 5, chunkRows: 1 }, 1), /target 5 at row 0 is outside the vocabulary \[0, 5\)/);
});

test('AdamW and the dropout masks are bit-identical to the TypeScript ones', () => {
  const rng = new Rng(7);
  for (const n of [1, 17, 1000]) {
    for (const wd of [0, 0.01]) {
      const p0 = rand(n, rng);
      const g = rand(n, rng, 0.1);
      const m0 = rand(n, rng, 0.01);
      const v0 = rand(n, rng, 0.001).map(Math.abs);
      const pn = p0.slice();
      const mn = m0.slice();
      const vn = v0.slice();
      const pr = p0.slice();
      const mr = m0.slice();
      const vr = v0.slice();
      const t = 3;
      const args = [0.9, 0.999, 1e-8, wd, 1 - 1e-3 * wd, 1e-3 / (1 - 0.9 ** t), Math.sqrt(1 - 0.999 ** t)] as const;
      native.adamw(pn, g, mn, vn, ...args);
      adamwUpdate(pr, g, mr, vr, ...args);
      sameBits(pn, pr, `adamw ${n} wd ${wd} p`);
      sameBits(mn, mr, `adamw ${n} wd ${wd} m`);
      sameBits(vn, vr, `adamw ${n} wd ${wd} v`);
    }
  }
  const sizes = [1, 33, 1000];
  const got = sizes.map((n) => new Uint8Array(n));
  const want = sizes.map((n) => new Uint8Array(n));
  nat.dropoutMasks(12345, 0.3, got);
  drawDropoutMasks(12345, 0.3, want);
  got.forEach((m, i) => sameBits(m, want[i], `dropout mask ${i}`));
});

/** Every kernel on fixed inputs, each output concatenated: the fingerprint compared across threads and ISAs. */
function everyKernel(): Float32Array[] {
  const rng = new Rng(8);
  const outs: Float32Array[] = [];
  const [M, K, N] = [37, 300, 67];
  const a = rand(M * K, rng);
  const w = rand(N * K, rng, 0.1);
  const bias = rand(N, rng);
  for (const b of [w, encodeF16(w)]) {
    const o1 = new Float32Array(M * N);
    native.gemmAbt(o1, a, b, bias, M, K, N, 1, false);
    const o2 = new Float32Array(M * K);
    native.gemmNn(o2, o1, b, M, N, K, false, 1, false);
    const o3 = new Float32Array(K * K);
    native.gemmNn(o3, a, a, K, M, K, true, 1, false);
    outs.push(o1, o2, o3);
  }
  const { lin, A, B } = linearCase(rng, M, K, N, 8, false, true);
  const y = new Float32Array(M * N);
  const u = new Float32Array(M * 8);
  const xd = new Float32Array(M * K);
  const keep = new Uint8Array(M * K);
  drawDropoutMasks(3, 0.1, [keep]);
  const mask = { keep, scale: 1 / 0.9 };
  nat.linearForward(y, u, xd, a, lin, { A, B }, 2, mask, M);
  const dx = new Float32Array(M * K);
  const dA = new Float32Array(8 * K);
  const dB = new Float32Array(N * 8);
  nat.linearBackward(dx, dA, dB, y, u, xd, a, lin, { A, B }, 2, mask, M);
  outs.push(y, u, dx, dA, dB);
  const s: AttentionShape = { batch: 2, queryLen: 75, keyLen: 75, nHeads: 6, nKvHeads: 2, headDim: 32, window: null };
  const q = rand(2 * 75 * 6 * 32, rng);
  const kk = rand(2 * 75 * 2 * 32, rng);
  const v = rand(kk.length, rng);
  const out = new Float32Array(q.length);
  const lse = new Float32Array(2 * 6 * 75);
  nat.attentionForward(out, lse, q, kk, v, s);
  const dq = new Float32Array(q.length);
  const dk = new Float32Array(kk.length);
  const dv = new Float32Array(v.length);
  nat.attentionBackward(dq, dk, dv, q, out, lse, q, kk, v, s);
  outs.push(out, lse, dq, dk, dv);
  const hidden = rand(40 * 64, rng);
  const lm = rand(1000 * 64, rng, 0.1);
  const targets = Int32Array.from({ length: 40 }, () => rng.int(1000));
  const dh = new Float32Array(hidden.length);
  const ce = nat.crossEntropy(dh, hidden, lm, targets, { rows: 40, hidden: 64, vocab: 1000, chunkRows: 7 }, 1);
  outs.push(dh, Float32Array.of(ce.sumLoss), Float32Array.of(ce.sumLoss - Math.fround(ce.sumLoss)));
  const n = 40 * 64;
  const rms = new Float32Array(n);
  const rstd = new Float32Array(40);
  nat.rmsnormForward(rms, rstd, hidden, rand(64, rng), 40, 64, 1e-5);
  const sw = new Float32Array(n);
  nat.swigluForward(sw, hidden, dh, n);
  outs.push(rms, rstd, sw);
  return outs;
}

test('every kernel gives the same bits on 1, 2 and 3 threads and on every instruction set of this CPU', () => {
  const threads = configuredThreads();
  const isa = native.info().isa;
  try {
    native.setThreads(1);
    const want = everyKernel();
    for (const t of [2, 3, 1, 3]) {
      native.setThreads(t);
      assert.equal(native.info().threads, t);
      everyKernel().forEach((o, i) => sameBits(o, want[i], `${t} threads, output ${i}`));
    }
    const isas = native.info().isas;
    assert.ok(isas.includes('scalar'), `the scalar kernels are always there (got ${isas.join(', ')})`);
    for (const other of isas) {
      assert.ok(native.setIsa(other), `setIsa(${other})`);
      assert.equal(native.info().isa, other);
      everyKernel().forEach((o, i) => sameBits(o, want[i], `${other} kernels, output ${i}`));
    }
  } finally {
    native.setThreads(threads);
    native.setIsa(isa);
  }
});
