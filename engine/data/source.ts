import { open, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { readCsv } from './csv.ts';
import { DatasetError, type RecordUnit } from './errors.ts';
import { readJsonArray } from './json-array.ts';
import { readJsonl } from './jsonl.ts';
import { readParquet } from './parquet.ts';
import type { SourceRecord } from './record.ts';
import { readText } from './text.ts';

export type FileKind = 'jsonl' | 'json-array' | 'csv' | 'tsv' | 'parquet' | 'text';

const BY_EXTENSION: Record<string, FileKind> = {
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.tab': 'tsv',
  '.parquet': 'parquet',
  '.pq': 'parquet',
  '.txt': 'text',
  '.text': 'text',
  '.md': 'text',
};

async function head(path: string, bytes: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** The file's container format: by extension, and by its first bytes where the extension says nothing (or `.json`). */
export async function detectFileKind(path: string): Promise<FileKind> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new DatasetError(path, 'file not found');
  }
  if (info.isDirectory()) throw new DatasetError(path, 'is a folder, not a dataset file');
  if (info.size === 0) throw new DatasetError(path, 'the file is empty');
  const ext = extname(path).toLowerCase();
  const known = BY_EXTENSION[ext];
  const start = await head(path, 4096);
  if (known === 'csv') {
    // A ".csv" whose header has tabs and no commas is a TSV under the wrong name.
    const firstLine = start.toString('utf8').split('\n')[0];
    return firstLine.includes('\t') && !firstLine.includes(',') ? 'tsv' : 'csv';
  }
  if (known) return known;
  if (start.subarray(0, 4).toString('latin1') === 'PAR1') return 'parquet';
  const text = start.toString('utf8').replace(/^\uFEFF/, '').trimStart();
  if (text[0] === '[') return 'json-array';
  if (text[0] === '{') {
    // One object per line, or one pretty-printed object (like {"data": [...]}) that no line of which parses alone.
    const newline = text.indexOf('\n');
    if (newline !== -1) {
      try {
        JSON.parse(text.slice(0, newline));
      } catch {
        throw new DatasetError(path, 'a JSON dataset must be an array of records ([{...}, ...]) or JSON Lines (one object per line); this file holds one multi-line object', { line: 1 });
      }
    }
    return 'jsonl';
  }
  return 'text';
}

export function recordUnit(kind: FileKind): RecordUnit {
  return kind === 'parquet' ? 'row' : 'line';
}

export function readRecords(path: string, kind: FileKind): AsyncGenerator<SourceRecord> {
  switch (kind) {
    case 'jsonl':
      return readJsonl(path);
    case 'json-array':
      return readJsonArray(path);
    case 'csv':
      return readCsv(path, ',');
    case 'tsv':
      return readCsv(path, '\t');
    case 'parquet':
      return readParquet(path);
    case 'text':
      return readText(path);
  }
}
