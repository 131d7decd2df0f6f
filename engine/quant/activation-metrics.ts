/**
 * Behaviour metrics on calibration text (DESIGN.md §7): how far each layer's output activations, and the final
 * next-token distributions, of the quantized model are from the float model's.
 *
 * Per layer: cosine similarity of the activation tensors, and KL(P_float ‖ P_quant) between histograms of their values
 * over a shared range: 2048 bins (fewer for small tensors, see activationBins), each bin smoothed with a pseudo-count
 * of ½ so an empty bin does not make KL infinite (the same smoothing on both sides keeps KL(P‖P) = 0).
 *
 * Flagging: a layer is flagged when its KL exceeds k × median(KL over layers), k = 3 by default. The median tracks
 * the format's overall noise level, so the rule finds layers that stand out rather than a fixed number of layers;
 * 3 means "three times the typical damage" — well above layer-to-layer spread for uniform noise, yet low enough to
 * catch the one or two sensitive layers (first/last blocks, down_proj outliers) that quantization literature reports.
 * A user override (an absolute KL threshold, or another k) replaces it.
 */
import type { FloatArray } from '../model/types.ts';
import { histogram, minMax } from './metrics.ts';

export const ACTIVATION_BINS = 2048;
export const DEFAULT_THRESHOLD_MULTIPLIER = 3;

export function cosineSimilarity(a: FloatArray, b: FloatArray): number {
  if (a.length !== b.length) throw new Error(`cosineSimilarity: lengths differ (${a.length} vs ${b.length})`);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  if (aa === 0 && bb === 0) return 1;
  if (aa === 0 || bb === 0) return 0;
  return ab / Math.sqrt(aa * bb);
}

/** KL(p ‖ q) in nats for two non-negative count (or probability) vectors, each normalised after adding `eps` to every bin. */
export function klDivergence(p: ArrayLike<number>, q: ArrayLike<number>, eps = 0): number {
  if (p.length !== q.length) throw new Error(`klDivergence: lengths differ (${p.length} vs ${q.length})`);
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    if (!(p[i] >= 0) || !(q[i] >= 0)) throw new Error(`klDivergence: bin ${i} is negative or NaN`);
    sp += p[i] + eps;
    sq += q[i] + eps;
  }
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = (p[i] + eps) / sp;
    if (pi === 0) continue; // 0·log 0 = 0
    const qi = (q[i] + eps) / sq;
    kl += pi * Math.log(pi / qi); // +∞ when qi = 0
  }
  return Math.max(0, kl);
}

/**
 * Bins used for a tensor of n values: 2048 when there are enough values, fewer so that bins hold at least
 * `MIN_PER_BIN` values on average. A histogram much sparser than that is mostly empty bins, and the plug-in KL of two
 * sparse histograms measures sampling noise (a value moving to the next bin), not a change of distribution.
 */
export const MIN_PER_BIN = 32;

export function activationBins(n: number, maxBins = ACTIVATION_BINS): number {
  return Math.max(8, Math.min(maxBins, Math.floor(n / MIN_PER_BIN)));
}

/**
 * KL(P_float ‖ P_quant) between the value histograms of two activation tensors, binned over the range that covers
 * both; every bin gets a pseudo-count of ½ (Jeffreys prior) so empty bins stay finite and KL(P‖P) = 0.
 */
export function activationHistogramKl(float: FloatArray, quant: FloatArray, maxBins = ACTIVATION_BINS): number {
  const a = minMax(float);
  const b = minMax(quant);
  const lo = Math.min(a.min, b.min);
  const hi = Math.max(a.max, b.max);
  const bins = activationBins(Math.min(float.length, quant.length), maxBins);
  return klDivergence(histogram(float, bins, lo, hi).counts, histogram(quant, bins, lo, hi).counts, 0.5);
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface ThresholdOverride {
  /** Absolute threshold; wins over the multiplier. */
  value?: number;
  /** k in k × median. */
  multiplier?: number;
}

export interface Threshold {
  value: number;
  source: 'auto' | 'multiplier' | 'user';
  multiplier: number | null;
  median: number;
}

export function flagThreshold(values: readonly number[], override?: ThresholdOverride): Threshold {
  const med = median(values);
  if (override?.value !== undefined) {
    if (!(override.value >= 0)) throw new Error(`threshold must be a non-negative number, got ${override.value}`);
    return { value: override.value, source: 'user', multiplier: null, median: med };
  }
  const k = override?.multiplier ?? DEFAULT_THRESHOLD_MULTIPLIER;
  if (!(k > 0)) throw new Error(`threshold multiplier must be greater than 0, got ${k}`);
  return { value: k * med, source: override?.multiplier !== undefined ? 'multiplier' : 'auto', multiplier: k, median: med };
}

/** Accumulates the output-level comparison over calibration positions. */
export class OutputComparison {
  private positions = 0;
  private klSum = 0;
  private agree = 0;
  private nllFloat = 0;
  private nllQuant = 0;
  private scored = 0;

  /**
   * Adds one position: float and quantized logits over the vocabulary, and the next token (or −1 when the position
   * has no next token, which then counts for KL and top-1 but not perplexity).
   */
  add(floatLogits: FloatArray, quantLogits: FloatArray, target: number): void {
    const V = floatLogits.length;
    if (quantLogits.length !== V) throw new Error(`OutputComparison: vocab sizes differ (${V} vs ${quantLogits.length})`);
    const lp = logSoftmax(floatLogits);
    const lq = logSoftmax(quantLogits);
    let kl = 0;
    let argP = 0;
    let argQ = 0;
    for (let v = 0; v < V; v++) {
      const p = Math.exp(lp[v]);
      if (p > 0) kl += p * (lp[v] - lq[v]);
      if (floatLogits[v] > floatLogits[argP]) argP = v;
      if (quantLogits[v] > quantLogits[argQ]) argQ = v;
    }
    this.positions++;
    this.klSum += Math.max(0, kl);
    if (argP === argQ) this.agree++;
    if (target >= 0) {
      if (target >= V) throw new Error(`OutputComparison: target token ${target} is outside the vocabulary (${V})`);
      this.nllFloat -= lp[target];
      this.nllQuant -= lq[target];
      this.scored++;
    }
  }

  result(): OutputMetrics {
    const pplFloat = this.scored ? Math.exp(this.nllFloat / this.scored) : NaN;
    const pplQuant = this.scored ? Math.exp(this.nllQuant / this.scored) : NaN;
    return {
      positions: this.positions,
      meanKl: this.positions ? this.klSum / this.positions : NaN,
      top1Agreement: this.positions ? this.agree / this.positions : NaN,
      perplexityFloat: pplFloat,
      perplexityQuant: pplQuant,
      perplexityDelta: pplQuant - pplFloat,
    };
  }
}

export interface OutputMetrics {
  positions: number;
  /** Mean over positions of KL(softmax(float) ‖ softmax(quant)), nats. */
  meanKl: number;
  /** Fraction of positions where both models put the same token on top. */
  top1Agreement: number;
  perplexityFloat: number;
  perplexityQuant: number;
  perplexityDelta: number;
}

export function logSoftmax(x: FloatArray): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > max) max = x[i];
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - max);
  const lse = max + Math.log(s);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] - lse;
  return out;
}
