import { createReadStream } from 'node:fs';
import { parse } from 'csv-parse';
import type { SourceRecord } from './record.ts';

function newlinesIn(raw: string | undefined): number {
  if (!raw) return 0;
  const body = raw.replace(/\r?\n$/, '');
  let n = 0;
  for (let i = body.indexOf('\n'); i !== -1; i = body.indexOf('\n', i + 1)) n++;
  return n;
}

function errorLine(err: unknown): number {
  if (typeof err === 'object' && err !== null && 'lines' in err && typeof err.lines === 'number') return err.lines;
  return 0;
}

/**
 * CSV or TSV with a header row, streamed through csv-parse. Each record is an object of column → string;
 * `line` is the line the record starts on (quoted fields may span lines). Rows with the wrong number of fields are
 * reported as bad records instead of stopping the file.
 */
export async function* readCsv(path: string, delimiter: ',' | '\t'): AsyncGenerator<SourceRecord> {
  const skipped: SourceRecord[] = [];
  const parser = createReadStream(path).pipe(
    parse({
      delimiter,
      columns: (header: string[]) => header.map((h) => h.trim()),
      bom: true,
      info: true,
      raw: true,
      relax_quotes: true,
      skip_empty_lines: true,
      skip_records_with_error: true,
      on_skip: (err, raw) => {
        const end = errorLine(err);
        skipped.push({ line: Math.max(1, end - newlinesIn(raw)), error: err ? err.message : 'unreadable row' });
      },
    }),
  );
  try {
    for await (const item of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number }; raw: string }>) {
      const line = item.info.lines - newlinesIn(item.raw);
      while (skipped.length > 0 && skipped[0].line < line) yield skipped.shift() as SourceRecord;
      yield { line, value: item.record };
    }
  } catch (err) {
    yield* skipped.splice(0);
    yield { line: errorLine(err), error: err instanceof Error ? err.message : String(err) };
    return;
  }
  yield* skipped.splice(0);
}
