/**
 * GGUF reader (versions 2 and 3): key/values, tensor infos, and tensor data on demand. Every structural problem is
 * reported with the file, the byte offset and the key or tensor it belongs to.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGML_TYPE, GGML_TYPES, VALUE_TYPE_NAMES, ggmlTensorBytes, type GgufScalar, type GgufScalarType, type GgufValue, type GgufValueTypeName } from './gguf-types.ts';
import { F16_TABLE } from './half.ts';
import { q8_0Format } from './ggml-q8_0.ts';
import { q4_0Format } from './ggml-q4_0.ts';
import { q4_1Format } from './ggml-q4_1.ts';

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
}

class NeedMore extends Error {}

const MAX_STRING = 1 << 30;
const MAX_ARRAY = 1 << 30;

class Cursor {
  pos = 0;
  private view: DataView;
  constructor(
    private buf: Uint8Array,
    private complete: boolean,
    private file: string,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  fail(msg: string): never {
    throw new Error(`${this.file}: ${msg} (at byte ${this.pos})`);
  }
  need(n: number, what: string): void {
    if (this.pos + n <= this.buf.length) return;
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
    if (n > MAX_STRING) this.fail(`${what} claims ${n} bytes`);
    this.need(n, what);
    const s = new TextDecoder('utf-8', { fatal: false }).decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
  scalar(type: GgufScalarType, what: string): GgufScalar {
    const v = this.view;
    const take = (n: number): number => {
      this.need(n, what);
      const at = this.pos;
      this.pos += n;
      return at;
    };
    switch (type) {
      case 'uint8':
        return v.getUint8(take(1));
      case 'int8':
        return v.getInt8(take(1));
      case 'uint16':
        return v.getUint16(take(2), true);
      case 'int16':
        return v.getInt16(take(2), true);
      case 'uint32':
        return v.getUint32(take(4), true);
      case 'int32':
        return v.getInt32(take(4), true);
      case 'float32':
        return v.getFloat32(take(4), true);
      case 'float64':
        return v.getFloat64(take(8), true);
      case 'uint64':
        return v.getBigUint64(take(8), true);
      case 'int64':
        return v.getBigInt64(take(8), true);
      case 'bool': {
        const b = v.getUint8(take(1));
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
    if (n > MAX_ARRAY) c.fail(`key '${key}': array claims ${n} items`);
    const values: GgufScalar[] = new Array<GgufScalar>(n);
    for (let i = 0; i < n; i++) values[i] = c.scalar(itemType, `key '${key}' item ${i}`);
    return { type: 'array', itemType, values };
  }
  const value = c.scalar(type, `value of key '${key}'`);
  return { type, value } as GgufValue;
}

function parseHeader(buf: Uint8Array, complete: boolean, path: string, fileSize: number): GgufFile {
  const c: Cursor = new Cursor(buf, complete, path);
  if (c.u32('magic') !== GGUF_MAGIC) c.fail('not a GGUF file (magic is not "GGUF")');
  const version = c.u32('version');
  if (version !== 2 && version !== 3) c.fail(`unsupported GGUF version ${version} (2 and 3 are supported)`);
  const nTensors = c.u64('tensor count');
  const nKv = c.u64('key/value count');
  if (nTensors > 1e7 || nKv > 1e7) c.fail(`implausible counts: ${nTensors} tensors, ${nKv} keys`);
  const kv = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const key = c.str(`key ${i}`);
    if (kv.has(key)) c.fail(`key '${key}' appears twice`);
    kv.set(key, readValue(c, key));
  }
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const a = kv.get('general.alignment');
  if (a) {
    if (a.type !== 'uint32' || a.value === 0 || (a.value & (a.value - 1)) !== 0) c.fail(`'general.alignment' must be a power-of-two uint32`);
    alignment = a.value;
  }
  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = c.str(`name of tensor ${i}`);
    if (names.has(name)) c.fail(`tensor '${name}' appears twice`);
    names.add(name);
    const nDims = c.u32(`dimension count of tensor '${name}'`);
    if (nDims < 1 || nDims > 4) c.fail(`tensor '${name}' has ${nDims} dimensions (1 to 4 allowed)`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.u64(`dimension ${d} of tensor '${name}'`));
    const type = c.u32(`type of tensor '${name}'`);
    const t = GGML_TYPES[type];
    if (!t) c.fail(`tensor '${name}' has unknown ggml type ${type}`);
    const offset = c.u64(`offset of tensor '${name}'`);
    if (offset % alignment !== 0) c.fail(`tensor '${name}': data offset ${offset} is not a multiple of the alignment ${alignment}`);
    const nbytes = ggmlTensorBytes(type, dims, `${path}: tensor '${name}'`);
    tensors.push({ name, dims, type, typeName: t.name, offset, fileOffset: 0, nbytes });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const sorted = [...tensors].sort((x, y) => x.offset - y.offset);
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted[i];
    t.fileOffset = dataOffset + t.offset;
    if (t.fileOffset + t.nbytes > fileSize) throw new Error(`${path}: tensor '${t.name}' (${t.nbytes} bytes at ${t.fileOffset}) runs past the end of the file (${fileSize} bytes)`);
    if (i > 0 && sorted[i - 1].offset + sorted[i - 1].nbytes > t.offset) throw new Error(`${path}: tensors '${sorted[i - 1].name}' and '${t.name}' overlap`);
  }
  return { path, version, alignment, kv, tensors, dataOffset, fileSize };
}

/** Reads the header of a GGUF file (reading more of the file only as far as the header goes). */
export function readGguf(path: string): GgufFile {
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
  const t = file.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`${file.path}: no tensor named '${name}'`);
  return t;
}

/** Raw bytes of one tensor. */
export function readTensorBytes(file: GgufFile, tensor: GgufTensorInfo | string): Uint8Array {
  const t = typeof tensor === 'string' ? findTensor(file, tensor) : tensor;
  const fd = openSync(file.path, 'r');
  try {
    const buf = new Uint8Array(t.nbytes);
    const got = readSync(fd, buf, 0, t.nbytes, t.fileOffset);
    if (got !== t.nbytes) throw new Error(`${file.path}: tensor '${t.name}': read ${got} of ${t.nbytes} bytes`);
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** Tensor values as fp32, for F32, F16, BF16, Q8_0, Q4_0 and Q4_1; other types throw. */
export function readTensorF32(file: GgufFile, tensor: GgufTensorInfo | string): Float32Array {
  const t = typeof tensor === 'string' ? findTensor(file, tensor) : tensor;
  const bytes = readTensorBytes(file, t);
  return dequantizeGgml(t.type, bytes, t.dims, `${file.path}: tensor '${t.name}'`);
}

export function dequantizeGgml(type: number, bytes: Uint8Array, dims: readonly number[], what: string): Float32Array {
  const cols = dims[0];
  const rows = dims.slice(1).reduce((a, b) => a * b, 1);
  switch (type) {
    case GGML_TYPE.F32:
      return new Float32Array(bytes.slice().buffer);
    case GGML_TYPE.F16: {
      const h = new Uint16Array(bytes.slice().buffer);
      const out = new Float32Array(h.length);
      for (let i = 0; i < h.length; i++) out[i] = F16_TABLE[h[i]];
      return out;
    }
    case GGML_TYPE.BF16: {
      const h = new Uint16Array(bytes.slice().buffer);
      const u = new Uint32Array(h.length);
      for (let i = 0; i < h.length; i++) u[i] = h[i] << 16;
      return new Float32Array(u.buffer);
    }
    case GGML_TYPE.Q8_0:
      return q8_0Format.dequantize(bytes, rows, cols);
    case GGML_TYPE.Q4_0:
      return q4_0Format.dequantize(bytes, rows, cols);
    case GGML_TYPE.Q4_1:
      return q4_1Format.dequantize(bytes, rows, cols);
    default:
      throw new Error(`${what}: cannot dequantize ggml type ${GGML_TYPES[type]?.name ?? type}`);
  }
}

/** A key's scalar value, checked for type; throws naming the key when it is missing or of another type. */
export function ggufScalar(file: GgufFile, key: string): GgufScalar {
  const v = file.kv.get(key);
  if (!v) throw new Error(`${file.path}: key '${key}' is missing`);
  if (v.type === 'array') throw new Error(`${file.path}: key '${key}' is an array`);
  return v.value;
}
