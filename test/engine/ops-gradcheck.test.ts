/**
 * Every op's backward against central finite differences of its forward (float64), and forwards against
 * closed-form or naive independent computations.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { matmulAB, matmulABt, matmulAtB } from '../../engine/backend/cpu/matmul.ts';
import * as attention from '../../engine/model/attention.ts';
import * as crossEntropy from '../../engine/model/cross-entropy.ts';
import * as embedding from '../../engine/model/embedding.ts';
import * as linear from '../../engine/model/linear.ts';
import * as rmsnorm from '../../engine/model/rmsnorm.ts';
import * as rope from '../../engine/model/rope.ts';
import * as swiglu from '../../engine/model/swiglu.ts';
import { IGNORE_INDEX, type RopeScaling } from '../../engine/model/types.ts';
import { Rng } from '../../engine/util/rng.ts';
import { allIndices, assertGradClose, dot, numericGrad } from '../helpers/finite-diff.ts';
import { randomArray } from '../helpers/tiny-weights.ts';

const F = Float64Array;

function rand(n: number, rng: Rng, scale = 1): Float64Array {
  return randomArray(F, n, rng, scale) as Float64Array;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('rng', () => {
  it('is deterministic, resumable from its state, and uniform in [0, 1)', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    for (let i = 0; i < 10; i++) assert.equal(a.nextU32(), b.nextU32());
    const saved = a.state();
    const expected = Array.from({ length: 5 }, () => a.uniform());
    const resumed = Rng.fromState(saved);
    assert.deepEqual(Array.from({ length: 5 }, () => resumed.uniform()), expected);
    assert.notEqual(new Rng(1).nextU32(), new Rng(2).nextU32());
    const r = new Rng(7);
    let sum = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const u = r.uniform();
      assert.ok(u >= 0 && u < 1);
      sum += u;
    }
    assert.ok(Math.abs(sum / n - 0.5) < 0.01, `mean ${sum / n}`);
    assert.throws(() => Rng.fromState([0, 0, 0, 0]), /all-zero/);
    assert.throws(() => Rng.fromState([1, 2, 3]), /4 uint32/);
  });
});

describe('matmul helpers', () => {
  const rng = new Rng(3);
  for (const [M, K, N] of [
    [7, 5, 9],
    [1, 3, 2],
    [4, 8, 4],
    [6, 3, 300],
  ]) {
    it(`match naive products for M=${M} K=${K} N=${N}`, () => {
      const a = rand(M * K, rng);
      const b = rand(N * K, rng);
      const bias = rand(N, rng);
      const out = new F(M * N);
      matmulABt(out, a, b, bias, M, K, N);
      const naive = new F(M * N);
      for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
        let s = bias[j];
        for (let k = 0; k < K; k++) s += a[i * K + k] * b[j * K + k];
        naive[i * N + j] = s;
      }
      assert.ok(maxAbsDiff(out, naive) < 1e-12);
      // out += 2·(a·bᵀ + bias)
      matmulABt(out, a, b, bias, M, K, N, true, 2);
      for (let i = 0; i < M * N; i++) assert.ok(Math.abs(out[i] - (naive[i] + 2 * (naive[i] - bias[i % N]) + bias[i % N])) < 1e-11);
      // dY·W: y[M,N], w[N,K] -> [M,K]
      const y = rand(M * N, rng);
      const dx = new F(M * K);
      matmulAB(dx, y, b, M, N, K);
      const dxNaive = new F(M * K);
      for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) {
        let s = 0;
        for (let j = 0; j < N; j++) s += y[i * N + j] * b[j * K + k];
        dxNaive[i * K + k] = s;
      }
      assert.ok(maxAbsDiff(dx, dxNaive) < 1e-11);
      // dYᵀ·X: y[M,N], a[M,K] -> [N,K]
      const dw = new F(N * K);
      matmulAtB(dw, y, a, M, N, K, false, 0.5);
      for (let j = 0; j < N; j++) for (let k = 0; k < K; k++) {
        let s = 0;
        for (let i = 0; i < M; i++) s += y[i * N + j] * a[i * K + k];
        assert.ok(Math.abs(dw[j * K + k] - 0.5 * s) < 1e-11);
      }
    });
  }
});

describe('embedding', () => {
  it('backward matches finite differences and forward copies rows', () => {
    const rng = new Rng(11);
    const V = 7;
    const C = 5;
    const ids = Int32Array.from([3, 0, 3, 6, 2, 3]);
    const N = ids.length;
    const table = rand(V * C, rng);
    const c = rand(N * C, rng);
    const out = new F(N * C);
    embedding.forward(out, ids, table, N, C);
    for (let n = 0; n < N; n++) for (let j = 0; j < C; j++) assert.equal(out[n * C + j], table[ids[n] * C + j]);
    const dTable = new F(V * C);
    embedding.backward(dTable, c, ids, table, N, C);
    const loss = (): number => {
      embedding.forward(out, ids, table, N, C);
      return dot(c, out);
    };
    const used = allIndices(V * C).filter((i) => ids.includes(Math.floor(i / C)));
    assertGradClose('dTable', used.map((i) => dTable[i]), numericGrad(loss, table, used));
    assert.ok(allIndices(V * C).filter((i) => !used.includes(i)).every((i) => dTable[i] === 0));
    assert.throws(() => embedding.forward(out, Int32Array.from([0, 7]), table, 2, C), /token id 7 at position 1/);
  });
});

describe('rmsnorm', () => {
  it('backward (dx and dweight) matches finite differences', () => {
    const rng = new Rng(12);
    const N = 4;
    const C = 6;
    const eps = 1e-5;
    const x = rand(N * C, rng);
    const w = randomArray(F, C, rng, 0.2, 1);
    const c = rand(N * C, rng);
    const out = new F(N * C);
    const rstd = new F(N);
    const loss = (): number => {
      rmsnorm.forward(out, rstd, x, w, N, C, eps);
      return dot(c, out);
    };
    loss();
    const dx = new F(N * C);
    const dw = new F(C);
    rmsnorm.backward(dx, dw, c, x, w, rstd, N, C);
    assertGradClose('dx', dx, numericGrad(loss, x, allIndices(N * C)));
    assertGradClose('dweight', dw, numericGrad(loss, w, allIndices(C)));
  });

  it('normalises a constant row to weight·c/sqrt(c² + eps)', () => {
    const C = 8;
    const eps = 1e-6;
    const x = new F(C).fill(-3);
    const w = Float64Array.from({ length: C }, (_, i) => 0.5 + i);
    const out = new F(C);
    rmsnorm.forward(out, new F(1), x, w, 1, C, eps);
    for (let i = 0; i < C; i++) assert.ok(Math.abs(out[i] - (w[i] * -3) / Math.sqrt(9 + eps)) < 1e-14);
  });
});

const llama3: RopeScaling = { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 1000 };

describe('rope', () => {
  it('inv_freq follows theta^(-2i/d) and the llama3 bands (closed form)', () => {
    const plain = rope.invFreq({ headDim: 8, ropeTheta: 10000, ropeScaling: null }, false);
    assert.deepEqual(Array.from(plain).map((v) => +v.toPrecision(12)), [1, 0.1, 0.01, 0.001]);
    const scaled = rope.invFreq({ headDim: 8, ropeTheta: 10000, ropeScaling: llama3 }, false);
    // wavelengths 2π, 20π (< 1000/4: unchanged), 200π (between 250 and 1000: blended), 2000π (> 1000: divided by 8)
    assert.ok(Math.abs(scaled[0] - 1) < 1e-15);
    assert.ok(Math.abs(scaled[1] - 0.1) < 1e-15);
    const s = (1000 / (200 * Math.PI) - 1) / (4 - 1);
    assert.ok(Math.abs(scaled[2] - ((1 - s) * 0.01) / 8 - s * 0.01) < 1e-15, `blended ${scaled[2]}`);
    assert.ok(Math.abs(scaled[3] - 0.001 / 8) < 1e-17);
    const fp32 = rope.invFreq({ headDim: 8, ropeTheta: 10000, ropeScaling: llama3 }, true);
    for (let i = 0; i < 4; i++) {
      assert.equal(fp32[i], Math.fround(fp32[i]));
      assert.ok(Math.abs(fp32[i] - scaled[i]) <= 1e-6 * scaled[i]);
    }
  });

  it('is the identity at position 0 and keeps q·k a function of the position difference', () => {
    const rng = new Rng(13);
    const D = 8;
    const tables = rope.ropeTables({ headDim: D, ropeTheta: 10000, ropeScaling: llama3 }, 40, false);
    const x = rand(D, rng);
    const out = new F(D);
    rope.forward(out, x, tables, 1, 1, 1, D, 0);
    assert.deepEqual(Array.from(out), Array.from(x));
    const q = rand(D, rng);
    const k = rand(D, rng);
    const at = (v: Float64Array, pos: number): Float64Array => {
      const o = new F(D);
      rope.forward(o, v, tables, 1, 1, 1, D, pos);
      return o;
    };
    const d1 = dot(at(q, 17), at(k, 12));
    const d2 = dot(at(q, 35), at(k, 30));
    assert.ok(Math.abs(d1 - d2) < 1e-12, `${d1} vs ${d2}`);
    // rotation preserves the norm
    assert.ok(Math.abs(dot(at(q, 29), at(q, 29)) - dot(q, q)) < 1e-12);
  });

  it('rotates pairs (i, i + d/2) by pos·inv_freq[i] (rotate_half convention)', () => {
    const D = 4;
    const tables = rope.ropeTables({ headDim: D, ropeTheta: 100, ropeScaling: null }, 4, false);
    const x = Float64Array.from([1, 2, 3, 4]);
    const out = new F(D);
    rope.forward(out, x, tables, 1, 1, 1, D, 3);
    const a0 = 3;
    const a1 = 3 * 0.1; // 100^(-2/4)
    const expected = [1 * Math.cos(a0) - 3 * Math.sin(a0), 2 * Math.cos(a1) - 4 * Math.sin(a1), 3 * Math.cos(a0) + 1 * Math.sin(a0), 4 * Math.cos(a1) + 2 * Math.sin(a1)];
    assert.ok(maxAbsDiff(out, expected) < 1e-14);
  });

  for (const scaling of [null, llama3]) {
    it(`backward matches finite differences (${scaling === null ? 'default' : 'llama3'}, offset positions)`, () => {
      const rng = new Rng(14);
      const B = 2;
      const T = 5;
      const nH = 3;
      const D = 8;
      const tables = rope.ropeTables({ headDim: D, ropeTheta: 10000, ropeScaling: scaling }, 12, false);
      const n = B * T * nH * D;
      const x = rand(n, rng);
      const c = rand(n, rng);
      const out = new F(n);
      const loss = (): number => {
        rope.forward(out, x, tables, B, T, nH, D, 4);
        return dot(c, out);
      };
      const dx = new F(n);
      rope.backward(dx, c, tables, B, T, nH, D, 4);
      assertGradClose('dx', dx, numericGrad(loss, x, allIndices(n)));
      assert.throws(() => rope.forward(out, x, tables, B, T, nH, D, 8), /beyond the table/);
    });
  }
});

/** Naive attention: full score matrix per (b, h), kv heads repeated explicitly as transformers' repeat_kv does. */
function naiveAttention(q: Float64Array, k: Float64Array, v: Float64Array, s: attention.AttentionShape): Float64Array {
  const { batch: B, queryLen: Tq, keyLen: Tk, nHeads: nH, nKvHeads: nKv, headDim: D, window } = s;
  const out = new F(B * Tq * nH * D);
  const rep = nH / nKv;
  for (let b = 0; b < B; b++) for (let h = 0; h < nH; h++) {
    const kvh = Math.floor(h / rep);
    for (let t = 0; t < Tq; t++) {
      const pos = Tk - Tq + t;
      const scores: number[] = [];
      for (let j = 0; j < Tk; j++) {
        const visible = j <= pos && (window === null || j > pos - window);
        let sc = 0;
        for (let d = 0; d < D; d++) sc += q[((b * Tq + t) * nH + h) * D + d] * k[((b * Tk + j) * nKv + kvh) * D + d];
        scores.push(visible ? sc / Math.sqrt(D) : -Infinity);
      }
      const m = Math.max(...scores);
      const e = scores.map((x) => Math.exp(x - m));
      const z = e.reduce((p, x) => p + x, 0);
      for (let d = 0; d < D; d++) {
        let acc = 0;
        for (let j = 0; j < Tk; j++) acc += (e[j] / z) * v[((b * Tk + j) * nKv + kvh) * D + d];
        out[((b * Tq + t) * nH + h) * D + d] = acc;
      }
    }
  }
  return out;
}

describe('attention', () => {
  for (const window of [null, 3]) {
    const s: attention.AttentionShape = { batch: 2, queryLen: 6, keyLen: 6, nHeads: 4, nKvHeads: 2, headDim: 4, window };
    const label = window === null ? 'causal GQA' : 'GQA with sliding window 3';
    it(`${label}: forward matches a naive implementation`, () => {
      const rng = new Rng(15);
      const q = rand(2 * 6 * 4 * 4, rng);
      const k = rand(2 * 6 * 2 * 4, rng);
      const v = rand(2 * 6 * 2 * 4, rng);
      const out = new F(q.length);
      const lse = new F(2 * 4 * 6);
      attention.forward(out, lse, q, k, v, s);
      assert.ok(maxAbsDiff(out, naiveAttention(q, k, v, s)) < 1e-13);
      // Softmax rows sum to 1: with v ≡ 1 every output entry is 1.
      attention.forward(out, null, q, k, new F(v.length).fill(1), s);
      assert.ok(out.every((x) => Math.abs(x - 1) < 1e-14));
    });

    it(`${label}: backward (dq, dk, dv) matches finite differences`, () => {
      const rng = new Rng(16);
      const q = rand(2 * 6 * 4 * 4, rng);
      const k = rand(2 * 6 * 2 * 4, rng);
      const v = rand(2 * 6 * 2 * 4, rng);
      const c = rand(q.length, rng);
      const out = new F(q.length);
      const lse = new F(2 * 4 * 6);
      const loss = (): number => {
        attention.forward(out, lse, q, k, v, s);
        return dot(c, out);
      };
      loss();
      const dq = new F(q.length);
      const dk = new F(k.length);
      const dv = new F(v.length);
      attention.backward(dq, dk, dv, c, out, lse, q, k, v, s);
      assertGradClose('dq', dq, numericGrad(loss, q, allIndices(q.length)));
      assertGradClose('dk', dk, numericGrad(loss, k, allIndices(k.length)));
      assertGradClose('dv', dv, numericGrad(loss, v, allIndices(v.length)));
    });
  }

  it('new queries against cached keys equal the last rows of the full computation', () => {
    const rng = new Rng(17);
    const full: attention.AttentionShape = { batch: 1, queryLen: 7, keyLen: 7, nHeads: 4, nKvHeads: 1, headDim: 4, window: 4 };
    const q = rand(7 * 16, rng);
    const k = rand(7 * 4, rng);
    const v = rand(7 * 4, rng);
    const out = new F(q.length);
    attention.forward(out, null, q, k, v, full);
    const tail = new F(2 * 16);
    attention.forward(tail, null, q.subarray(5 * 16), k, v, { ...full, queryLen: 2 });
    assert.ok(maxAbsDiff(tail, out.subarray(5 * 16)) < 1e-15);
    assert.throws(() => attention.forward(out, null, q, k, v, { ...full, nKvHeads: 3 }), /not a multiple/);
  });
});

describe('linear + LoRA', () => {
  const M = 5;
  const inF = 6;
  const outF = 4;
  const r = 3;
  const scaling = 16 / r;
  for (const withDropout of [false, true]) {
    it(`backward (dx, dA, dB) matches finite differences${withDropout ? ' with a fixed dropout mask' : ''}`, () => {
      const rng = new Rng(withDropout ? 18 : 19);
      const x = rand(M * inF, rng);
      const lin = { weight: rand(outF * inF, rng, 0.4), bias: rand(outF, rng), outFeatures: outF, inFeatures: inF };
      const pair = { A: rand(r * inF, rng, 0.4), B: rand(outF * r, rng, 0.4) };
      const mask: linear.DropoutMask | null = withDropout ? { keep: Uint8Array.from({ length: M * inF }, () => (rng.uniform() < 0.3 ? 0 : 1)), scale: 1 / 0.7 } : null;
      const c = rand(M * outF, rng);
      const y = new F(M * outF);
      const u = new F(M * r);
      const xd = withDropout ? new F(M * inF) : null;
      const loss = (): number => {
        linear.forward(y, u, xd, x, lin, pair, scaling, mask, M);
        return dot(c, y);
      };
      loss();
      // forward against the explicit formula y = x·Wᵀ + b + s·(dropout(x)·Aᵀ)·Bᵀ
      for (let m = 0; m < M; m++) for (let o = 0; o < outF; o++) {
        let base = lin.bias[o];
        for (let i = 0; i < inF; i++) base += x[m * inF + i] * lin.weight[o * inF + i];
        let lo = 0;
        for (let k = 0; k < r; k++) {
          let uk = 0;
          for (let i = 0; i < inF; i++) {
            const keep = mask === null ? 1 : mask.keep[m * inF + i] * mask.scale;
            uk += x[m * inF + i] * keep * pair.A[k * inF + i];
          }
          lo += uk * pair.B[o * r + k];
        }
        assert.ok(Math.abs(y[m * outF + o] - base - scaling * lo) < 1e-12);
      }
      const dx = new F(M * inF);
      const dA = new F(r * inF);
      const dB = new F(outF * r);
      linear.backward(dx, dA, dB, c, u, xd, x, lin, pair, scaling, mask, M);
      assertGradClose('dx', dx, numericGrad(loss, x, allIndices(M * inF)));
      assertGradClose('dA', dA, numericGrad(loss, pair.A, allIndices(r * inF)));
      assertGradClose('dB', dB, numericGrad(loss, pair.B, allIndices(outF * r)));
    });
  }

  it('without LoRA is x·Wᵀ + b and backward gives dY·W', () => {
    const rng = new Rng(20);
    const x = rand(M * inF, rng);
    const lin = { weight: rand(outF * inF, rng), bias: null, outFeatures: outF, inFeatures: inF };
    const c = rand(M * outF, rng);
    const y = new F(M * outF);
    const loss = (): number => {
      linear.forward(y, null, null, x, lin, null, 0, null, M);
      return dot(c, y);
    };
    const dx = new F(M * inF);
    linear.backward(dx, null, null, c, null, null, x, lin, null, 0, null, M);
    assertGradClose('dx', dx, numericGrad(loss, x, allIndices(M * inF)));
  });
});

describe('swiglu', () => {
  it('backward matches finite differences; forward is g·σ(g)·u', () => {
    const rng = new Rng(21);
    const n = 30;
    const g = rand(n, rng, 2);
    const u = rand(n, rng);
    const c = rand(n, rng);
    const out = new F(n);
    const loss = (): number => {
      swiglu.forward(out, g, u, n);
      return dot(c, out);
    };
    loss();
    for (let i = 0; i < n; i++) assert.ok(Math.abs(out[i] - (g[i] * u[i]) / (1 + Math.exp(-g[i]))) < 1e-15);
    const dg = new F(n);
    const du = new F(n);
    swiglu.backward(dg, du, c, g, u, n);
    assertGradClose('dgate', dg, numericGrad(loss, g, allIndices(n)));
    assertGradClose('dup', du, numericGrad(loss, u, allIndices(n)));
  });
});

describe('cross-entropy (chunked)', () => {
  it('loss matches a full-logits computation; backward matches finite differences with chunk < rows and ignored rows', () => {
    const rng = new Rng(22);
    const N = 7;
    const C = 5;
    const V = 11;
    const hidden = rand(N * C, rng);
    const lmHead = rand(V * C, rng);
    const targets = Int32Array.from([3, IGNORE_INDEX, 10, 0, IGNORE_INDEX, 3, 7]);
    const s: crossEntropy.CrossEntropyShape = { rows: N, hidden: C, vocab: V, chunkRows: 2 };
    const losses = new Float64Array(N);
    const r = crossEntropy.forward(losses, hidden, lmHead, targets, s);
    assert.equal(r.count, 5);
    let naiveSum = 0;
    for (let n = 0; n < N; n++) {
      if (targets[n] === IGNORE_INDEX) {
        assert.equal(losses[n], 0);
        continue;
      }
      const logits = Array.from({ length: V }, (_, j) => dot(hidden.subarray(n * C, n * C + C), lmHead.subarray(j * C, j * C + C)));
      const lse = Math.log(logits.reduce((p, x) => p + Math.exp(x), 0));
      const l = lse - logits[targets[n]];
      assert.ok(Math.abs(losses[n] - l) < 1e-12);
      naiveSum += l;
    }
    assert.ok(Math.abs(r.sumLoss - naiveSum) < 1e-12);
    const gradScale = 1.7;
    const loss = (): number => gradScale * crossEntropy.forward(null, hidden, lmHead, targets, s).sumLoss;
    const dh = new F(N * C);
    const fb = crossEntropy.forwardBackward(dh, null, hidden, lmHead, targets, s, gradScale);
    assert.equal(fb.sumLoss, r.sumLoss);
    assertGradClose('dhidden', dh, numericGrad(loss, hidden, allIndices(N * C)));
    for (const n of [1, 4]) for (let c = 0; c < C; c++) assert.equal(dh[n * C + c], 0);
    const dh2 = new F(N * C);
    crossEntropy.backward(dh2, hidden, lmHead, targets, { ...s, chunkRows: 5 }, gradScale);
    assert.ok(maxAbsDiff(dh, dh2) < 1e-14);
    assert.throws(() => crossEntropy.forward(null, hidden, lmHead, Int32Array.from([0, 0, 0, 0, 0, 0, 11]), s), /target 11 at row 6/);
  });

  it('counts nothing and returns zero gradient when every row is ignored', () => {
    const dh = new F(6);
    const r = crossEntropy.forwardBackward(dh, null, new F(6).fill(1), new F(9).fill(1), Int32Array.from([IGNORE_INDEX, IGNORE_INDEX]), { rows: 2, hidden: 3, vocab: 3, chunkRows: 4 }, 1);
    assert.deepEqual([r.count, r.sumLoss], [0, 0]);
    assert.ok(dh.every((x: number) => x === 0));
  });
});

