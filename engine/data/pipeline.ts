import type { DatasetFormat } from '../../common/protocol.ts';
import type { Tokenizer, TrainingExample } from '../model/types.ts';
import { ChatTemplateError, chooseChatTemplate, type ChatRenderer } from './chat-template.ts';
import { DatasetError, RecordProblem, type RecordUnit } from './errors.ts';
import { describeUndetected, detectFormat, normalizeRecord, type RecordFormat } from './formats.ts';
import { renderRecord, tokenizeRendered, type Rendered, type TrainOn } from './render.ts';
import { detectFileKind, readRecords, recordUnit } from './source.ts';

/** Bad records listed one by one; past this only the count grows, so a broken multi-GB file cannot exhaust memory. */
export const MAX_LISTED_BAD_RECORDS = 1000;

export interface PipelineOptions {
  path: string;
  format: DatasetFormat;
  tokenizer: Tokenizer | null;
  trainOn: TrainOn;
  badRecords: 'fail' | 'skip';
  chatTemplateOverride?: string;
  /**
   * 'required': every record is tokenized, and text records without a tokenizer are an error (training).
   * 'when-possible': tokenized when a tokenizer is there or the data is pre-tokenized (inspection).
   */
  tokenize: 'required' | 'when-possible';
}

export interface PipelineItem {
  line: number;
  rendered: Rendered;
  /** Null when there is no tokenizer for text records. */
  example: TrainingExample | null;
}

/** What the pipeline learned about the file while streaming it. */
export class PipelineReport {
  format: RecordFormat | null = null;
  unit: RecordUnit = 'line';
  records = 0;
  badRecordCount = 0;
  badRecords: { line: number; message: string }[] = [];
  chatTemplate: string | null = null;
}

/**
 * Streams a dataset file record by record: read → detect/normalise the format → render (chat template, spans) →
 * tokenize with labels. Bad records throw under 'fail' and are listed under 'skip'; problems that are not about one
 * record (missing file, missing chat template or tokenizer) always throw.
 */
export async function* streamExamples(opts: PipelineOptions, report: PipelineReport): AsyncGenerator<PipelineItem> {
  const { path } = opts;
  const kind = await detectFileKind(path);
  report.unit = recordUnit(kind);
  const unit = report.unit;
  let renderer: ChatRenderer | null = null;
  const ctx = {
    tokenizer: opts.tokenizer,
    trainOn: opts.trainOn,
    chat: (): ChatRenderer => {
      if (renderer) return renderer;
      try {
        renderer = chooseChatTemplate(opts.tokenizer, opts.chatTemplateOverride);
      } catch (err) {
        if (err instanceof ChatTemplateError) throw new DatasetError(path, err.message, { field: 'chatTemplate' });
        throw err;
      }
      report.chatTemplate = renderer.name;
      return renderer;
    },
  };
  let format: RecordFormat | null = opts.format === 'auto' ? null : opts.format;
  report.format = format;

  const bad = (line: number, problem: string, field?: string): void => {
    if (opts.badRecords === 'fail') throw new DatasetError(path, problem, { line, unit, ...(field !== undefined ? { field } : {}) });
    report.badRecordCount++;
    if (report.badRecords.length < MAX_LISTED_BAD_RECORDS) report.badRecords.push({ line, message: problem });
  };

  for await (const rec of readRecords(path, kind)) {
    if (rec.error !== undefined) {
      bad(rec.line, rec.error);
      continue;
    }
    if (format === null) {
      format = detectFormat(rec.value);
      if (format === null) {
        bad(rec.line, describeUndetected(rec.value));
        continue;
      }
      report.format = format;
    }
    let item: PipelineItem;
    try {
      const normalized = normalizeRecord(rec.value, format);
      if (opts.tokenize === 'required' && normalized.kind !== 'tokens' && opts.tokenizer === null) {
        throw new DatasetError(path, `the ${format} format needs the model's tokenizer (tokenizer.json) to be tokenized; only pre-tokenized data (input_ids) works without one`, { field: 'tokenizer' });
      }
      const rendered = renderRecord(normalized, ctx);
      const example = rendered.kind === 'tokens' || opts.tokenizer ? tokenizeRendered(rendered, opts.tokenizer) : null;
      item = { line: rec.line, rendered, example };
    } catch (err) {
      if (err instanceof RecordProblem) {
        bad(rec.line, err.message, err.field);
        continue;
      }
      throw err;
    }
    report.records++;
    yield item;
  }
  if (report.format === null && report.badRecordCount === 0) throw new DatasetError(path, 'the dataset has no records');
}
