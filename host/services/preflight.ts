/**
 * Checks a model folder and a dataset file before anything starts, turning every problem into a StudioError that
 * names the request field, the file and, for datasets, the line.
 */
import { existsSync, statSync } from 'node:fs';
import { baseWeightsOf, type BaseWeights, type BaseWeightsKeep, type DatasetFormat, type DatasetSummary, type ModelSummary, type RunConfig, type TrainOn } from '../../common/protocol.ts';
import type { BasePlan } from '../../engine/host-api.ts';
import { basePlanOf, inspectDataset, inspectModel, isGgufFile, loadTokenizer } from '../../engine/host-api.ts';
import { runDatasetCheck } from './dataset-check.ts';
import { asStudioError, StudioError } from './errors.ts';

export async function checkModel(path: string, field: string): Promise<ModelSummary> {
  if (!existsSync(path)) throw new StudioError({ message: `model ${path} does not exist`, field, file: path });
  if (!statSync(path).isDirectory() && !isGgufFile(path)) {
    throw new StudioError({ message: `${path} is a file but not a GGUF model; choose a GGUF file or the folder that holds config.json and the weights`, field, file: path });
  }
  try {
    return await inspectModel(path);
  } catch (e) {
    throw asStudioError(e, field);
  }
}

/**
 * How the run's base-weights setting holds each frozen matrix of the model (from the file's headers; nothing is
 * loaded): for the memory estimate, and so a format that cannot hold a tensor (a row that is not a whole number of
 * its blocks) is refused before the run starts, naming the tensor and its shape.
 */
export function basePlanFor(modelPath: string, train: { baseWeights?: BaseWeights; frozenWeightsF16?: boolean; baseWeightsKeep?: BaseWeightsKeep }): BasePlan {
  try {
    return basePlanOf(modelPath, baseWeightsOf(train), train.baseWeightsKeep ?? null);
  } catch (e) {
    const own = (e as { field?: unknown }).field;
    throw asStudioError(e, typeof own === 'string' ? own : 'modelPath');
  }
}

/** An adapter folder must exist and be a folder; the message says what was chosen instead. */
export function checkAdapterFolder(path: string, field: string): void {
  if (!existsSync(path)) throw new StudioError({ message: `adapter folder ${path} does not exist`, field, file: path });
  if (!statSync(path).isDirectory()) {
    throw new StudioError({ message: `${path} is a file; choose the adapter folder (adapter_config.json + adapter_model.safetensors)`, field, file: path });
  }
}

export interface DatasetCheck {
  path: string;
  format?: DatasetFormat;
  /** When given, examples are tokenized with this model's tokenizer (token counts, truncation). */
  modelPath?: string;
  maxSeqLen?: number;
  /** Which spans the preview marks as trained (default 'auto'). */
  trainOn?: TrainOn;
  /** Request field the dataset came from, e.g. `datasetPath` or `path`. */
  field: string;
  modelField?: string;
}

/** The dataset must be an existing file; the message says what was chosen instead. */
export function checkDatasetFile(path: string, field: string): void {
  if (!existsSync(path)) throw new StudioError({ message: `dataset file ${path} does not exist`, field, file: path });
  if (statSync(path).isDirectory()) throw new StudioError({ message: `${path} is a folder; choose a dataset file (.jsonl, .json, .csv, .parquet or .txt)`, field, file: path });
}

export async function checkDataset(check: DatasetCheck): Promise<DatasetSummary> {
  const { path, field } = check;
  checkDatasetFile(path, field);
  let tokenizer: Awaited<ReturnType<typeof loadTokenizer>> = null;
  if (check.modelPath) {
    try {
      tokenizer = await loadTokenizer(check.modelPath);
    } catch (e) {
      throw asStudioError(e, check.modelField ?? 'modelPath');
    }
  }
  let summary: DatasetSummary;
  try {
    summary = await inspectDataset({
      path,
      format: check.format ?? 'auto',
      tokenizer,
      ...(check.maxSeqLen !== undefined ? { maxSeqLen: check.maxSeqLen } : {}),
      ...(check.trainOn !== undefined ? { trainOn: check.trainOn } : {}),
      // Inspecting lists broken records; starting a run (checkTrainingData) refuses the first one.
      badRecords: 'skip',
    });
  } catch (e) {
    const err = asStudioError(e, field);
    if (!err.info.file) err.info.file = path;
    throw err;
  }
  return summary;
}

/** DatasetError fields that are settings of the run, not of the file. */
const RUN_FIELDS: Record<string, string> = { maxSeqLen: 'train.maxSeqLen', validationPercent: 'train.validationPercent', validationPath: 'data.validationPath' };

/**
 * Prepares the run's data exactly as the engine will (render, tokenize, mask, truncate, split), so every reason the
 * run could not start — a broken line, no token left to train on within maxSeqLen — is reported before it exists.
 * The preparation runs in a worker (dataset-check.ts) and is kept in `cacheDir` for the engine, which then does not
 * tokenize the dataset again (engine/train/run-data-cache.ts).
 */
export async function checkTrainingData(config: RunConfig, opts: { cacheDir?: string } = {}): Promise<void> {
  basePlanFor(config.modelPath, config.train);
  checkDatasetFile(config.datasetPath, 'datasetPath');
  const data = config.data;
  if (data?.validationPath) checkDatasetFile(data.validationPath, 'data.validationPath');
  const reply = await runDatasetCheck({ config, cacheDir: opts.cacheDir ?? null });
  if (reply.type === 'ok') return;
  const e = Object.assign(new Error(reply.problem.message), reply.problem);
  if (reply.stage === 'tokenizer') throw asStudioError(e, 'modelPath');
  const own = e.field;
  const inValidationFile = data?.validationPath !== undefined && e.file === data.validationPath;
  const field = typeof own === 'string' && RUN_FIELDS[own] ? RUN_FIELDS[own] : inValidationFile ? 'data.validationPath' : 'datasetPath';
  const err = asStudioError(e, field);
  if (!err.info.file) err.info.file = config.datasetPath;
  throw err;
}
