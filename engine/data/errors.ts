import { basename } from 'node:path';

/** How a reader numbers its records: text lines, Parquet rows, or elements of a JSON array (by their first line). */
export type RecordUnit = 'line' | 'row';

/**
 * A problem with a dataset file, pointing at the file and, where known, the line (or Parquet row) and field.
 * The message reads `data.jsonl line 17: invalid JSON (...)` so it can be shown as it is.
 */
export class DatasetError extends Error {
  readonly file: string;
  readonly line?: number;
  readonly field?: string;
  /** The problem without the file/line prefix, as listed in bad-record reports. */
  readonly problem: string;

  constructor(file: string, problem: string, where: { line?: number; field?: string; unit?: RecordUnit } = {}) {
    const place = where.line === undefined ? basename(file) : `${basename(file)} ${where.unit ?? 'line'} ${where.line}`;
    super(`${place}: ${problem}`);
    this.name = 'DatasetError';
    this.file = file;
    this.problem = problem;
    if (where.line !== undefined) this.line = where.line;
    if (where.field !== undefined) this.field = where.field;
  }
}

/** A record that cannot be used, raised while normalising or rendering it; the pipeline adds file and line. */
export class RecordProblem extends Error {
  readonly field?: string;
  constructor(message: string, field?: string) {
    super(message);
    this.name = 'RecordProblem';
    if (field !== undefined) this.field = field;
  }
}
