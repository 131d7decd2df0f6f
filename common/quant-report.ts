/**
 * The quantization report as JSON: what `lora-studio quant-report --json` writes, what the services hand the lab
 * page, and what it draws. Plain data with no imports, so it runs anywhere (engine, services, renderer).
 *
 * Grids are indexed [layer][matrix], matrix in `QuantReport.matrices` order (q, k, v, o, gate, up, down).
 */

export type ReportMatrix = 'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down';

/** Equal-width bins over [lo, hi]. */
export interface ReportHistogram {
  lo: number;
  hi: number;
  counts: number[];
}

export type CellStatus = 'OK' | 'alert';

/** A flagging threshold: `value` = multiplier × median (auto, with a floor) unless the user set it. */
export interface ReportThreshold {
  metric: 'relErr' | 'kl';
  value: number;
  source: 'auto' | 'multiplier' | 'user';
  multiplier: number | null;
  median: number;
  /** The auto threshold never goes below this, so a format with negligible error raises no alerts. */
  floor: number | null;
}

/** The float (reference) weight of one linear. */
export interface WeightCell {
  layer: number;
  matrix: ReportMatrix;
  rows: number;
  cols: number;
  min: number;
  max: number;
  std: number;
  absMax: number;
  /** Histogram of the weights over [min, max]. */
  hist: ReportHistogram;
}

/** One linear in one format. */
export interface QuantCell {
  layer: number;
  matrix: ReportMatrix;
  sizeBytes: number;
  mse: number;
  /** ‖W−Ŵ‖/‖W‖ */
  relErr: number;
  /** null = exact (infinite SNR). */
  snrDb: number | null;
  maxAbsErr: number;
  /** Histogram of W − Ŵ over [−maxAbsErr, maxAbsErr]. */
  errorHist: ReportHistogram;
  /** Values the format can represent in the block (group, channel) holding the largest |w|; null for f16. */
  grid: number[] | null;
  /** 'f16' when the format cannot hold this matrix (row not a multiple of its block) and f16 was used instead. */
  fallback: 'f16' | null;
  /** With calibration: cosine similarity and histogram KL of this linear's output vs the float model. */
  cosine: number | null;
  kl: number | null;
  status: CellStatus;
  /** Why the cell is flagged, in words (empty when OK). */
  reasons: string[];
}

/** A decoder layer's output (residual stream) on the calibration text. */
export interface LayerBehaviour {
  layer: number;
  cosine: number;
  kl: number;
  status: CellStatus;
}

export interface OutputBehaviour {
  positions: number;
  meanKl: number;
  top1Agreement: number;
  perplexityFloat: number;
  perplexityQuant: number;
  perplexityDelta: number;
}

/** One row of the worst-first table. */
export interface TableRow {
  layer: number;
  matrix: ReportMatrix;
  relErr: number;
  snrDb: number | null;
  kl: number | null;
  cosine: number | null;
  status: CellStatus;
}

export type AdapterMode = 'none' | 'merged' | 'on-quantized';

export interface FormatReport {
  /** Unique within the report: the format name, plus `/merged` or `/on-quantized` when an adapter is involved. */
  key: string;
  format: string;
  label: string;
  /** none: no adapter; merged: W + s·BA quantized; on-quantized: Q(W) + s·BA with the adapter kept in fp32. */
  adapterMode: AdapterMode;
  bitsPerWeight: number;
  /** Bytes of all decoder linears in this format. */
  linearBytes: number;
  /** Whole model: linears in this format, embeddings/output in fp16, norms in fp32 (as the GGUF export writes), plus the fp32 adapter in on-quantized mode. */
  modelBytes: number;
  /** Pooled over every linear. */
  overall: { mse: number; relErr: number; snrDb: number | null; maxAbsErr: number };
  cells: QuantCell[][];
  thresholds: { weight: ReportThreshold; activation: ReportThreshold | null; layer: ReportThreshold | null };
  /** Every cell, worst first (by activation KL with calibration, else by relative error). */
  worst: TableRow[];
  sortedBy: 'kl' | 'relErr';
  alerts: number;
  /** With calibration. */
  layers: LayerBehaviour[] | null;
  output: OutputBehaviour | null;
}

export interface PlanPoint {
  /** Layers at the higher precision (the first `kept` of `rankedLayers`). */
  kept: number;
  sizeBytes: number;
  relErr: number;
  snrDb: number | null;
}

/** Keep some layers at a higher precision: which, what it costs, and the weight error it predicts. */
export interface MixedPrecisionPlan {
  base: string;
  high: string;
  /** The suggestion: flagged layers, best gain first. */
  keepLayers: number[];
  /** Every layer, by how much error moving it to `high` removes (behaviour KL with calibration, else weight error). */
  rankedLayers: number[];
  rankedBy: 'kl' | 'weightError';
  sizeBytes: number;
  /** Pooled weight error of the plan (exact for the weights; a prediction of the behaviour). */
  predicted: { relErr: number; snrDb: number | null };
  baseline: { sizeBytes: number; relErr: number; snrDb: number | null };
  allHigh: { sizeBytes: number; relErr: number; snrDb: number | null };
  /** Size/error for 0..layers kept, in ranking order: the trade-off curve. */
  curve: PlanPoint[];
  note: string;
}

export interface QuantReport {
  version: 1;
  createdAt: string;
  elapsedMs: number;
  model: {
    name: string;
    architecture: string;
    layers: number;
    hiddenSize: number;
    intermediateSize: number;
    heads: number;
    kvHeads: number;
    vocabSize: number;
    linearParameters: number;
    parameters: number;
    /** Model size with every tensor in fp32 / fp16. */
    bytesF32: number;
    bytesF16: number;
  };
  adapter: { name: string; r: number; alpha: number; targets: string[]; parameters: number } | null;
  calibration: { source: string; sequences: number; seqLen: number; tokens: number; bins: number } | null;
  matrices: ReportMatrix[];
  histogramBins: number;
  weights: WeightCell[][];
  formats: FormatReport[];
  plans: MixedPrecisionPlan[];
}
