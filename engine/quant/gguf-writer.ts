/**
 * GGUF v3 writer (DESIGN.md §6): header, key/values, tensor infos, padding to `general.alignment`, then each tensor's
 * data at an aligned offset from the data start. Tensor data is produced lazily, one tensor at a time, and streamed
 * to disk, so a large model is never held twice in memory.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VALUE_TYPE,
  GGUF_VERSION,
  GGML_TYPES,
  alignUp,
  ggmlTensorBytes,
  type GgufScalar,
  type GgufScalarType,
  type GgufValue,
} from './gguf-types.ts';

export interface GgufTensorSpec {
  name: string;
  /** Innermost first (ggml ne[]): a row-major [rows, cols] matrix is [cols, rows]. */
  dims: number[];
  /** ggml type id (GGML_TYPE). */
  type: number;
  /** Called once, when the tensor is written; must return exactly the type's byte count for dims. */
  data: () => Uint8Array;
}

export interface GgufKv {
  key: string;
  value: GgufValue;
}

/** Growable little-endian byte buffer for the header. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  i8(v: number): void {
    this.reserve(1);
    this.view.setInt8(this.length, v);
    this.length += 1;
  }
  u16(v: number): void {
    this.reserve(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
  }
  i16(v: number): void {
    this.reserve(2);
    this.view.setInt16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  f64(v: number): void {
    this.reserve(8);
    this.view.setFloat64(this.length, v, true);
    this.length += 8;
  }
  u64(v: bigint | number): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  i64(v: bigint): void {
    this.reserve(8);
    this.view.setBigInt64(this.length, v, true);
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  padTo(alignment: number): void {
    const n = alignUp(this.length, alignment) - this.length;
    for (let i = 0; i < n; i++) this.u8(0);
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function checkInt(key: string, v: number, lo: number, hi: number, type: string): void {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`GGUF key '${key}': ${v} is not a valid ${type}`);
}

function writeScalar(w: ByteWriter, key: string, type: GgufScalarType, v: GgufScalar): void {
  const bad = (): Error => new Error(`GGUF key '${key}': value ${String(v)} does not match type ${type}`);
  switch (type) {
    case 'string':
      if (typeof v !== 'string') throw bad();
      return w.str(v);
    case 'bool':
      if (typeof v !== 'boolean') throw bad();
      return w.u8(v ? 1 : 0);
    case 'uint64':
    case 'int64':
      if (typeof v !== 'bigint') throw bad();
      return type === 'uint64' ? w.u64(v) : w.i64(v);
    default:
      if (typeof v !== 'number') throw bad();
  }
  switch (type) {
    case 'uint8':
      checkInt(key, v, 0, 0xff, type);
      return w.u8(v);
    case 'int8':
      checkInt(key, v, -0x80, 0x7f, type);
      return w.i8(v);
    case 'uint16':
      checkInt(key, v, 0, 0xffff, type);
      return w.u16(v);
    case 'int16':
      checkInt(key, v, -0x8000, 0x7fff, type);
      return w.i16(v);
    case 'uint32':
      checkInt(key, v, 0, 0xffffffff, type);
      return w.u32(v);
    case 'int32':
      checkInt(key, v, -0x80000000, 0x7fffffff, type);
      return w.i32(v);
    case 'float32':
      return w.f32(v);
    case 'float64':
      return w.f64(v);
  }
}

function writeKv(w: ByteWriter, kv: GgufKv): void {
  w.str(kv.key);
  const v = kv.value;
  w.u32(GGUF_VALUE_TYPE[v.type]);
  if (v.type === 'array') {
    w.u32(GGUF_VALUE_TYPE[v.itemType]);
    w.u64(v.values.length);
    for (const item of v.values) writeScalar(w, kv.key, v.itemType, item);
  } else {
    writeScalar(w, kv.key, v.type, v.value);
  }
}

/** Byte offsets (from the data start) and sizes of each tensor, in order. */
export function planTensorData(tensors: readonly Omit<GgufTensorSpec, 'data'>[], alignment: number): { offsets: number[]; sizes: number[]; total: number } {
  const offsets: number[] = [];
  const sizes: number[] = [];
  let at = 0;
  for (const t of tensors) {
    const size = ggmlTensorBytes(t.type, t.dims, `GGUF tensor '${t.name}'`);
    offsets.push(at);
    sizes.push(size);
    at = alignUp(at + size, alignment);
  }
  return { offsets, sizes, total: at };
}

/** Header bytes (everything before the tensor data), padded to the alignment. */
export function ggufHeader(kvs: readonly GgufKv[], tensors: readonly Omit<GgufTensorSpec, 'data'>[], alignment = GGUF_DEFAULT_ALIGNMENT): Uint8Array {
  const keys = new Set<string>();
  for (const kv of kvs) {
    if (keys.has(kv.key)) throw new Error(`GGUF key '${kv.key}' is given twice`);
    keys.add(kv.key);
  }
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`GGUF tensor '${t.name}' is given twice`);
    names.add(t.name);
    if (new TextEncoder().encode(t.name).length >= 64) throw new Error(`GGUF tensor name '${t.name}' is longer than ggml's 63 bytes`);
    if (t.dims.length < 1 || t.dims.length > 4) throw new Error(`GGUF tensor '${t.name}': ${t.dims.length} dimensions (1 to 4 allowed)`);
    if (!GGML_TYPES[t.type]) throw new Error(`GGUF tensor '${t.name}': unknown ggml type ${t.type}`);
  }
  const plan = planTensorData(tensors, alignment);
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(kvs.length);
  for (const kv of kvs) writeKv(w, kv);
  tensors.forEach((t, i) => {
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(plan.offsets[i]);
  });
  w.padTo(alignment);
  return w.result();
}

export interface GgufWriteResult {
  bytes: number;
  tensors: number;
}

/**
 * Writes a GGUF v3 file. `general.alignment` is taken from `kvs` when present (it must be a uint32), else 32 is used
 * and NOT added to the KV list (ggml's default).
 */
export function writeGguf(path: string, kvs: readonly GgufKv[], tensors: readonly GgufTensorSpec[], onTensor?: (name: string, index: number) => void): GgufWriteResult {
  const alignKv = kvs.find((kv) => kv.key === 'general.alignment');
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (alignKv) {
    if (alignKv.value.type !== 'uint32' || alignKv.value.value <= 0 || alignKv.value.value % 8 !== 0) {
      throw new Error(`GGUF key 'general.alignment' must be a uint32 multiple of 8`);
    }
    alignment = alignKv.value.value;
  }
  const header = ggufHeader(kvs, tensors, alignment);
  const plan = planTensorData(tensors, alignment);
  const fd = openSync(path, 'w');
  try {
    let pos = 0;
    const put = (b: Uint8Array): void => {
      let off = 0;
      while (off < b.length) off += writeSync(fd, b, off, b.length - off, pos + off);
      pos += b.length;
    };
    put(header);
    const dataStart = header.length;
    tensors.forEach((t, i) => {
      const data = t.data();
      if (data.length !== plan.sizes[i]) throw new Error(`GGUF tensor '${t.name}': got ${data.length} bytes, ${GGML_TYPES[t.type].name} [${t.dims.join(', ')}] takes ${plan.sizes[i]}`);
      const pad = dataStart + plan.offsets[i] - pos;
      if (pad > 0) put(new Uint8Array(pad));
      put(data);
      onTensor?.(t.name, i);
    });
    const tail = dataStart + plan.total - pos;
    if (tail > 0) put(new Uint8Array(tail));
    return { bytes: pos, tensors: tensors.length };
  } finally {
    closeSync(fd);
  }
}
