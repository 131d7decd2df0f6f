/**
 * Checks a model folder and a dataset file before anything starts, turning every problem into a StudioError that
 * names the request field, the file and, for datasets, the line.
 */
import { existsSync, statSync } from 'node:fs';
import type { DatasetFormat, DatasetSummary, ModelSummary } from '../../common/protocol.ts';
import { inspectDataset } from '../../engine/data/inspect.ts';
import { inspectModel } from '../../engine/io/hf-model.ts';
import { loadTokenizer } from '../../engine/io/tokenizer.ts';
import { asStudioError, StudioError } from './errors.ts';

export async function checkModel(path: string, field: string): Promise<ModelSummary> {
  if (!existsSync(path)) throw new StudioError({ message: `model folder ${path} does not exist`, field, file: path });
  if (!statSync(path).isDirectory()) throw new StudioError({ message: `${path} is a file; choose the folder that holds config.json and the weights`, field, file: path });
  try {
    return await inspectModel(path);
  } catch (e) {
    throw asStudioError(e, field);
  }
}

export interface DatasetCheck {
  path: string;
  format?: DatasetFormat;
  /** When given, examples are tokenized with this model's tokenizer (token counts, truncation). */
  modelPath?: string;
  maxSeqLen?: number;
  /** Request field the dataset came from, e.g. `datasetPath` or `path`. */
  field: string;
  /** Training refuses a dataset with broken lines; inspecting only lists them. */
  requireClean?: boolean;
  modelField?: string;
}

export async function checkDataset(check: DatasetCheck): Promise<DatasetSummary> {
  const { path, field } = check;
  if (!existsSync(path)) throw new StudioError({ message: `dataset file ${path} does not exist`, field, file: path });
  if (statSync(path).isDirectory()) throw new StudioError({ message: `${path} is a folder; choose a dataset file (.jsonl, .json, .csv, .parquet or .txt)`, field, file: path });
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
      // Training stops at the first broken record (its line in the message); inspecting lists them all.
      badRecords: check.requireClean ? 'fail' : 'skip',
    });
  } catch (e) {
    const err = asStudioError(e, field);
    if (!err.info.file) err.info.file = path;
    throw err;
  }
  if (check.requireClean) {
    const bad = summary.badRecords[0];
    if (bad) {
      const count = summary.badRecordCount ?? summary.badRecords.length;
      const more = count > 1 ? ` (and ${count - 1} more broken record${count > 2 ? 's' : ''})` : '';
      throw new StudioError({ message: `${path} line ${bad.line}: ${bad.message}${more}`, field, file: path, line: bad.line });
    }
    if (summary.records === 0) throw new StudioError({ message: `${path} holds no training examples`, field, file: path });
  }
  return summary;
}
