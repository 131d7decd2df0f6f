import type { DatasetFormat, DatasetSummary } from '../../common/protocol.ts';
import type { Tokenizer } from '../model/types.ts';
import { DatasetError } from './errors.ts';
import { decodeWithSpans, type Span } from './masking.ts';
import { PipelineReport, streamExamples } from './pipeline.ts';
import type { TrainOn } from './render.ts';

export type TokenLengthStats = NonNullable<DatasetSummary['tokenStats']>;
export type LengthHistogram = NonNullable<DatasetSummary['histogram']>;

/** Count, min, max, mean, median and 95th percentile (nearest rank) of token lengths; null for none. */
export function tokenLengthStats(lengths: readonly number[]): TokenLengthStats | null {
  const n = lengths.length;
  if (n === 0) return null;
  const sorted = Float64Array.from(lengths).sort();
  let total = 0;
  for (const x of lengths) total += x;
  const median = n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  return { count: n, min: sorted[0], max: sorted[n - 1], mean: total / n, median, p95: sorted[Math.ceil(0.95 * n) - 1], total };
}

/** Smallest of 1, 2, 5 × 10^k that is ≥ x. */
function niceCeil(x: number): number {
  if (x <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

/**
 * Histogram of token lengths with round bin widths, about `bins` bins wide over [0, max(longest, maxSeqLen)], so the
 * max-length cut-off falls inside the drawn range.
 */
export function lengthHistogram(lengths: readonly number[], maxSeqLen?: number, bins = 40): LengthHistogram {
  let longest = 0;
  for (const x of lengths) if (x > longest) longest = x;
  const upper = Math.max(longest, maxSeqLen ?? 0, 1);
  const width = niceCeil(upper / bins);
  const nBins = Math.floor(upper / width) + 1;
  const counts = new Array<number>(nBins).fill(0);
  for (const x of lengths) counts[Math.min(nBins - 1, Math.floor(x / width))]++;
  const edges = Array.from({ length: nBins + 1 }, (_, i) => i * width);
  return { edges, counts };
}

export interface InspectOptions {
  path: string;
  format: DatasetFormat;
  tokenizer: Tokenizer | null;
  maxSeqLen?: number;
  /** Examples to preview (default 5). */
  show?: number;
  trainOn?: TrainOn;
  /** 'skip' (default) lists bad records; 'fail' throws at the first. */
  badRecords?: 'fail' | 'skip';
  /** Built-in chat template name. Without a model, chat records are previewed with chatml unless one is named. */
  chatTemplateOverride?: string;
}

/**
 * Streams the whole file once and summarises it for the dataset page and `lora-studio dataset inspect`: detected
 * format, counts, bad records with lines, token lengths (with a tokenizer, or for pre-tokenized data) and a preview
 * of the first examples as rendered, with the character spans that are trained on.
 */
export async function inspectDataset(opts: InspectOptions): Promise<DatasetSummary> {
  const show = opts.show ?? 5;
  const report = new PipelineReport();
  const override = opts.chatTemplateOverride ?? (opts.tokenizer === null ? 'chatml' : undefined);
  const stream = streamExamples(
    {
      path: opts.path,
      format: opts.format,
      tokenizer: opts.tokenizer,
      trainOn: opts.trainOn ?? 'auto',
      badRecords: opts.badRecords ?? 'skip',
      tokenize: 'when-possible',
      ...(override !== undefined ? { chatTemplateOverride: override } : {}),
    },
    report,
  );
  const lengths: number[] = [];
  let tokenized = true;
  const preview: DatasetSummary['preview'] = [];
  for await (const item of stream) {
    if (item.example) lengths.push(item.example.inputIds.length);
    else tokenized = false;
    if (preview.length < show) {
      if (item.rendered.kind === 'text') {
        preview.push({ text: item.rendered.text, trainedSpans: item.rendered.spans.map((s): Span => [s[0], s[1]]) });
      } else {
        const { text, spans } = decodeWithSpans(opts.tokenizer, item.rendered.example);
        preview.push({ text, trainedSpans: spans });
      }
    }
  }
  if (report.format === null) {
    throw new DatasetError(opts.path, report.badRecordCount > 0 ? `no record could be read: all ${report.badRecordCount} are bad` : 'the dataset has no records');
  }
  const summary: DatasetSummary = {
    path: opts.path,
    format: report.format,
    records: report.records,
    badRecords: report.badRecords,
    badRecordCount: report.badRecordCount,
    preview,
  };
  if (opts.maxSeqLen !== undefined) summary.maxSeqLen = opts.maxSeqLen;
  if (report.chatTemplate !== null) summary.chatTemplate = report.chatTemplate;
  if (tokenized && report.records > 0) {
    summary.tokenLengths = lengths;
    const stats = tokenLengthStats(lengths);
    if (stats) summary.tokenStats = stats;
    summary.histogram = lengthHistogram(lengths, opts.maxSeqLen);
    if (opts.maxSeqLen !== undefined) {
      const cut = opts.maxSeqLen;
      summary.truncated = lengths.filter((x) => x > cut).length;
    }
  }
  return summary;
}
