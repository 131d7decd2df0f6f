/**
 * The quantization lab's report: for every format, the error of every decoder linear (weights), and with calibration
 * tokens how each linear's and each layer's output and the next-token distribution move (behaviour); flags, a
 * worst-first table, and a mixed-precision suggestion. JSON shapes in report-types.ts.
 *
 * Flagging (documented in the report as `thresholds`):
 * - weights: relErr > √3 × median relErr of the format's cells, and at least 2 %. √3 because KL grows with the square
 *   of the error, so it is the weight-side counterpart of the behaviour rule's 3 × median KL. The floor keeps formats
 *   with negligible error (f16, 8-bit) quiet.
 * - behaviour: a linear's (or a layer's) output-histogram KL > 3 × median over cells (layers), and at least 0.01 nats
 *   (below that, two 2048-bin histograms of the same values differ by little more than values crossing bin edges).
 * A user override (absolute value or another multiplier) replaces the automatic rule and its floor.
 *
 * The quantized model of a format is "fake-quantized": each decoder linear replaced by dequantize(quantize(W)); the
 * embeddings, norms and output head stay float, so every difference comes from the linears being measured.
 */
import type { FloatArray, Linear, LoraWeights, ModelWeights } from '../model/types.ts';
import { floatWeight } from '../model/weight-array.ts';
import { mergeLora } from '../model/lora.ts';
import { QUANT_FORMATS, type QuantFormatName } from './format.ts';
import { errorHistogram, errorStats, histogram, minMax, statsFromEnergies, type ErrorStats } from './metrics.ts';
import { ACTIVATION_BINS, OutputComparison, activationHistogramKl, cosineSimilarity, flagThreshold, type ThresholdOverride } from './activation-metrics.ts';
import { CalibForward, MATRIX_NAMES, MATRIX_TARGET, logitsRows, type MatrixName } from './calib-forward.ts';
import type {
  AdapterMode,
  FormatReport,
  LayerBehaviour,
  MixedPrecisionPlan,
  QuantCell,
  QuantReport,
  ReportThreshold,
  TableRow,
  WeightCell,
} from './report-types.ts';

export const WEIGHT_THRESHOLD_MULTIPLIER = Math.sqrt(3);
export const WEIGHT_THRESHOLD_FLOOR = 0.02;
export const KL_THRESHOLD_MULTIPLIER = 3;
export const KL_THRESHOLD_FLOOR = 1e-2;
export const DEFAULT_HISTOGRAM_BINS = 64;

export interface CalibrationTokens {
  /** [batch, seqLen] token ids, row-major. */
  inputIds: Int32Array;
  batch: number;
  seqLen: number;
  /** Where the text came from, for the report. */
  source: string;
}

export interface QuantReportProgress {
  phase: 'weights' | 'calibration';
  done: number;
  total: number;
  format: string;
}

export interface QuantReportOptions {
  /** An adapter to include: the report then covers both "merged" and "adapter on a quantized base" (see adapterModes). */
  lora?: LoraWeights | null;
  adapterName?: string;
  adapterModes?: ('merged' | 'on-quantized')[];
  calib?: CalibrationTokens | null;
  histogramBins?: number;
  activationBins?: number;
  thresholds?: { weight?: ThresholdOverride; activation?: ThresholdOverride; layer?: ThresholdOverride };
  modelName?: string;
  onProgress?: (p: QuantReportProgress) => void;
  /** Checked between matrices and layers; an aborted signal ends the report with an error named 'AbortError'. */
  signal?: AbortSignal;
}

const linOf = (layer: ModelWeights['layers'][number], m: MatrixName): Linear => layer[m];

function asF32(a: FloatArray, what: string): Float32Array {
  if (!(a instanceof Float32Array)) throw new Error(`quant report: ${what} must be a Float32Array (load the model with dtype Float32Array)`);
  return a;
}

function argMaxAbs(w: Float32Array): number {
  let k = 0;
  let best = -1;
  for (let i = 0; i < w.length; i++) {
    const a = Math.abs(w[i]);
    if (a > best) {
      best = a;
      k = i;
    }
  }
  return k;
}

function weightCell(layer: number, matrix: MatrixName, lin: Linear, bins: number): WeightCell {
  const w = floatWeight(lin.weight);
  const { min, max } = minMax(w);
  let s = 0;
  let ss = 0;
  for (let i = 0; i < w.length; i++) {
    s += w[i];
    ss += w[i] * w[i];
  }
  const mean = s / w.length;
  return {
    layer,
    matrix,
    rows: lin.outFeatures,
    cols: lin.inFeatures,
    min,
    max,
    std: Math.sqrt(Math.max(0, ss / w.length - mean * mean)),
    absMax: Math.max(Math.abs(min), Math.abs(max)),
    hist: histogram(w, bins, min, max),
  };
}

function threshold(metric: 'relErr' | 'kl', values: number[], override: ThresholdOverride | undefined, k: number, floor: number): ReportThreshold {
  const t = flagThreshold(values, override ?? { multiplier: k });
  const auto = override === undefined;
  return {
    metric,
    value: auto ? Math.max(t.value, floor) : t.value,
    source: auto ? 'auto' : t.source,
    multiplier: t.multiplier,
    median: t.median,
    floor: auto ? floor : null,
  };
}

function fmtNum(x: number): string {
  return x === 0 ? '0' : Math.abs(x) >= 0.01 && Math.abs(x) < 1000 ? x.toFixed(4) : x.toExponential(2);
}

interface Entry {
  key: string;
  format: QuantFormatName;
  mode: AdapterMode;
  energies: { sig: number; err: number }[][];
  report: FormatReport;
}

/** Bytes of everything that is not a decoder linear, as the GGUF export stores it: fp16 tables, fp32 norms. */
function otherBytes(model: ModelWeights): number {
  const c = model.config;
  const tables = c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2);
  let norms = model.norm.length;
  for (const L of model.layers) norms += L.inputNorm.length + L.postAttentionNorm.length + (L.qNorm?.length ?? 0) + (L.kNorm?.length ?? 0);
  return 2 * tables + 4 * norms;
}

function adapterParams(lora: LoraWeights): number {
  let n = 0;
  for (const layer of lora.layers) for (const p of Object.values(layer)) if (p) n += p.A.length + p.B.length;
  return n;
}

function abortError(): Error {
  const e = new Error('quantization report cancelled');
  e.name = 'AbortError';
  return e;
}

/**
 * Matrices a format cannot hold (a GGML block of 32 that does not divide the row) are stored in f16 instead, as
 * llama.cpp's converter falls back to F16 for them; returns the reason, or null when the format fits.
 */
export function fallbacks(format: QuantFormatName): (rows: number, cols: number) => string | null {
  return (rows, cols) => {
    try {
      QUANT_FORMATS[format].check(rows, cols);
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A copy of `model` with each decoder linear's weight replaced. */
function withLinears(model: ModelWeights, weightOf: (layer: number, m: MatrixName) => Float32Array): ModelWeights {
  return {
    ...model,
    layers: model.layers.map((L, l) => {
      const next = { ...L };
      for (const m of MATRIX_NAMES) next[m] = { ...L[m], weight: weightOf(l, m) };
      return next;
    }),
  };
}

export async function quantReport(model: ModelWeights, formats: readonly QuantFormatName[], opts: QuantReportOptions = {}): Promise<QuantReport> {
  const started = Date.now();
  const c = model.config;
  const bins = opts.histogramBins ?? DEFAULT_HISTOGRAM_BINS;
  const lora = opts.lora ?? null;
  if (formats.length === 0) throw new Error('quant report: choose at least one format');
  for (const f of formats) if (!(f in QUANT_FORMATS)) throw new Error(`quant report: unknown format '${f}'`);
  model.layers.forEach((L, l) => {
    for (const m of MATRIX_NAMES) asF32(floatWeight(L[m].weight), `layer ${l} ${MATRIX_TARGET[m]}`);
  });
  const reference = lora ? mergeLora(model, lora) : model;
  const modes: AdapterMode[] = lora ? (opts.adapterModes ?? ['merged', 'on-quantized']) : ['none'];
  const adapted = (l: number, m: MatrixName): boolean => lora !== null && lora.layers[l]?.[MATRIX_TARGET[m]] !== undefined;

  const weights: WeightCell[][] = reference.layers.map((L, l) => MATRIX_NAMES.map((m) => weightCell(l, m, linOf(L, m), bins)));
  let linearParameters = 0;
  for (const L of model.layers) for (const m of MATRIX_NAMES) linearParameters += L[m].weight.length;
  const other = otherBytes(model);
  let parameters = linearParameters + c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2) + model.norm.length;
  for (const L of model.layers) parameters += L.inputNorm.length + L.postAttentionNorm.length + (L.qNorm?.length ?? 0) + (L.kNorm?.length ?? 0);
  const adapterBytes = lora ? 4 * adapterParams(lora) : 0;

  const entries: Entry[] = [];
  const totalCells = formats.length * modes.length * c.numLayers * MATRIX_NAMES.length;
  let done = 0;
  for (const format of formats) {
    const fmt = QUANT_FORMATS[format];
    const fallbackOf = fallbacks(format);
    for (const mode of modes) {
      const key = mode === 'none' ? format : `${format}/${mode}`;
      const cells: QuantCell[][] = [];
      const energies: { sig: number; err: number }[][] = [];
      let linearBytes = 0;
      for (let l = 0; l < c.numLayers; l++) {
        const row: QuantCell[] = [];
        const erow: { sig: number; err: number }[] = [];
        for (const m of MATRIX_NAMES) {
          if (opts.signal?.aborted) throw abortError();
          const ref = reference.layers[l][m];
          const refW = floatWeight(ref.weight);
          const src = asF32(mode === 'on-quantized' ? floatWeight(model.layers[l][m].weight) : refW, `layer ${l} ${MATRIX_TARGET[m]}`);
          const rows = ref.outFeatures;
          const cols = ref.inFeatures;
          const fb = fallbackOf(rows, cols);
          const cf = fb ? QUANT_FORMATS.f16 : fmt;
          const packed = cf.quantize(src, rows, cols);
          const deq = cf.dequantize(packed, rows, cols);
          if (mode === 'on-quantized' && adapted(l, m)) {
            const base = floatWeight(model.layers[l][m].weight);
            for (let i = 0; i < deq.length; i++) deq[i] += refW[i] - base[i];
          }
          const st: ErrorStats = errorStats(refW, deq);
          row.push({
            layer: l,
            matrix: m,
            sizeBytes: packed.length,
            mse: st.mse,
            relErr: st.relErr,
            snrDb: st.snrDb,
            maxAbsErr: st.maxAbsErr,
            errorHist: errorHistogram(refW, deq, bins, st.maxAbsErr),
            grid: cf.levels(packed, rows, cols, argMaxAbs(src)),
            fallback: fb ? 'f16' : null,
            cosine: null,
            kl: null,
            status: 'OK',
            reasons: fb ? [`stored as f16: ${fb}`] : [],
          });
          erow.push({ sig: st.signalEnergy, err: st.errorEnergy });
          linearBytes += packed.length;
          opts.onProgress?.({ phase: 'weights', done: ++done, total: totalCells, format: key });
          await tick();
        }
        cells.push(row);
        energies.push(erow);
      }
      const pooled = pool(energies, cells);
      const relErrs = cells.flat().map((x) => x.relErr);
      const wT = threshold('relErr', relErrs, opts.thresholds?.weight, WEIGHT_THRESHOLD_MULTIPLIER, WEIGHT_THRESHOLD_FLOOR);
      for (const cell of cells.flat()) {
        if (cell.relErr > wT.value) {
          cell.status = 'alert';
          cell.reasons.push(`relative error ${fmtNum(cell.relErr)} > ${fmtNum(wT.value)} (${wT.source === 'user' ? 'your threshold' : `${fmtNum(cell.relErr / wT.median)} × median`})`);
        }
      }
      entries.push({
        key,
        format,
        mode,
        energies,
        report: {
          key,
          format,
          label: fmt.label,
          adapterMode: mode,
          bitsPerWeight: fmt.bitsPerWeight,
          linearBytes,
          modelBytes: linearBytes + other + (mode === 'on-quantized' ? adapterBytes : 0),
          overall: { mse: pooled.mse, relErr: pooled.relErr, snrDb: pooled.snrDb, maxAbsErr: pooled.maxAbsErr },
          cells,
          thresholds: { weight: wT, activation: null, layer: null },
          worst: [],
          sortedBy: 'relErr',
          alerts: 0,
          layers: null,
          output: null,
        },
      });
    }
  }

  if (opts.calib) await calibrate(model, reference, lora, entries, opts.calib, opts);

  for (const e of entries) {
    const r = e.report;
    const flat = r.cells.flat();
    r.sortedBy = opts.calib ? 'kl' : 'relErr';
    r.worst = flat
      .map((x): TableRow => ({ layer: x.layer, matrix: x.matrix, relErr: x.relErr, snrDb: x.snrDb, kl: x.kl, cosine: x.cosine, status: x.status }))
      .sort((a, b) => (r.sortedBy === 'kl' ? (b.kl ?? 0) - (a.kl ?? 0) : 0) || b.relErr - a.relErr);
    r.alerts = flat.filter((x) => x.status === 'alert').length + (r.layers?.filter((x) => x.status === 'alert').length ?? 0);
  }

  return {
    version: 1,
    createdAt: new Date().toISOString(),
    elapsedMs: Date.now() - started,
    model: {
      name: opts.modelName ?? c.architecture,
      architecture: c.architecture,
      layers: c.numLayers,
      hiddenSize: c.hiddenSize,
      intermediateSize: c.intermediateSize,
      heads: c.numHeads,
      kvHeads: c.numKvHeads,
      vocabSize: c.vocabSize,
      linearParameters,
      parameters,
      bytesF32: 4 * parameters,
      bytesF16: 2 * parameters,
    },
    adapter: lora ? { name: opts.adapterName ?? 'adapter', r: lora.config.r, alpha: lora.config.alpha, targets: [...lora.config.targets], parameters: adapterParams(lora) } : null,
    calibration: opts.calib ? { source: opts.calib.source, sequences: opts.calib.batch, seqLen: opts.calib.seqLen, tokens: opts.calib.batch * opts.calib.seqLen, bins: opts.activationBins ?? ACTIVATION_BINS } : null,
    matrices: [...MATRIX_NAMES],
    histogramBins: bins,
    weights,
    formats: entries.map((e) => e.report),
    plans: suggestPlans(entries, other, adapterBytes),
  };
}

function pool(energies: { sig: number; err: number }[][], cells: QuantCell[][]): ErrorStats {
  let sig = 0;
  let err = 0;
  let n = 0;
  let maxAbs = 0;
  energies.forEach((row, l) =>
    row.forEach((e, m) => {
      sig += e.sig;
      err += e.err;
      maxAbs = Math.max(maxAbs, cells[l][m].maxAbsErr);
      n += cells[l][m].errorHist.counts.reduce((a, b) => a + b, 0);
    }),
  );
  return statsFromEnergies(n, sig, err, maxAbs);
}

async function calibrate(
  model: ModelWeights,
  reference: ModelWeights,
  lora: LoraWeights | null,
  entries: Entry[],
  calib: CalibrationTokens,
  opts: QuantReportOptions,
): Promise<void> {
  const c = model.config;
  const { batch: B, seqLen: T, inputIds } = calib;
  if (inputIds.length !== B * T || B < 1 || T < 2) throw new Error(`quant report: calibration needs batch × seqLen ids with seqLen ≥ 2, got ${inputIds.length} ids for ${B} × ${T}`);
  for (let i = 0; i < inputIds.length; i++) {
    if (!(inputIds[i] >= 0 && inputIds[i] < c.vocabSize)) throw new Error(`quant report: calibration token ${inputIds[i]} at position ${i} is outside the vocabulary [0, ${c.vocabSize})`);
  }
  const actBins = opts.activationBins ?? ACTIVATION_BINS;
  const total = entries.length * (c.numLayers + 1);
  let done = 0;
  for (const e of entries) {
    const fmt = QUANT_FORMATS[e.format];
    // Quantized weights of this entry, rebuilt here so only one fake-quantized model is in memory at a time.
    const src = e.mode === 'merged' ? reference : model;
    const fallbackOf = fallbacks(e.format);
    const fake = withLinears(src, (l, m) => {
      const lin = src.layers[l][m];
      const cf = fallbackOf(lin.outFeatures, lin.inFeatures) ? QUANT_FORMATS.f16 : fmt;
      return cf.dequantize(cf.quantize(lin.weight as Float32Array, lin.outFeatures, lin.inFeatures), lin.outFeatures, lin.inFeatures);
    });
    // Reference: the float model with the adapter applied (for 'merged' that is the merged weights themselves).
    const fFloat = new CalibForward(lora ? model : reference, lora, inputIds, B, T);
    const fQuant = new CalibForward(fake, e.mode === 'on-quantized' ? lora : null, inputIds, B, T);
    const layers: LayerBehaviour[] = [];
    for (let l = 0; l < c.numLayers; l++) {
      if (opts.signal?.aborted) throw abortError();
      const a = fFloat.step();
      const b = fQuant.step();
      MATRIX_NAMES.forEach((m, mi) => {
        const cell = e.report.cells[l][mi];
        cell.cosine = cosineSimilarity(a.linears[m], b.linears[m]);
        cell.kl = activationHistogramKl(a.linears[m], b.linears[m], actBins);
      });
      layers.push({ layer: l, cosine: cosineSimilarity(a.hidden, b.hidden), kl: activationHistogramKl(a.hidden, b.hidden, actBins), status: 'OK' });
      opts.onProgress?.({ phase: 'calibration', done: ++done, total, format: e.key });
      await tick();
    }
    const hf = fFloat.finalHidden();
    const hq = fQuant.finalHidden();
    const cmp = new OutputComparison();
    const V = c.vocabSize;
    const chunk = Math.max(1, Math.floor((1 << 22) / V));
    for (let r0 = 0; r0 < B * T; r0 += chunk) {
      if (opts.signal?.aborted) throw abortError();
      const r1 = Math.min(B * T, r0 + chunk);
      const lf = logitsRows(lora ? model : reference, hf, r0, r1);
      const lq = logitsRows(fake, hq, r0, r1);
      for (let r = r0; r < r1; r++) {
        const t = r % T;
        cmp.add(lf.subarray((r - r0) * V, (r - r0 + 1) * V), lq.subarray((r - r0) * V, (r - r0 + 1) * V), t < T - 1 ? inputIds[r + 1] : -1);
      }
      await tick();
    }
    opts.onProgress?.({ phase: 'calibration', done: ++done, total, format: e.key });
    e.report.output = cmp.result();

    const cellT = threshold('kl', e.report.cells.flat().map((x) => x.kl ?? 0), opts.thresholds?.activation, KL_THRESHOLD_MULTIPLIER, KL_THRESHOLD_FLOOR);
    const layerT = threshold('kl', layers.map((x) => x.kl), opts.thresholds?.layer, KL_THRESHOLD_MULTIPLIER, KL_THRESHOLD_FLOOR);
    for (const cell of e.report.cells.flat()) {
      if ((cell.kl ?? 0) > cellT.value) {
        cell.status = 'alert';
        cell.reasons.push(`output KL ${fmtNum(cell.kl ?? 0)} > ${fmtNum(cellT.value)} (${cellT.source === 'user' ? 'your threshold' : `${fmtNum((cell.kl ?? 0) / cellT.median)} × median`})`);
      }
    }
    for (const x of layers) if (x.kl > layerT.value) x.status = 'alert';
    e.report.layers = layers;
    e.report.thresholds.activation = cellT;
    e.report.thresholds.layer = layerT;
  }
}

/** For each format, the higher-precision format its sensitive layers would move to (same family first). */
function higherFormat(base: Entry, entries: Entry[]): Entry | null {
  const ggml = (f: string): boolean => f.startsWith('q');
  const candidates = entries.filter((e) => e.mode === base.mode && e.report.bitsPerWeight > base.report.bitsPerWeight && e.report.bitsPerWeight >= 8);
  if (candidates.length === 0) return null;
  candidates.sort((a, b) => Number(ggml(b.format) === ggml(base.format)) - Number(ggml(a.format) === ggml(base.format)) || a.report.bitsPerWeight - b.report.bitsPerWeight);
  return candidates[0];
}

function suggestPlans(entries: Entry[], other: number, adapterBytes: number): MixedPrecisionPlan[] {
  const plans: MixedPrecisionPlan[] = [];
  for (const base of entries) {
    const high = higherFormat(base, entries);
    if (!high) continue;
    const L = base.report.cells.length;
    const extra = other + (base.mode === 'on-quantized' ? adapterBytes : 0);
    const layerBytes = (e: Entry, l: number): number => e.report.cells[l].reduce((s, x) => s + x.sizeBytes, 0);
    const layerErr = (e: Entry, l: number): number => e.energies[l].reduce((s, x) => s + x.err, 0);
    const sigTotal = base.energies.flat().reduce((s, x) => s + x.sig, 0);
    const byKl = base.report.layers !== null && high.report.layers !== null;
    const gain = (l: number): number => (byKl ? (base.report.layers?.[l].kl ?? 0) - (high.report.layers?.[l].kl ?? 0) : layerErr(base, l) - layerErr(high, l));
    const ranked = Array.from({ length: L }, (_, l) => l).sort((a, b) => gain(b) - gain(a) || a - b);
    const evaluate = (keep: ReadonlySet<number>): { sizeBytes: number; relErr: number; snrDb: number | null } => {
      let size = extra;
      let err = 0;
      for (let l = 0; l < L; l++) {
        const e = keep.has(l) ? high : base;
        size += layerBytes(e, l);
        err += layerErr(e, l);
      }
      const st = statsFromEnergies(1, sigTotal, err, 0);
      return { sizeBytes: size, relErr: st.relErr, snrDb: st.snrDb };
    };
    const flagged = new Set<number>();
    base.report.cells.forEach((row, l) => {
      if (row.some((x) => x.status === 'alert')) flagged.add(l);
    });
    base.report.layers?.forEach((x) => {
      if (x.status === 'alert') flagged.add(x.layer);
    });
    const keepLayers = ranked.filter((l) => flagged.has(l));
    const curve = [];
    for (let k = 0; k <= L; k++) curve.push({ kept: k, ...evaluate(new Set(ranked.slice(0, k))) });
    const plan = evaluate(new Set(keepLayers));
    const baseline = evaluate(new Set());
    plans.push({
      base: base.key,
      high: high.key,
      keepLayers,
      rankedLayers: ranked,
      rankedBy: byKl ? 'kl' : 'weightError',
      sizeBytes: plan.sizeBytes,
      predicted: { relErr: plan.relErr, snrDb: plan.snrDb },
      baseline,
      allHigh: evaluate(new Set(ranked)),
      curve,
      note:
        keepLayers.length === 0
          ? `no layer stands out in ${base.key}: quantize every layer the same way`
          : `keep layer${keepLayers.length > 1 ? 's' : ''} ${keepLayers.join(', ')} in ${high.key}: ${fmtNum(baseline.relErr)} → ${fmtNum(plan.relErr)} relative weight error for +${((plan.sizeBytes / baseline.sizeBytes - 1) * 100).toFixed(1)} % size`,
    });
  }
  return plans;
}
