/** Weight and behaviour metrics on constructed inputs whose values are known in closed form. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorHistogram, errorStats, histogram } from '../../engine/quant/metrics.ts';
import { OutputComparison, activationBins, activationHistogramKl, cosineSimilarity, flagThreshold, klDivergence, median } from '../../engine/quant/activation-metrics.ts';

const close = (a: number, b: number, tol: number, what: string): void => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('constant offset error: MSE = c², relErr = c/rms(W), SNR = 10·log10(rms²/c²)', () => {
  const n = 1000;
  const w = Float32Array.from({ length: n }, (_, i) => (i % 2 ? 1 : -1)); // ΣW² = n
  const c = 0.125; // exact in fp32, so Ŵ = W − c is exact too
  const wq = w.map((x) => x - c);
  const s = errorStats(w, wq);
  assert.equal(s.mse, c * c);
  close(s.relErr, c, 1e-15, 'relErr');
  close(s.snrDb ?? NaN, 10 * Math.log10(64), 1e-12, 'SNR'); // 18.0618 dB
  assert.equal(s.maxAbsErr, c);
  assert.equal(s.signalEnergy, n);
  close(s.errorEnergy, n * c * c, 1e-12, 'error energy');
  // exact reconstruction: SNR is reported as null (infinite), relErr 0
  const exact = errorStats(w, w);
  assert.equal(exact.snrDb, null);
  assert.equal(exact.relErr, 0);
  // the error histogram of a constant offset is one spike at +c (W − Ŵ = c), in the last bin of [−c, c]
  const h = errorHistogram(w, wq, 8, s.maxAbsErr);
  assert.deepEqual(h.counts, [0, 0, 0, 0, 0, 0, 0, n]);
  assert.deepEqual([h.lo, h.hi], [-c, c]);
});

test('scaled weights: Ŵ = (1+ε)W gives relErr = |ε| and SNR = −20·log10|ε| whatever W is', () => {
  const w = Float32Array.from({ length: 257 }, (_, i) => Math.sin(i * 1.7) * 3);
  const eps = 2 ** -6;
  const wq = Float64Array.from(w, (x) => x * (1 + eps));
  const s = errorStats(w, wq);
  close(s.relErr, eps, 1e-15, 'relErr');
  close(s.snrDb ?? NaN, -20 * Math.log10(eps), 1e-10, 'SNR');
});

test('histogram: equal-width bins, end bins collect out-of-range values', () => {
  const h = histogram([0, 0.5, 0.99, 1, 1.5, 3.99, 4, -7, 9], 4, 0, 4);
  assert.deepEqual(h.counts, [4, 2, 0, 3]); // [0,1): 0, .5, .99, −7 | [1,2): 1, 1.5 | [3,4]: 3.99, 4, 9
});

test('KL of two known distributions', () => {
  // KL([1/2, 1/2] ‖ [1/4, 3/4]) = ½ln2 + ½ln(2/3)
  close(klDivergence([0.5, 0.5], [0.25, 0.75]), 0.5 * Math.log(2) + 0.5 * Math.log(2 / 3), 1e-15, 'KL');
  // counts are normalised: same distributions as counts
  close(klDivergence([2, 2], [1, 3]), 0.5 * Math.log(2) + 0.5 * Math.log(2 / 3), 1e-15, 'KL of counts');
  assert.equal(klDivergence([3, 0, 5], [3, 0, 5]), 0);
  assert.equal(klDivergence([1, 0], [0, 1]), Infinity);
  // a pseudo-count keeps it finite: ([1.5, .5] ‖ [.5, 1.5]) / 2 = ¾ln3 − ¼ln3 = ½ln3
  close(klDivergence([1, 0], [0, 1], 0.5), 0.5 * Math.log(3), 1e-15, 'smoothed KL');
});

/** Acklam's inverse normal CDF (relative error < 1.2e-9). */
function normInv(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - 0.02425) return -normInv(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

test('activation-histogram KL approaches the closed form KL(N(0,1) ‖ N(μ,σ²)) = ln σ + (1 + μ²)/(2σ²) − ½', () => {
  const n = 1 << 17;
  const mu = 0.1;
  const sigma = 1.1;
  // Deterministic samples: the n quantiles of each normal.
  const f = new Float32Array(n);
  const q = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const z = normInv((i + 0.5) / n);
    f[i] = z;
    q[i] = mu + sigma * z;
  }
  assert.equal(activationBins(n), 2048);
  const exact = Math.log(sigma) + (1 + mu * mu) / (2 * sigma * sigma) - 0.5; // 0.012669
  const kl = activationHistogramKl(f, q);
  close(kl, exact, 0.05 * exact, 'histogram KL');
  assert.equal(activationHistogramKl(f, f), 0);
  // fewer values → fewer bins (≥ 32 values per bin on average)
  assert.equal(activationBins(1000), 31);
  assert.equal(activationBins(10), 8);
});

test('cosine similarity', () => {
  const a = Float32Array.from([1, -2, 3, 0.5]);
  close(cosineSimilarity(a, a.map((x) => 2 * x)), 1, 1e-15, 'parallel');
  close(cosineSimilarity(a, a.map((x) => -x)), -1, 1e-15, 'opposite');
  assert.equal(cosineSimilarity(Float32Array.from([1, 0]), Float32Array.from([0, 1])), 0);
  close(cosineSimilarity(Float32Array.from([1, 0]), Float32Array.from([1, 1])), Math.SQRT1_2, 1e-15, '45°');
});

test('output comparison: KL of next-token distributions, top-1 agreement, perplexities', () => {
  const cmp = new OutputComparison();
  // position 1: float p = softmax([0, ln 3]) = [¼, ¾], quant q = [½, ½]; next token 1
  cmp.add(Float32Array.from([0, Math.log(3)]), Float32Array.from([0, 0]), 1);
  // position 2: identical logits; no next token (end of sequence)
  cmp.add(Float32Array.from([2, 0]), Float32Array.from([2, 0]), -1);
  const r = cmp.result();
  assert.equal(r.positions, 2);
  close(r.meanKl, (0.25 * Math.log(0.5) + 0.75 * Math.log(1.5)) / 2, 1e-7, 'mean KL');
  assert.equal(r.top1Agreement, 0.5); // position 1: float picks 1, quant ties → first index 0
  close(r.perplexityFloat, 4 / 3, 1e-6, 'float perplexity (−ln ¾)');
  close(r.perplexityQuant, 2, 1e-6, 'quant perplexity (−ln ½)');
  close(r.perplexityDelta, 2 / 3, 1e-6, 'Δ perplexity');
});

test('automatic threshold = k × median, overridable', () => {
  assert.equal(median([3, 1, 100, 2]), 2.5);
  assert.equal(median([5, 1, 3]), 3);
  assert.deepEqual(flagThreshold([3, 1, 100, 2]), { value: 7.5, source: 'auto', multiplier: 3, median: 2.5 });
  assert.deepEqual(flagThreshold([3, 1, 100, 2], { multiplier: 2 }), { value: 5, source: 'multiplier', multiplier: 2, median: 2.5 });
  assert.deepEqual(flagThreshold([3, 1, 100, 2], { value: 0.7 }), { value: 0.7, source: 'user', multiplier: null, median: 2.5 });
  assert.throws(() => flagThreshold([1], { multiplier: 0 }), /multiplier must be greater than 0/);
});
