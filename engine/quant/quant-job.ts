/**
 * One quantization-lab job, from the request the services validated to the report: load the model (and adapter),
 * tokenize the calibration text, run quantReport. Progress is reported as one fraction over the whole job so the
 * UI's bar never jumps back between phases. Runs inside the quant worker (quant-worker.ts), or directly in a test.
 */
import { basename, resolve } from 'node:path';
import type { QuantJobRequest, QuantProgress } from '../../common/protocol.ts';
import type { QuantReport } from '../../common/quant-report.ts';
import { loadModel, loadTokenizer } from '../io/model-source.ts';
import { loadAdapter } from '../io/peft-adapter.ts';
import { ensureSample } from '../io/sample.ts';
import type { LoraWeights, ModelWeights } from '../model/types.ts';
import type { ThresholdOverride } from './activation-metrics.ts';
import { calibrationTokens } from './calib-text.ts';
import { parseFormatList, type QuantFormatName } from './format.ts';
import { quantReport, type CalibrationTokens, type QuantReportOptions } from './report.ts';

export type QuantJobProgress = Omit<QuantProgress, 'jobId'>;

export interface QuantJobOptions {
  onProgress?: (p: QuantJobProgress) => void;
  signal?: AbortSignal;
}

/** Share of the bar the loading phase takes; the rest goes to weights (and calibration, when there is some). */
const LOADING_SHARE = 0.05;

/** An error about one field of the request, so the UI can show it next to that input. */
export class QuantJobError extends Error {
  readonly field: string;
  readonly file?: string;
  constructor(message: string, field: string, file?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'QuantJobError';
    this.field = field;
    if (file !== undefined) this.file = file;
  }
}

function about<T>(field: string, path: string, what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if ((e as Error | undefined)?.name === 'AbortError') throw e;
    const msg = e instanceof Error ? e.message : String(e);
    // Loader messages usually name the path already; when one does not, say which file the user chose.
    throw new QuantJobError(msg.includes(path) || msg.includes(resolve(path)) ? msg : `${what} ${path}: ${msg}`, field, path, { cause: e });
  }
}

function thresholdsOf(t: QuantJobRequest['thresholds']): QuantReportOptions['thresholds'] {
  if (!t) return undefined;
  const k = t.multiplier;
  const kl = (): ThresholdOverride | undefined => (t.kl !== undefined ? { value: t.kl } : k !== undefined ? { multiplier: k } : undefined);
  // k × median KL corresponds to √k × median relative error (KL grows with the square of the error), as in the CLI.
  const weight: ThresholdOverride | undefined = t.relErr !== undefined ? { value: t.relErr } : k !== undefined ? { multiplier: Math.sqrt(k) } : undefined;
  return { weight, activation: kl(), layer: kl() };
}

function abortError(): Error {
  const e = new Error('quantization report cancelled');
  e.name = 'AbortError';
  return e;
}

export async function runQuantJob(req: QuantJobRequest, opts: QuantJobOptions = {}): Promise<QuantReport> {
  const report = (p: QuantJobProgress): void => opts.onProgress?.(p);
  const checkAbort = (): void => {
    if (opts.signal?.aborted) throw abortError();
  };
  let formats: QuantFormatName[];
  try {
    formats = parseFormatList(req.formats.join(','));
  } catch (e) {
    throw new QuantJobError(e instanceof Error ? e.message : String(e), 'formats', undefined, { cause: e });
  }
  const calibWanted = req.useSampleCalib === true || (req.calibPath !== undefined && req.calibPath !== '');

  report({ phase: 'loading', done: 0, total: 1, format: '', fraction: 0 });
  const model: ModelWeights = about('modelPath', req.modelPath, 'model folder', () =>
    loadModel(req.modelPath, {
      dtype: Float32Array,
      onTensor: (_name, i, total) => report({ phase: 'loading', done: i + 1, total, format: '', fraction: (LOADING_SHARE * (i + 1)) / total }),
    }),
  );
  checkAbort();
  const adapterPath = req.adapterPath && req.adapterPath !== '' ? req.adapterPath : null;
  const lora: LoraWeights | null = adapterPath ? about('adapterPath', adapterPath, 'adapter', () => loadAdapter(adapterPath, model.config)) : null;
  checkAbort();

  let calib: CalibrationTokens | null = null;
  if (calibWanted) {
    const path = req.useSampleCalib ? (await ensureSample()).datasetPath : (req.calibPath as string);
    const field = req.useSampleCalib ? 'useSampleCalib' : 'calibPath';
    const tok = await loadTokenizer(req.modelPath);
    if (!tok) throw new QuantJobError(`${req.modelPath} has no tokenizer.json, so the calibration text cannot be tokenized (measure weights only, or pick a model with a tokenizer)`, field, req.modelPath);
    calib = about(field, path, 'calibration file', () => calibrationTokens(path, tok, { tokens: req.calibTokens ?? 512, seqLen: req.calibSeqLen ?? 128 }));
    if (req.useSampleCalib) calib.source = 'built-in sample';
  }
  checkAbort();

  const weightShare = calib ? (1 - LOADING_SHARE) / 2 : 1 - LOADING_SHARE;
  return quantReport(model, formats, {
    lora,
    adapterName: adapterPath ? basename(resolve(adapterPath)) : undefined,
    adapterModes: req.adapterModes && req.adapterModes.length > 0 ? req.adapterModes : undefined,
    calib,
    modelName: basename(resolve(req.modelPath)),
    thresholds: thresholdsOf(req.thresholds),
    signal: opts.signal,
    onProgress: (p) => {
      const within = p.total > 0 ? p.done / p.total : 1;
      const fraction = p.phase === 'weights' ? LOADING_SHARE + weightShare * within : LOADING_SHARE + weightShare + (1 - LOADING_SHARE - weightShare) * within;
      report({ phase: p.phase, done: p.done, total: p.total, format: p.format, fraction: Math.min(1, fraction) });
    },
  });
}
