/**
 * What the studio reads about a dataset before training on it ('datasets.inspect', 'datasets.sample',
 * 'datasets.upload'): its format, records, the bad ones by line, a preview with the trained spans, and with a model
 * its token lengths. The TypeScript type DatasetSummary (common/protocol.ts) is inferred from this schema.
 */
import { z } from 'zod';
import { DATASET_FORMATS } from './run-config.ts';

const count = z.number().int().min(0);

export const DatasetSummarySchema = z.object({
  path: z.string(),
  format: z.enum(DATASET_FORMATS).exclude(['auto']),
  records: count,
  /** At most the first 1000 (badRecordCount counts them all). */
  badRecords: z.array(z.object({ line: z.number().int().min(0), message: z.string() })),
  /** Present when a model was given: token count per example. */
  tokenLengths: z.array(count).optional(),
  truncated: count.optional(),
  /** Character offsets [start, end) of the text the run trains on. */
  preview: z.array(z.object({ text: z.string(), trainedSpans: z.array(z.tuple([count, count])) })),
  /** All bad records (badRecords lists at most the first 1000). */
  badRecordCount: count.optional(),
  /** The max sequence length the truncation count and histogram cut-off refer to. */
  maxSeqLen: z.number().int().min(1).optional(),
  /** Statistics of tokenLengths. */
  tokenStats: z.object({ count, min: z.number(), max: z.number(), mean: z.number(), median: z.number(), p95: z.number(), total: z.number() }).optional(),
  /** Token-length histogram: counts[i] examples have a length in [edges[i], edges[i+1]). */
  histogram: z.object({ edges: z.array(z.number()), counts: z.array(count) }).optional(),
  /** What rendered chat records: 'model' (its own chat_template) or a built-in template name; absent for non-chat data. */
  chatTemplate: z.string().optional(),
});
