/**
 * A prepared dataset (prepare.ts) as one file, so a dataset tokenized once (by the preflight, before a run starts)
 * is not tokenized again by the engine. The file says which preparation it holds (`key`, made by the caller from
 * everything the preparation depends on) and a SHA-256 of its payload: reading checks both and answers null for
 * anything else — another key, a half-written or damaged file, an unknown layout — so the caller prepares anew.
 *
 * Layout: 8-byte magic, u32 LE header length, JSON header (padded with spaces so the payload starts at a multiple of
 * 8), then the payload: u32 lengths of the train examples, of the validation examples and the tokenLengths, every
 * example's input ids (i32), then its labels — one byte per token (1: the label is the token, 0: −100) when every
 * label is one of those two, which is how masking makes them, else i32 like the ids. Little-endian throughout.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { writeFileAtomicWith } from '../io/atomic.ts';
import { IGNORE_INDEX, type TrainingExample } from '../model/types.ts';
import type { PreparedDataset } from './prepare.ts';

const MAGIC = Buffer.from('LSPREP01', 'latin1');
/** Every property of a PreparedDataset other than its examples and token lengths, as prepareDataset sets them. */
type Meta = Omit<PreparedDataset, 'train' | 'validation' | 'tokenLengths'>;

interface Header {
  key: string;
  meta: Meta;
  counts: { train: number; validation: number; tokenLengths: number; tokens: number };
  labels: 'mask' | 'i32';
  sha256: string;
}

function isInt32(v: number): boolean {
  return (v | 0) === v;
}

/** Typed arrays of the payload, in file order; throws when a value does not fit its slot (the caller keeps no file then). */
function payloadOf(data: PreparedDataset): { sections: Uint8Array[]; counts: Header['counts']; labels: Header['labels'] } {
  const examples = [...data.train, ...data.validation];
  let tokens = 0;
  let maskable = true;
  for (const ex of examples) {
    if (ex.labels.length !== ex.inputIds.length) throw new Error('an example has not as many labels as token ids');
    tokens += ex.inputIds.length;
    for (let i = 0; maskable && i < ex.labels.length; i++) maskable = ex.labels[i] === IGNORE_INDEX || ex.labels[i] === ex.inputIds[i];
  }
  const lengths = new Uint32Array(examples.length + data.tokenLengths.length);
  examples.forEach((ex, i) => (lengths[i] = ex.inputIds.length));
  data.tokenLengths.forEach((n, i) => (lengths[examples.length + i] = n));
  const ids = new Int32Array(tokens);
  const labels = maskable ? new Uint8Array(tokens) : new Int32Array(tokens);
  let at = 0;
  for (const ex of examples) {
    for (let i = 0; i < ex.inputIds.length; i++, at++) {
      const id = ex.inputIds[i];
      const label = ex.labels[i];
      if (!isInt32(id) || !isInt32(label)) throw new Error(`token id ${id} or label ${label} is not a 32-bit integer`);
      ids[at] = id;
      labels[at] = maskable ? (label === IGNORE_INDEX ? 0 : 1) : label;
    }
  }
  const bytes = (a: Uint32Array | Int32Array | Uint8Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  return {
    sections: [bytes(lengths), bytes(ids), bytes(labels)],
    counts: { train: data.train.length, validation: data.validation.length, tokenLengths: data.tokenLengths.length, tokens },
    labels: maskable ? 'mask' : 'i32',
  };
}

/**
 * Writes `data` under `key` to `path` atomically (a reader sees the old file or the whole new one). Throws when the
 * platform is big-endian or a value does not fit; callers treat the file as an optimisation and go on without it.
 */
export function writePreparedDataset(path: string, key: string, data: PreparedDataset): void {
  if (endianness() !== 'LE') throw new Error('prepared dataset files are little-endian; this machine is not');
  const { sections, counts, labels } = payloadOf(data);
  const hash = createHash('sha256');
  for (const s of sections) hash.update(s);
  const meta: Meta = {
    format: data.format,
    records: data.records,
    badRecords: data.badRecords,
    truncated: data.truncated,
    ...(data.badRecordCount !== undefined ? { badRecordCount: data.badRecordCount } : {}),
    ...(data.filtered !== undefined ? { filtered: data.filtered } : {}),
    ...(data.chatTemplate !== undefined ? { chatTemplate: data.chatTemplate } : {}),
  };
  const header: Header = { key, meta, counts, labels, sha256: hash.digest('hex') };
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - ((MAGIC.length + 4 + json.length) % 8)) % 8;
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  writeFileAtomicWith(path, (fd) => {
    for (const part of [MAGIC, len, json, ...sections]) {
      for (let off = 0; off < part.byteLength; ) off += writeSync(fd, part, off, part.byteLength - off);
    }
  });
}

function isHeader(x: unknown): x is Header {
  if (typeof x !== 'object' || x === null) return false;
  const h = x as Partial<Header>;
  const c = h.counts;
  const whole = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0;
  return (
    typeof h.key === 'string' &&
    typeof h.sha256 === 'string' &&
    (h.labels === 'mask' || h.labels === 'i32') &&
    typeof h.meta === 'object' &&
    h.meta !== null &&
    typeof c === 'object' &&
    c !== null &&
    whole(c.train) &&
    whole(c.validation) &&
    whole(c.tokenLengths) &&
    whole(c.tokens)
  );
}

/** The dataset stored at `path` when the file is whole and holds the preparation `key`; null otherwise (missing, other key, damaged). */
export function readPreparedDataset(path: string, key: string): PreparedDataset | null {
  if (endianness() !== 'LE') return null;
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch {
    return null;
  }
  if (buf.length < MAGIC.length + 4 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return null;
  const headerLen = buf.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4 + headerLen;
  if (start > buf.length || start % 8 !== 0) return null;
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(MAGIC.length + 4, start).toString('utf8'));
  } catch {
    return null;
  }
  if (!isHeader(header) || header.key !== key) return null;
  const { counts } = header;
  const examples = counts.train + counts.validation;
  const lengthBytes = 4 * (examples + counts.tokenLengths);
  const labelBytes = header.labels === 'mask' ? counts.tokens : 4 * counts.tokens;
  if (buf.length - start !== lengthBytes + 4 * counts.tokens + labelBytes) return null;
  // A copy at offset 0, so the 4-byte sections can be viewed in place whatever offset readFileSync's buffer has.
  const payload = new Uint8Array(buf.subarray(start));
  if (createHash('sha256').update(payload).digest('hex') !== header.sha256) return null;
  const lengths = new Uint32Array(payload.buffer, 0, examples + counts.tokenLengths);
  const ids = new Int32Array(payload.buffer, lengthBytes, counts.tokens);
  const labels = header.labels === 'mask' ? new Uint8Array(payload.buffer, lengthBytes + 4 * counts.tokens, counts.tokens) : new Int32Array(payload.buffer, lengthBytes + 4 * counts.tokens, counts.tokens);
  let total = 0;
  for (let i = 0; i < examples; i++) total += lengths[i];
  if (total !== counts.tokens) return null;
  const all: TrainingExample[] = [];
  let at = 0;
  for (let i = 0; i < examples; i++) {
    const n = lengths[i];
    const inputIds = Array.from(ids.subarray(at, at + n));
    const l = labels.subarray(at, at + n);
    const exLabels = header.labels === 'mask' ? Array.from(l, (m, j) => (m === 1 ? inputIds[j] : IGNORE_INDEX)) : Array.from(l);
    all.push({ inputIds, labels: exLabels });
    at += n;
  }
  const meta = header.meta;
  return {
    format: meta.format,
    train: all.slice(0, counts.train),
    validation: all.slice(counts.train),
    records: meta.records,
    badRecords: meta.badRecords,
    truncated: meta.truncated,
    tokenLengths: Array.from(lengths.subarray(examples)),
    ...(meta.badRecordCount !== undefined ? { badRecordCount: meta.badRecordCount } : {}),
    ...(meta.filtered !== undefined ? { filtered: meta.filtered } : {}),
    ...(meta.chatTemplate !== undefined ? { chatTemplate: meta.chatTemplate } : {}),
  };
}
