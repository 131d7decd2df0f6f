/**
 * A minimal Parquet writer for tests (the studio only reads Parquet): flat, REQUIRED columns of UTF-8 strings or
 * INT64, PLAIN encoding, uncompressed, one data page per column chunk, several row groups. Written from the
 * Parquet format spec (thrift compact protocol footer), independent of the hyparquet reader under test.
 */
import { writeFileSync } from 'node:fs';

class Compact {
  bytes: number[] = [];
  private lastField: number[] = [0];

  private varint(n: bigint): void {
    let v = n;
    while (v >= 0x80n) {
      this.bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.bytes.push(Number(v));
  }
  private zigzag(n: bigint): void {
    this.varint(n >= 0n ? n << 1n : ((-n) << 1n) - 1n);
  }
  private header(id: number, type: number): void {
    const last = this.lastField[this.lastField.length - 1];
    const delta = id - last;
    if (delta > 0 && delta <= 15) this.bytes.push((delta << 4) | type);
    else {
      this.bytes.push(type);
      this.zigzag(BigInt(id));
    }
    this.lastField[this.lastField.length - 1] = id;
  }
  i32(id: number, v: number): void {
    this.header(id, 5);
    this.zigzag(BigInt(v));
  }
  i64(id: number, v: number | bigint): void {
    this.header(id, 6);
    this.zigzag(BigInt(v));
  }
  binary(id: number, v: Uint8Array | string): void {
    this.header(id, 8);
    const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    this.varint(BigInt(b.length));
    this.bytes.push(...b);
  }
  beginStruct(id: number): void {
    this.header(id, 12);
    this.lastField.push(0);
  }
  endStruct(): void {
    this.bytes.push(0);
    this.lastField.pop();
  }
  /** A list; `each` writes one element (for structs: its fields, then endElementStruct). */
  list(id: number, elemType: number, n: number, each: (i: number) => void): void {
    this.header(id, 9);
    if (n < 15) this.bytes.push((n << 4) | elemType);
    else {
      this.bytes.push(0xf0 | elemType);
      this.varint(BigInt(n));
    }
    for (let i = 0; i < n; i++) each(i);
  }
  listI32(v: number): void {
    this.zigzag(BigInt(v));
  }
  listString(v: string): void {
    const b = Buffer.from(v, 'utf8');
    this.varint(BigInt(b.length));
    this.bytes.push(...b);
  }
  beginListStruct(): void {
    this.lastField.push(0);
  }
  endListStruct(): void {
    this.bytes.push(0);
    this.lastField.pop();
  }
  end(): Uint8Array {
    this.bytes.push(0);
    return Uint8Array.from(this.bytes);
  }
}

export type ParquetColumn = { name: string; type: 'string'; values: string[] } | { name: string; type: 'int64'; values: number[] };

const BYTE_ARRAY = 6;
const INT64 = 2;

function plainValues(col: ParquetColumn, from: number, to: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = from; i < to; i++) {
    if (col.type === 'string') {
      const b = Buffer.from(col.values[i], 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      parts.push(len, b);
    } else {
      const b = Buffer.alloc(8);
      b.writeBigInt64LE(BigInt(col.values[i]));
      parts.push(b);
    }
  }
  return Buffer.concat(parts);
}

export function writeParquet(path: string, columns: ParquetColumn[], rowGroupSize: number): void {
  const rows = columns[0].values.length;
  const chunks: Buffer[] = [Buffer.from('PAR1')];
  let offset = 4;
  const groups: { rows: number; cols: { offset: number; size: number; n: number }[] }[] = [];
  for (let start = 0; start < rows; start += rowGroupSize) {
    const end = Math.min(rows, start + rowGroupSize);
    const cols: { offset: number; size: number; n: number }[] = [];
    for (const col of columns) {
      const data = plainValues(col, start, end);
      const ph = new Compact();
      ph.i32(1, 0); // DATA_PAGE
      ph.i32(2, data.length);
      ph.i32(3, data.length);
      ph.beginStruct(5);
      ph.i32(1, end - start);
      ph.i32(2, 0); // PLAIN
      ph.i32(3, 3); // RLE definition levels (none: REQUIRED)
      ph.i32(4, 3);
      ph.endStruct();
      const header = Buffer.from(ph.end());
      cols.push({ offset, size: header.length + data.length, n: end - start });
      chunks.push(header, data);
      offset += header.length + data.length;
    }
    groups.push({ rows: end - start, cols });
  }
  const fm = new Compact();
  fm.i32(1, 1);
  fm.list(2, 12, columns.length + 1, (i) => {
    fm.beginListStruct();
    if (i === 0) {
      fm.binary(4, 'schema');
      fm.i32(5, columns.length);
    } else {
      const col = columns[i - 1];
      fm.i32(1, col.type === 'string' ? BYTE_ARRAY : INT64);
      fm.i32(3, 0); // REQUIRED
      fm.binary(4, col.name);
      if (col.type === 'string') fm.i32(6, 0); // converted type UTF8
    }
    fm.endListStruct();
  });
  fm.i64(3, rows);
  fm.list(4, 12, groups.length, (g) => {
    fm.beginListStruct();
    const group = groups[g];
    fm.list(1, 12, columns.length, (c) => {
      fm.beginListStruct();
      const cc = group.cols[c];
      fm.i64(2, cc.offset);
      fm.beginStruct(3);
      const col = columns[c];
      fm.i32(1, col.type === 'string' ? BYTE_ARRAY : INT64);
      fm.list(2, 5, 1, () => fm.listI32(0));
      fm.list(3, 8, 1, () => fm.listString(col.name));
      fm.i32(4, 0); // UNCOMPRESSED
      fm.i64(5, cc.n);
      fm.i64(6, cc.size);
      fm.i64(7, cc.size);
      fm.i64(9, cc.offset);
      fm.endStruct();
      fm.endListStruct();
    });
    fm.i64(2, group.cols.reduce((a, c) => a + c.size, 0));
    fm.i64(3, group.rows);
    fm.endListStruct();
  });
  fm.binary(6, 'lora-studio test writer');
  const footer = Buffer.from(fm.end());
  const len = Buffer.alloc(4);
  len.writeUInt32LE(footer.length);
  chunks.push(footer, len, Buffer.from('PAR1'));
  writeFileSync(path, Buffer.concat(chunks));
}
