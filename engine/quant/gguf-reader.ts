/**
 * GGUF reader (versions 2 and 3): key/values, tensor infos, and tensor data on demand. Only the header is read up
 * front; a tensor's bytes are read when asked for. Every count, length, size and offset the file declares is checked
 * against the bytes that exist before anything is read or allocated, and every structural problem is a GgufError
 * naming the file, the byte offset and the key or tensor it belongs to.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGML_TYPES, VALUE_TYPE_NAMES, type GgufScalar, type GgufScalarType, type GgufValue, type GgufValueTypeName } from './gguf-types.ts';
import { dequantizeGgml as dequantizeBlocks, ggmlLayout } from './ggml-blocks.ts';

/** A GGUF file that is truncated, malformed or not GGUF; names the file and, where known, the key or tensor. */
export class GgufError extends Error {
  readonly file: string;
  readonly key: string | undefined;
  readonly tensor: string | undefined;
  constructor(file: string, message: string, where: { key?: string; tensor?: string } = {}) {
    super(`${file}: ${message}`);
    this.name = 'GgufError';
    this.file = file;
    this.key = where.key;
    this.tensor = where.tensor;
  }
}

export interface GgufTensorInfo {
  name: string;
  /** Innermost first, as stored. */
  dims: number[];
  type: number;
  typeName: string;
  /** Offset from the start of the data section. */
  offset: number;
  /** Absolute file offset of the first byte. */
  fileOffset: number;
  nbytes: number;
}

export interface GgufFile {
  path: string;
  version: number;
  alignment: number;
  kv: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  dataOffset: number;
  fileSize: number;
  /** The tensors by name. */
  byName: Map<string, GgufTensorInfo>;
}

class NeedMore extends Error {}

// One decoder for every string of the header (a vocabulary is 150 000 of them).
const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Fewest bytes one array item of each type takes (a string is at least its u64 length). */
const MIN_ITEM_BYTES: Record<GgufScalarType, number> = { uint8: 1, int8: 1, bool: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, uint64: 8, int64: 8, float64: 8, string: 8 };
/** Fewest bytes of one key/value (key length, value type, a one-byte value) and one tensor info (name length,
 * n_dims, one dim, type, offset). */
const MIN_KV_BYTES = 8 + 4 + 1;
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8;
/** ggml's GGML_MAX_DIMS. */
const MAX_DIMS = 4;

class Cursor {
  pos = 0;
  private view: DataView;
  /** Key or tensor being read, for errors. */
  where: { key?: string; tensor?: string } = {};
  constructor(
    private buf: Uint8Array,
    private complete: boolean,
    private file: string,
    readonly fileSize: number,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  fail(msg: string): never {
    throw new GgufError(this.file, `${msg} (at byte ${this.pos})`, this.where);
  }
  /** Bytes of the file after the cursor. */
  remaining(): number {
    return this.fileSize - this.pos;
  }
  need(n: number, what: string): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.pos + n > this.fileSize) this.fail(`file ends inside ${what} (the file is truncated: ${this.fileSize} bytes)`);
    if (!this.complete) throw new NeedMore();
    this.fail(`file ends inside ${what}`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(what: string): number {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} is too large (${v})`);
    return Number(v);
  }
  str(what: string): string {
    const n = this.u64(`length of ${what}`);
    if (n > this.remaining()) this.fail(`${what} claims ${n} bytes, but only ${this.remaining()} bytes follow in the file`);
    this.need(n, what);
    const s = utf8.decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
  take(n: number, what: string): number {
    this.need(n, what);
    const at = this.pos;
    this.pos += n;
    return at;
  }
  scalar(type: GgufScalarType, what: string): GgufScalar {
    const v = this.view;
    // No closure per call: this runs once per vocabulary item.
    switch (type) {
      case 'uint8':
        return v.getUint8(this.take(1, what));
      case 'int8':
        return v.getInt8(this.take(1, what));
      case 'uint16':
        return v.getUint16(this.take(2, what), true);
      case 'int16':
        return v.getInt16(this.take(2, what), true);
      case 'uint32':
        return v.getUint32(this.take(4, what), true);
      case 'int32':
        return v.getInt32(this.take(4, what), true);
      case 'float32':
        return v.getFloat32(this.take(4, what), true);
      case 'float64':
        return v.getFloat64(this.take(8, what), true);
      case 'uint64':
        return v.getBigUint64(this.take(8, what), true);
      case 'int64':
        return v.getBigInt64(this.take(8, what), true);
      case 'bool': {
        const b = v.getUint8(this.take(1, what));
        if (b > 1) this.fail(`${what}: bool byte is ${b}`);
        return b === 1;
      }
      case 'string':
        return this.str(what);
    }
  }
}

function valueType(c: Cursor, id: number, what: string): GgufValueTypeName {
  const name = VALUE_TYPE_NAMES[id];
  if (name === undefined) c.fail(`${what}: unknown value type ${id}`);
  return name;
}

function readValue(c: Cursor, key: string): GgufValue {
  const type = valueType(c, c.u32(`type of key '${key}'`), `key '${key}'`);
  if (type === 'array') {
    const itemType = valueType(c, c.u32(`array type of key '${key}'`), `array of key '${key}'`);
    if (itemType === 'array') c.fail(`key '${key}': nested arrays are not supported`);
    const n = c.u64(`array length of key '${key}'`);
    if (n * MIN_ITEM_BYTES[itemType] > c.remaining()) c.fail(`key '${key}': array claims ${n} ${itemType} items, more than the ${c.remaining()} bytes left in the file can hold`);
    const values: GgufScalar[] = new Array<GgufScalar>(n);
    // One label for all items (the message gives the byte): building one per item costs more than reading it.
    const itemWhat = `an item of key '${key}'`;
    for (let i = 0; i < n; i++) values[i] = c.scalar(itemType, itemWhat);
    return { type: 'array', itemType, values };
  }
  const value = c.scalar(type, `value of key '${key}'`);
  return { type, value } as GgufValue;
}

function parseHeader(buf: Uint8Array, complete: boolean, path: string, fileSize: number): GgufFile {
  const c: Cursor = new Cursor(buf, complete, path, fileSize);
  if (fileSize < 4 || c.u32('magic') !== GGUF_MAGIC) c.fail('not a GGUF file (it does not start with "GGUF")');
  const version = c.u32('version');
  if (version !== 2 && version !== 3) c.fail(`unsupported GGUF version ${version} (2 and 3 are supported)`);
  const nTensors = c.u64('tensor count');
  const nKv = c.u64('key/value count');
  if (nKv * MIN_KV_BYTES + nTensors * MIN_TENSOR_INFO_BYTES > c.remaining()) {
    c.fail(`the header claims ${nKv} keys and ${nTensors} tensors, more than the ${c.remaining()} bytes left in the file can hold`);
  }
  const kv = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    c.where = {};
    const key = c.str(`key ${i}`);
    c.where = { key };
    if (kv.has(key)) c.fail(`key '${key}' appears twice`);
    kv.set(key, readValue(c, key));
  }
  c.where = {};
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const a = kv.get('general.alignment');
  if (a) {
    if (a.type !== 'uint32' || a.value === 0 || (a.value & (a.value - 1)) !== 0) throw new GgufError(path, `'general.alignment' must be a power-of-two uint32`, { key: 'general.alignment' });
    alignment = a.value;
  }
  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    c.where = {};
    const name = c.str(`name of tensor ${i}`);
    c.where = { tensor: name };
    if (names.has(name)) c.fail(`tensor '${name}' appears twice`);
    names.add(name);
    const nDims = c.u32(`dimension count of tensor '${name}'`);
    if (nDims < 1 || nDims > MAX_DIMS) c.fail(`tensor '${name}' has ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`);
    const dims: number[] = [];
    let elements = 1;
    for (let d = 0; d < nDims; d++) {
      const n = c.u64(`dimension ${d} of tensor '${name}'`);
      if (n === 0) c.fail(`tensor '${name}': dimension ${d} is 0`);
      elements *= n;
      if (elements > Number.MAX_SAFE_INTEGER) c.fail(`tensor '${name}': dimensions [${[...dims, n].join(', ')}…] multiply to more elements than any file holds`);
      dims.push(n);
    }
    const type = c.u32(`type of tensor '${name}'`);
    const t = GGML_TYPES[type];
    if (!t) c.fail(`tensor '${name}' has unknown ggml type ${type}`);
    const offset = c.u64(`offset of tensor '${name}'`);
    if (offset % alignment !== 0) c.fail(`tensor '${name}': data offset ${offset} is not a multiple of the alignment ${alignment}`);
    if (dims[0] % t.blockSize !== 0) c.fail(`tensor '${name}': innermost dimension ${dims[0]} is not a multiple of the ${t.name} block size ${t.blockSize}`);
    const nbytes = (elements / t.blockSize) * t.blockBytes;
    tensors.push({ name, dims, type, typeName: t.name, offset, fileOffset: 0, nbytes });
  }
  c.where = {};
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const sorted = [...tensors].sort((x, y) => x.offset - y.offset);
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted[i];
    t.fileOffset = dataOffset + t.offset;
    if (t.fileOffset + t.nbytes > fileSize) {
      throw new GgufError(path, `tensor '${t.name}' (${t.typeName} [${t.dims.join(', ')}], ${t.nbytes} bytes at ${t.fileOffset}) runs past the end of the file (${fileSize} bytes): the file is truncated`, { tensor: t.name });
    }
    if (i > 0 && sorted[i - 1].offset + sorted[i - 1].nbytes > t.offset) throw new GgufError(path, `tensors '${sorted[i - 1].name}' and '${t.name}' overlap`, { tensor: t.name });
  }
  return { path, version, alignment, kv, tensors, dataOffset, fileSize, byName: new Map(tensors.map((t) => [t.name, t])) };
}

/** Reads the header of a GGUF file (reading more of the file only as far as the header goes). */
export function readGguf(path: string): GgufFile {
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch (e) {
    throw new GgufError(path, (e as { code?: string }).code === 'ENOENT' ? 'file not found' : `cannot be read (${(e as Error).message})`);
  }
  if (!isFile) throw new GgufError(path, 'is not a file');
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    let want = Math.min(size, 1 << 20);
    for (;;) {
      const buf = new Uint8Array(want);
      const got = readSync(fd, buf, 0, want, 0);
      try {
        return parseHeader(buf.subarray(0, got), got >= size, path, size);
      } catch (e) {
        if (!(e instanceof NeedMore)) throw e;
        want = Math.min(size, want * 4);
      }
    }
  } finally {
    closeSync(fd);
  }
}

export function findTensor(file: GgufFile, name: string): GgufTensorInfo {
  const t = file.byName.get(name);
  if (!t) throw new GgufError(file.path, `no tensor named '${name}'`, { tensor: name });
  return t;
}

/** Raw bytes of one tensor (its ggml blocks as stored), read now; `into` receives them when given. */
export function readTensorBytes(file: GgufFile, tensor: GgufTensorInfo | string, into?: Uint8Array): Uint8Array {
  const t = typeof tensor === 'string' ? findTensor(file, tensor) : tensor;
  const buf = into ?? new Uint8Array(t.nbytes);
  if (buf.length < t.nbytes) throw new GgufError(file.path, `tensor '${t.name}': a ${buf.length}-byte buffer cannot hold its ${t.nbytes} bytes`, { tensor: t.name });
  const fd = openSync(file.path, 'r');
  try {
    // One read may return less than asked (large reads, pipes): read until done or the file ends.
    let got = 0;
    while (got < t.nbytes) {
      const n = readSync(fd, buf, got, Math.min(t.nbytes - got, 1 << 30), t.fileOffset + got);
      if (n === 0) break;
      got += n;
    }
    if (got !== t.nbytes) throw new GgufError(file.path, `tensor '${t.name}': read ${got} of ${t.nbytes} bytes (the file shrank or is truncated)`, { tensor: t.name });
    return buf.length === t.nbytes ? buf : buf.subarray(0, t.nbytes);
  } finally {
    closeSync(fd);
  }
}

/** Tensor values as fp32, for every type in engine/quant/ggml-blocks.ts; other types throw a GgmlTypeError naming the tensor. */
export function readTensorF32(file: GgufFile, tensor: GgufTensorInfo | string, out?: Float32Array): Float32Array {
  const t = typeof tensor === 'string' ? findTensor(file, tensor) : tensor;
  const what = `${file.path}: tensor '${t.name}'`;
  // Checked before the bytes are read, so an unreadable type costs no I/O.
  ggmlLayout(t.type, what);
  return dequantizeBlocks(t.type, readTensorBytes(file, t), what, out);
}

/** A key's scalar value, checked for type; throws naming the key when it is missing or of another type. */
export function ggufScalar(file: GgufFile, key: string): GgufScalar {
  const v = file.kv.get(key);
  if (!v) throw new GgufError(file.path, `key '${key}' is missing`, { key });
  if (v.type === 'array') throw new GgufError(file.path, `key '${key}' is an array`, { key });
  return v.value;
}
