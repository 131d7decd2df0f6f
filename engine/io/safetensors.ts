/**
 * safetensors: u64 LE header length, JSON header `{name: {dtype, shape, data_offsets}}` (+ `__metadata__`), raw data.
 *
 * Reading is lazy: `SafetensorsFile.open` reads and validates only the header; each tensor is then read with one
 * positioned read at its offset, so loading a model never holds the file and its converted copy at once.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { FloatArray } from '../model/types.ts';
import { writeAll, writeFileAtomicWith } from './atomic.ts';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from './f16.ts';

export const DTYPE_SIZES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
} as const;
export type SafetensorsDtype = keyof typeof DTYPE_SIZES;

export function isSafetensorsDtype(x: unknown): x is SafetensorsDtype {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZES, x);
}

/** Bad or unreadable safetensors content; the message names the file and, where it applies, the tensor. */
export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Element count (product of shape; 1 for a scalar). */
  numel: number;
  /** Byte offsets relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string> | null;
  /** Absolute file offset where the data section starts (8 + header length). */
  dataStart: number;
}

/** Refuse absurd headers before allocating for them (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * Parses and validates a header: every entry has a known dtype, a shape of non-negative integers and
 * data_offsets [begin, end] with end − begin = numel × dtype size, inside `dataLength`, and no two tensors overlap.
 * `label` (usually the file path) starts every error message.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, dataLength: number, label: string): Omit<SafetensorsHeader, 'dataStart'> {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw new SafetensorsError(`${label}: header is not valid UTF-8 JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isPlainObject(json)) throw new SafetensorsError(`${label}: header must be a JSON object`);
  let metadata: Record<string, string> | null = null;
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (entry === null) continue;
      if (!isPlainObject(entry)) throw new SafetensorsError(`${label}: __metadata__ must be an object of strings`);
      metadata = {};
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw new SafetensorsError(`${label}: __metadata__.${k} must be a string, got ${typeof v}`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `${label}: tensor '${name}'`;
    if (!isPlainObject(entry)) throw new SafetensorsError(`${where}: entry must be an object with dtype, shape and data_offsets`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (!isSafetensorsDtype(dtype)) {
      throw new SafetensorsError(`${where}: unknown dtype ${JSON.stringify(dtype)} (expected one of ${Object.keys(DTYPE_SIZES).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every((d): d is number => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(`${where}: shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o): o is number => Number.isSafeInteger(o) && o >= 0)) {
      throw new SafetensorsError(`${where}: data_offsets must be [begin, end] with non-negative integers, got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets;
    if (end < begin) throw new SafetensorsError(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
    const numel = shape.reduce((a, b) => a * b, 1);
    const want = numel * DTYPE_SIZES[dtype];
    if (!Number.isSafeInteger(want) || end - begin !== want) {
      throw new SafetensorsError(
        `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but dtype ${dtype} × shape [${shape.join(', ')}] needs ${want}`,
      );
    }
    if (end > dataLength) {
      throw new SafetensorsError(
        `${where}: data_offsets [${begin}, ${end}] run past the end of the data (${dataLength} bytes): the file is truncated or the header is wrong`,
      );
    }
    tensors.set(name, { name, dtype, shape: [...shape], numel, begin, end });
  }
  const sorted = [...tensors.values()].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) {
      throw new SafetensorsError(
        `${label}: tensors '${sorted[i - 1].name}' [${sorted[i - 1].begin}, ${sorted[i - 1].end}] and '${sorted[i].name}' [${sorted[i].begin}, ${sorted[i].end}] overlap`,
      );
    }
  }
  return { tensors, metadata };
}

/** One read call moves at most this much: Node refuses lengths of 2 GiB and more. */
const MAX_IO_CHUNK = 1 << 30;

function readExactly(fd: number, buf: Uint8Array, position: number, label: string): void {
  let off = 0;
  while (off < buf.length) {
    const n = readSync(fd, buf, off, Math.min(buf.length - off, MAX_IO_CHUNK), position + off);
    if (n === 0) throw new SafetensorsError(`${label}: unexpected end of file at byte ${position + off}`);
    off += n;
  }
}

/** An open safetensors file; read tensors one at a time, then `close()`. */
export class SafetensorsFile {
  readonly path: string;
  readonly header: SafetensorsHeader;
  private fd: number | null;

  private constructor(path: string, fd: number, header: SafetensorsHeader) {
    this.path = path;
    this.fd = fd;
    this.header = header;
  }

  /** Opens `path` and validates its header (no tensor data is read). */
  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw new SafetensorsError(code === 'ENOENT' ? `${path}: file not found` : `${path}: cannot open (${e instanceof Error ? e.message : String(e)})`);
    }
    try {
      const size = fstatSync(fd).size;
      if (size < 8) throw new SafetensorsError(`${path}: file is ${size} bytes, too short for a safetensors header`);
      const lenBuf = new Uint8Array(8);
      readExactly(fd, lenBuf, 0, path);
      const len = new DataView(lenBuf.buffer).getBigUint64(0, true);
      if (len > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(`${path}: header length ${len} is larger than ${MAX_HEADER_BYTES} bytes; not a safetensors file?`);
      const headerLen = Number(len);
      if (8 + headerLen > size) throw new SafetensorsError(`${path}: header length ${headerLen} runs past the end of the file (${size} bytes): truncated or not safetensors`);
      const hb = new Uint8Array(headerLen);
      readExactly(fd, hb, 8, path);
      const parsed = parseSafetensorsHeader(hb, size - 8 - headerLen, path);
      return new SafetensorsFile(path, fd, { ...parsed, dataStart: 8 + headerLen });
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  names(): string[] {
    return [...this.header.tensors.keys()];
  }

  has(name: string): boolean {
    return this.header.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.header.tensors.get(name);
    if (!t) throw new SafetensorsError(`${this.path}: no tensor named '${name}'`);
    return t;
  }

  /** The tensor's bytes as stored (little-endian), in a fresh aligned buffer. */
  readBytes(name: string): Uint8Array<ArrayBuffer> {
    if (this.fd === null) throw new SafetensorsError(`${this.path}: file is closed`);
    const t = this.info(name);
    const buf = new Uint8Array(t.end - t.begin);
    readExactly(this.fd, buf, this.header.dataStart + t.begin, `${this.path}: tensor '${name}'`);
    return buf;
  }

  /**
   * The tensor as floats (any numeric dtype; F16/BF16 decoded exactly). `ctor` picks Float32Array (default) or
   * Float64Array; `into` reuses an existing array of the right length.
   */
  readFloat(name: string, ctor: Float32ArrayConstructor | Float64ArrayConstructor = Float32Array, into?: FloatArray): FloatArray {
    const t = this.info(name);
    if (t.dtype === 'F8_E4M3' || t.dtype === 'F8_E5M2' || t.dtype === 'BOOL') {
      throw new SafetensorsError(`${this.path}: tensor '${name}' has dtype ${t.dtype}, which cannot be read as floats`);
    }
    if (into && into.length !== t.numel) throw new SafetensorsError(`${this.path}: tensor '${name}' has ${t.numel} values, destination ${into.length}`);
    const buf = this.readBytes(name).buffer;
    // Same dtype and no destination: the freshly read buffer already is the answer.
    if (!into && t.dtype === 'F32' && ctor === Float32Array) return new Float32Array(buf, 0, t.numel);
    if (!into && t.dtype === 'F64' && ctor === Float64Array) return new Float64Array(buf, 0, t.numel);
    const out: FloatArray = into ?? new ctor(t.numel);
    switch (t.dtype) {
      case 'F32':
        out.set(new Float32Array(buf, 0, t.numel));
        return out;
      case 'F64':
        out.set(new Float64Array(buf, 0, t.numel));
        return out;
      case 'F16':
        return decodeF16(new Uint16Array(buf, 0, t.numel), out);
      case 'BF16':
        return decodeBf16(new Uint16Array(buf, 0, t.numel), out);
      case 'I64':
      case 'U64': {
        const src = t.dtype === 'I64' ? new BigInt64Array(buf, 0, t.numel) : new BigUint64Array(buf, 0, t.numel);
        for (let i = 0; i < t.numel; i++) out[i] = Number(src[i]);
        return out;
      }
      default: {
        const Ctor = { I32: Int32Array, I16: Int16Array, I8: Int8Array, U32: Uint32Array, U16: Uint16Array, U8: Uint8Array }[t.dtype];
        out.set(new Ctor(buf, 0, t.numel));
        return out;
      }
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Reads only the header of `path`. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const f = SafetensorsFile.open(path);
  f.close();
  return f.header;
}

/** Opens `path`, runs `fn`, closes the file. */
export function withSafetensors<T>(path: string, fn: (f: SafetensorsFile) => T): T {
  const f = SafetensorsFile.open(path);
  try {
    return fn(f);
  } finally {
    f.close();
  }
}

/**
 * A tensor to write. Float dtypes (F32, F64, F16, BF16) take any FloatArray and convert it (F16/BF16 round to
 * nearest even); a Uint16Array for F16/BF16 is taken as bit patterns. Other dtypes take a typed array whose bytes
 * are written as they are (its byte length must be numel × dtype size).
 */
export interface WriteTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: ArrayBufferView;
}

function tensorBytes(t: WriteTensor, label: string): Uint8Array {
  const numel = t.shape.reduce((a, b) => a * b, 1);
  const d = t.data;
  let view: ArrayBufferView;
  const isFloat = d instanceof Float32Array || d instanceof Float64Array;
  if (t.dtype === 'F32' && isFloat) view = d instanceof Float32Array ? d : Float32Array.from(d);
  else if (t.dtype === 'F64' && isFloat) view = d instanceof Float64Array ? d : Float64Array.from(d);
  else if (t.dtype === 'F16' && isFloat) view = encodeF16(d);
  else if (t.dtype === 'BF16' && isFloat) view = encodeBf16(d);
  else if ((t.dtype === 'F32' || t.dtype === 'F64') && !isFloat) {
    throw new SafetensorsError(`${label}: tensor '${t.name}' is ${t.dtype} but its data is a ${d.constructor.name}`);
  } else view = d;
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  if (bytes.length !== numel * DTYPE_SIZES[t.dtype]) {
    throw new SafetensorsError(
      `${label}: tensor '${t.name}' has ${bytes.length} bytes of data but dtype ${t.dtype} × shape [${t.shape.join(', ')}] needs ${numel * DTYPE_SIZES[t.dtype]}`,
    );
  }
  return bytes;
}

/** Header JSON for these tensors (in the given order), padded with spaces to a multiple of 8 bytes. */
function headerFor(tensors: { name: string; dtype: SafetensorsDtype; shape: number[]; bytes: number }[], metadata?: Record<string, string>): Uint8Array {
  const obj: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) obj.__metadata__ = metadata;
  let off = 0;
  for (const t of tensors) {
    obj[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.bytes] };
    off += t.bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(obj));
  const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  padded.set(json);
  return padded;
}

/** Bytes a safetensors file with these tensors takes (for sharding). */
export function tensorByteSize(dtype: SafetensorsDtype, shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1) * DTYPE_SIZES[dtype];
}

/**
 * Writes a safetensors file atomically (temporary file, fsync, rename). Tensors are converted and written one at a
 * time, so memory stays at one tensor's converted copy. `metadata` defaults to `{format: "pt"}`, which transformers
 * and PEFT expect.
 */
export function writeSafetensors(path: string, tensors: WriteTensor[], metadata: Record<string, string> = { format: 'pt' }): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name === '') throw new SafetensorsError(`${path}: invalid tensor name '${t.name}'`);
    if (seen.has(t.name)) throw new SafetensorsError(`${path}: tensor '${t.name}' given twice`);
    seen.add(t.name);
    if (!isSafetensorsDtype(t.dtype)) throw new SafetensorsError(`${path}: tensor '${t.name}' has unknown dtype ${JSON.stringify(t.dtype)}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new SafetensorsError(`${path}: tensor '${t.name}' has invalid shape [${t.shape.join(', ')}]`);
  }
  const header = headerFor(
    tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: tensorByteSize(t.dtype, t.shape) })),
    metadata,
  );
  writeFileAtomicWith(path, (fd) => {
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(header.length), true);
    writeAll(fd, len);
    writeAll(fd, header);
    for (const t of tensors) writeAll(fd, tensorBytes(t, path));
  });
}
