/**
 * The quantization report as JSON: what `lora-studio quant-report --json` writes, what the services hand the lab
 * page, and what it draws. Plain data described by zod schemas (the types are inferred from them), so it runs
 * anywhere (engine, services, renderer) and a report read back from disk or the wire can be checked.
 *
 * Grids are indexed [layer][matrix], matrix in `QuantReport.matrices` order (q, k, v, o, gate, up, down).
 */

import { z } from 'zod';

export const REPORT_MATRICES = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
export type ReportMatrix = (typeof REPORT_MATRICES)[number];
const matrix = z.enum(REPORT_MATRICES);

const count = z.number().int().min(0);
/**
 * A measured error or divergence. It can be NaN (no calibration position was scored) or Infinity (error on a matrix
 * whose weights are all zero); JSON writes both as null, which reads back as NaN, so a stored report still loads.
 */
const metric = z
  .custom<number>((v) => typeof v === 'number', 'expected a number')
  .or(z.null())
  .transform((v) => v ?? Number.NaN);
/** Decibels; null = exact (infinite SNR). */
const snrDb = z.number().nullable();

/** Equal-width bins over [lo, hi]. */
export const ReportHistogramSchema = z.object({ lo: z.number(), hi: z.number(), counts: z.array(count) });
export type ReportHistogram = z.output<typeof ReportHistogramSchema>;

export const CELL_STATUSES = ['OK', 'alert'] as const;
export type CellStatus = (typeof CELL_STATUSES)[number];
const status = z.enum(CELL_STATUSES);

/** A flagging threshold: `value` = multiplier × median (auto, with a floor) unless the user set it. */
export const ReportThresholdSchema = z.object({
  metric: z.enum(['relErr', 'kl']),
  value: z.number(),
  source: z.enum(['auto', 'multiplier', 'user']),
  multiplier: z.number().nullable(),
  median: z.number(),
  /** The auto threshold never goes below this, so a format with negligible error raises no alerts. */
  floor: z.number().nullable(),
});
export type ReportThreshold = z.output<typeof ReportThresholdSchema>;

/** The float (reference) weight of one linear. */
export const WeightCellSchema = z.object({
  layer: count,
  matrix,
  rows: count,
  cols: count,
  min: z.number(),
  max: z.number(),
  std: z.number(),
  absMax: z.number(),
  /** Histogram of the weights over [min, max]. */
  hist: ReportHistogramSchema,
});
export type WeightCell = z.output<typeof WeightCellSchema>;

/** One linear in one format. */
export const QuantCellSchema = z.object({
  layer: count,
  matrix,
  sizeBytes: count,
  mse: metric,
  /** ‖W−Ŵ‖/‖W‖ */
  relErr: metric,
  snrDb,
  maxAbsErr: metric,
  /** Histogram of W − Ŵ over [−maxAbsErr, maxAbsErr]. */
  errorHist: ReportHistogramSchema,
  /** Values the format can represent in the block (group, channel) holding the largest |w|; null for f16. */
  grid: z.array(z.number()).nullable(),
  /** 'f16' when the format cannot hold this matrix (row not a multiple of its block) and f16 was used instead. */
  fallback: z.literal('f16').nullable(),
  /** With calibration: cosine similarity and histogram KL of this linear's output vs the float model. */
  cosine: z.number().nullable(),
  kl: z.number().nullable(),
  status,
  /** Why the cell is flagged, in words (empty when OK). */
  reasons: z.array(z.string()),
});
export type QuantCell = z.output<typeof QuantCellSchema>;

/** A decoder layer's output (residual stream) on the calibration text. */
export const LayerBehaviourSchema = z.object({ layer: count, cosine: metric, kl: metric, status });
export type LayerBehaviour = z.output<typeof LayerBehaviourSchema>;

export const OutputBehaviourSchema = z.object({
  positions: count,
  meanKl: metric,
  top1Agreement: metric,
  perplexityFloat: metric,
  perplexityQuant: metric,
  perplexityDelta: metric,
});
export type OutputBehaviour = z.output<typeof OutputBehaviourSchema>;

/** One row of the worst-first table. */
export const TableRowSchema = z.object({ layer: count, matrix, relErr: metric, snrDb, kl: z.number().nullable(), cosine: z.number().nullable(), status });
export type TableRow = z.output<typeof TableRowSchema>;

export const ADAPTER_MODES = ['none', 'merged', 'on-quantized'] as const;
export type AdapterMode = (typeof ADAPTER_MODES)[number];

export const FormatReportSchema = z.object({
  /** Unique within the report: the format name, plus `/merged` or `/on-quantized` when an adapter is involved. */
  key: z.string(),
  format: z.string(),
  label: z.string(),
  /** none: no adapter; merged: W + s·BA quantized; on-quantized: Q(W) + s·BA with the adapter kept in fp32. */
  adapterMode: z.enum(ADAPTER_MODES),
  bitsPerWeight: z.number().positive(),
  /** Bytes of all decoder linears in this format. */
  linearBytes: count,
  /** Whole model: linears in this format, embeddings/output in fp16, norms in fp32 (as the GGUF export writes), plus the fp32 adapter in on-quantized mode. */
  modelBytes: count,
  /** Pooled over every linear. */
  overall: z.object({ mse: metric, relErr: metric, snrDb, maxAbsErr: metric }),
  cells: z.array(z.array(QuantCellSchema)),
  thresholds: z.object({ weight: ReportThresholdSchema, activation: ReportThresholdSchema.nullable(), layer: ReportThresholdSchema.nullable() }),
  /** Every cell, worst first (by activation KL with calibration, else by relative error). */
  worst: z.array(TableRowSchema),
  sortedBy: z.enum(['kl', 'relErr']),
  alerts: count,
  /** With calibration. */
  layers: z.array(LayerBehaviourSchema).nullable(),
  output: OutputBehaviourSchema.nullable(),
});
export type FormatReport = z.output<typeof FormatReportSchema>;

export const PlanPointSchema = z.object({
  /** Layers at the higher precision (the first `kept` of `rankedLayers`). */
  kept: count,
  sizeBytes: count,
  relErr: metric,
  snrDb,
});
export type PlanPoint = z.output<typeof PlanPointSchema>;

const sizeAndError = z.object({ sizeBytes: count, relErr: metric, snrDb });

/** Keep some layers at a higher precision: which, what it costs, and the weight error it predicts. */
export const MixedPrecisionPlanSchema = z.object({
  base: z.string(),
  high: z.string(),
  /** The suggestion: flagged layers, best gain first. */
  keepLayers: z.array(count),
  /** Every layer, by how much error moving it to `high` removes (behaviour KL with calibration, else weight error). */
  rankedLayers: z.array(count),
  rankedBy: z.enum(['kl', 'weightError']),
  sizeBytes: count,
  /** Pooled weight error of the plan (exact for the weights; a prediction of the behaviour). */
  predicted: z.object({ relErr: metric, snrDb }),
  baseline: sizeAndError,
  allHigh: sizeAndError,
  /** Size/error for 0..layers kept, in ranking order: the trade-off curve. */
  curve: z.array(PlanPointSchema),
  note: z.string(),
});
export type MixedPrecisionPlan = z.output<typeof MixedPrecisionPlanSchema>;

export const QuantReportSchema = z.object({
  version: z.literal(1),
  createdAt: z.string(),
  elapsedMs: z.number().min(0),
  model: z.object({
    name: z.string(),
    architecture: z.string(),
    layers: count,
    hiddenSize: count,
    intermediateSize: count,
    heads: count,
    kvHeads: count,
    vocabSize: count,
    linearParameters: count,
    parameters: count,
    /** Model size with every tensor in fp32 / fp16. */
    bytesF32: count,
    bytesF16: count,
  }),
  adapter: z.object({ name: z.string(), r: count, alpha: z.number(), targets: z.array(z.string()), parameters: count }).nullable(),
  calibration: z.object({ source: z.string(), sequences: count, seqLen: count, tokens: count, bins: count }).nullable(),
  /** The order of the [layer][matrix] grids. */
  matrices: z.array(matrix),
  histogramBins: count,
  weights: z.array(z.array(WeightCellSchema)),
  formats: z.array(FormatReportSchema),
  plans: z.array(MixedPrecisionPlanSchema),
});
export type QuantReport = z.output<typeof QuantReportSchema>;
