import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
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
 */
export async function* readParquet(path: string): AsyncGenerator<SourceRecord> {
  const file = await asyncBufferFromFile(path);
  let metadata;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (err) {
    throw new DatasetError(path, `not a readable Parquet file (${err instanceof Error ? err.message : String(err)})`);
  }
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rows = Number(group.num_rows);
    let objects: Record<string, unknown>[];
    try {
      objects = await parquetReadObjects({ file, metadata, rowStart, rowEnd: rowStart + rows });
    } catch (err) {
      throw new DatasetError(path, `cannot read rows ${rowStart + 1}–${rowStart + rows} (${err instanceof Error ? err.message : String(err)})`, { line: rowStart + 1, unit: 'row' });
    }
    for (let i = 0; i < objects.length; i++) yield { line: rowStart + i + 1, value: plain(objects[i]) };
    rowStart += rows;
  }
}
