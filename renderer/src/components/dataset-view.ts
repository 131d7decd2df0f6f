/**
 * What the dataset page draws, computed from a DatasetSummary without React: histogram bars placed on a numeric
 * token axis (so the max-length cut-off can be drawn at its exact value), and an example's text cut into trained and
 * masked runs.
 */
import type { DatasetSummary } from '../../../common/protocol.ts';

export interface HistogramBar {
  /** Middle of the bin, where the bar stands on the numeric axis. */
  mid: number;
  /** Examples with a token length in [from, to). */
  from: number;
  to: number;
  count: number;
  /** Every example of this bin is longer than maxSeqLen, so each one is cut. */
  over: boolean;
}

export function histogramBars(histogram: NonNullable<DatasetSummary['histogram']>, maxSeqLen?: number): HistogramBar[] {
  const { edges, counts } = histogram;
  const bars: HistogramBar[] = [];
  for (let i = 0; i < counts.length && i + 1 < edges.length; i++) {
    const from = edges[i];
    const to = edges[i + 1];
    // Lengths are whole numbers: all of [from, to) exceed maxSeqLen exactly when from does.
    bars.push({ mid: (from + to) / 2, from, to, count: counts[i], over: maxSeqLen !== undefined && from > maxSeqLen });
  }
  return bars;
}

/**
 * The part of the token axis worth drawing: from the bin edge just below the shortest example (or the cut-off, when
 * that is lower) to the top edge, so a dataset of 900–1000-token examples is not drawn as a sliver at the right.
 * Returns that range and the bars inside it.
 */
export function visibleHistogram(bars: readonly HistogramBar[], maxSeqLen?: number): { bars: HistogramBar[]; domain: [number, number] } {
  if (bars.length === 0) return { bars: [], domain: [0, Math.max(1, maxSeqLen ?? 1)] };
  const upper = bars[bars.length - 1].to;
  const firstFilled = bars.find((b) => b.count > 0);
  let lower = firstFilled ? firstFilled.from : 0;
  if (maxSeqLen !== undefined && maxSeqLen < lower) lower = bars.filter((b) => b.from <= maxSeqLen).reduce((lo, b) => Math.max(lo, b.from), 0);
  return { bars: bars.filter((b) => b.from >= lower), domain: [lower, Math.max(upper, maxSeqLen ?? upper)] };
}

export interface TextSegment {
  text: string;
  trained: boolean;
}

/**
 * The first `limit` characters of `text` as alternating runs, trained (inside one of `spans`, half-open [start, end)
 * character offsets) or masked. Spans may overlap, touch, come unsorted or reach past the text.
 */
export function previewSegments(text: string, spans: readonly (readonly [number, number])[], limit = Infinity): TextSegment[] {
  const length = Math.min(text.length, limit);
  const trained = new Uint8Array(length);
  for (const [start, end] of spans) {
    for (let i = Math.max(0, start); i < Math.min(end, length); i++) trained[i] = 1;
  }
  const segments: TextSegment[] = [];
  let at = 0;
  while (at < length) {
    let end = at + 1;
    while (end < length && trained[end] === trained[at]) end++;
    segments.push({ text: text.slice(at, end), trained: trained[at] === 1 });
    at = end;
  }
  return segments;
}

/** Characters trained on, over all characters, of one example (0 for an empty one). */
export function trainedFraction(text: string, spans: readonly (readonly [number, number])[]): number {
  if (text.length === 0) return 0;
  let trained = 0;
  for (const s of previewSegments(text, spans)) if (s.trained) trained += s.text.length;
  return trained / text.length;
}
