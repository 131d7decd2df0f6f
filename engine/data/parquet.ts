import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { DatasetError } from './errors.ts';
import type { SourceRecord } from './record.ts';

/** Parquet INT64 columns come back as bigint; token ids and counts fit in a double, so make them plain numbers. */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Date || value instanceof Uint8Array) return value;
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

/**
 * Parquet through hyparquet (pure JS), one row group at a time, so memory follows the row-group size and not the
 * file size. `line` is the 1-based row number. Nested columns (lists of structs, as hub chat datasets have) come
 * back as arrays of objects.
 *
 * One top-level column per read: hyparquet 1.33 starts every column of a group at once and, when a corrupt page
 * makes one of them fail, a sibling's rejection can escape unhandled (an `unhandledRejection` that took the host
 * down). A read of a single column has no sibling, so every failure comes back here as a DatasetError.
 */
export async function* readParquet(path: string): AsyncGenerator<SourceRecord> {
  const file = await asyncBufferFromFile(path);
  let metadata;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (err) {
    throw new DatasetError(path, `not a readable Parquet file (${err instanceof Error ? err.message : String(err)})`);
  }
  let columns: string[];
  try {
    columns = parquetSchema(metadata).children.map((c) => c.element.name);
  } catch (err) {
    throw new DatasetError(path, `not a readable Parquet file (${err instanceof Error ? err.message : String(err)})`);
  }
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rows = Number(group.num_rows);
    // The first column decides the row count; every other column must give as many rows.
    let objects: Record<string, unknown>[] = [];
    try {
      for (const [c, column] of columns.entries()) {
        const part = await parquetReadObjects({ file, metadata, columns: [column], rowStart, rowEnd: rowStart + rows });
        if (c === 0) objects = part.map(() => ({}));
        else if (part.length !== objects.length) throw new Error(`column ${column} has ${part.length} rows where the others have ${objects.length}`);
        for (let i = 0; i < part.length; i++) objects[i][column] = part[i][column];
      }
    } catch (err) {
      throw new DatasetError(path, `cannot read rows ${rowStart + 1}–${rowStart + rows} (${err instanceof Error ? err.message : String(err)})`, { line: rowStart + 1, unit: 'row' });
    }
    for (let i = 0; i < objects.length; i++) yield { line: rowStart + i + 1, value: plain(objects[i]) };
    rowStart += rows;
  }
}
