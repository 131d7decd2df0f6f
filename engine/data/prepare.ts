import { basename } from 'node:path';
import type { DatasetFormat } from '../../common/protocol.ts';
import { IGNORE_INDEX, type Tokenizer, type TrainingExample } from '../model/types.ts';
import { BUILTIN_TEMPLATE_NAMES, isBuiltinTemplateName } from './chat-template.ts';
import { DatasetError } from './errors.ts';
import { packExamples } from './packing.ts';
import { PipelineReport, streamExamples } from './pipeline.ts';
import { seededShuffle, splitExamples } from './split.ts';

export interface PrepareOptions {
  path: string;
  format: DatasetFormat;
  tokenizer: Tokenizer | null;
  maxSeqLen: number;
  validationPercent: number;
  /** A second file used whole as the validation split (instead of validationPercent). */
  validationPath?: string;
  seed: number;
  badRecords: 'fail' | 'skip';
  trainOn: 'completions' | 'all' | 'auto';
  packing?: boolean;
  /** Built-in chat template name (llama3, chatml, mistral) used instead of the model's own. */
  chatTemplateOverride?: string;
}

export interface PreparedDataset {
  format: Exclude<DatasetFormat, 'auto'>;
  train: TrainingExample[];
  validation: TrainingExample[];
  /** Good records read from the main file. */
  records: number;
  /** Listed bad records (at most 1000; `badRecordCount` has them all). Lines of the validation file are prefixed with its name. */
  badRecords: { line: number; message: string }[];
  /** Examples cut to maxSeqLen tokens. */
  truncated: number;
  /** Token count of every example of the main file, in file order, before truncation. */
  tokenLengths: number[];
  badRecordCount?: number;
  /** Examples dropped because no token was left to train on (e.g. the completion lay past maxSeqLen). */
  filtered?: number;
  /** 'model' or the built-in template that rendered chat records; null for non-chat data. */
  chatTemplate?: string | null;
}

interface Collected {
  examples: TrainingExample[];
  tokenLengths: number[];
  truncated: number;
  filtered: number;
  report: PipelineReport;
}

/** Labels are not shifted (position t predicts labels[t+1]), so labels[0] is never a target. */
function hasTarget(labels: readonly number[]): boolean {
  for (let i = 1; i < labels.length; i++) if (labels[i] !== IGNORE_INDEX) return true;
  return false;
}

async function collect(path: string, opts: PrepareOptions): Promise<Collected> {
  const report = new PipelineReport();
  const out: Collected = { examples: [], tokenLengths: [], truncated: 0, filtered: 0, report };
  const stream = streamExamples(
    { path, format: opts.format, tokenizer: opts.tokenizer, trainOn: opts.trainOn, badRecords: opts.badRecords, tokenize: 'required', ...(opts.chatTemplateOverride ? { chatTemplateOverride: opts.chatTemplateOverride } : {}) },
    report,
  );
  for await (const item of stream) {
    let ex = item.example;
    if (ex === null) throw new Error('internal: example was not tokenized');
    out.tokenLengths.push(ex.inputIds.length);
    if (ex.inputIds.length > opts.maxSeqLen) {
      ex = { inputIds: ex.inputIds.slice(0, opts.maxSeqLen), labels: ex.labels.slice(0, opts.maxSeqLen) };
      out.truncated++;
    }
    if (!hasTarget(ex.labels)) {
      out.filtered++;
      continue;
    }
    out.examples.push(ex);
  }
  if (report.records === 0) {
    throw new DatasetError(path, report.badRecordCount > 0 ? `all ${report.badRecordCount} records are bad (first: ${report.unit} ${report.badRecords[0].line}: ${report.badRecords[0].message})` : 'the dataset has no records');
  }
  if (out.examples.length === 0) {
    throw new DatasetError(path, `none of the ${report.records} examples has a token to train on within the first ${opts.maxSeqLen} tokens`);
  }
  return out;
}

function checkOptions(opts: PrepareOptions): void {
  if (!Number.isInteger(opts.maxSeqLen) || opts.maxSeqLen < 2) throw new DatasetError(opts.path, `max sequence length must be a whole number ≥ 2, got ${opts.maxSeqLen}`, { field: 'maxSeqLen' });
  if (!(opts.validationPercent >= 0 && opts.validationPercent <= 50)) {
    throw new DatasetError(opts.path, `validation split must be between 0 and 50 %, got ${opts.validationPercent}`, { field: 'validationPercent' });
  }
  const override = opts.chatTemplateOverride;
  if (override !== undefined && override !== '' && override !== 'model' && !isBuiltinTemplateName(override)) {
    throw new DatasetError(opts.path, `unknown built-in chat template "${override}": choose one of ${BUILTIN_TEMPLATE_NAMES.join(', ')}`, { field: 'chatTemplate' });
  }
  if (opts.validationPath && opts.validationPercent > 0) {
    throw new DatasetError(opts.path, 'give either a validation percent or a validation file, not both', { field: 'validationPath' });
  }
}

let preparedCount = 0;

/**
 * How many datasets this thread has prepared (every call of prepareDataset that got past its option checks). Tests
 * read it to prove a run start tokenizes its data once: in the preflight's worker, not again in the services' thread
 * nor in the engine when the preflight's cache is valid (engine/train/run-data-cache.ts).
 */
export function preparedDatasetCount(): number {
  return preparedCount;
}

/**
 * Reads, renders, tokenizes and masks a dataset file, then truncates, shuffles (seeded), splits and optionally packs
 * it. Throws DatasetError for an unusable file, the first bad record under 'fail', or a dataset left empty.
 */
export async function prepareDataset(opts: PrepareOptions): Promise<PreparedDataset> {
  checkOptions(opts);
  preparedCount++;
  const main = await collect(opts.path, opts);
  let train: TrainingExample[];
  let validation: TrainingExample[];
  let badRecords = main.report.badRecords;
  let badRecordCount = main.report.badRecordCount;
  let filtered = main.filtered;
  let truncated = main.truncated;
  if (opts.validationPath) {
    const val = await collect(opts.validationPath, opts);
    train = seededShuffle(main.examples, opts.seed);
    validation = val.examples;
    const name = basename(opts.validationPath);
    badRecords = [...badRecords, ...val.report.badRecords.map((b) => ({ line: b.line, message: `${name}: ${b.message}` }))];
    badRecordCount += val.report.badRecordCount;
    filtered += val.filtered;
    truncated += val.truncated;
  } else {
    try {
      ({ train, validation } = splitExamples(main.examples, opts.validationPercent, opts.seed));
    } catch (err) {
      throw new DatasetError(opts.path, err instanceof Error ? err.message : String(err), { field: 'validationPercent' });
    }
  }
  if (opts.packing) {
    train = packExamples(train, opts.maxSeqLen);
    validation = packExamples(validation, opts.maxSeqLen);
  }
  const format = main.report.format;
  if (format === null) throw new DatasetError(opts.path, 'the record format could not be detected');
  return {
    format,
    train,
    validation,
    records: main.report.records,
    badRecords,
    truncated,
    tokenLengths: main.tokenLengths,
    badRecordCount,
    filtered,
    chatTemplate: main.report.chatTemplate,
  };
}
