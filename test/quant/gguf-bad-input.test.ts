/**
 * Broken GGUFs, made from the real SmolLM2 file's header (1.7 MB of real metadata and 272 tensor infos): cut at
 * every part of it, a wrong magic, tensor and key counts no file could hold, a tensor offset far past the end, an
 * unknown and an unreadable ggml type, an architecture the studio does not train. Each is a GgufError whose message
 * names the file and the field (key or tensor) and the byte where reading stopped; none reads more than the header
 * (the long files are sparse: their size is the real file's, their data never written).
 */
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { GgufModelSource } from '../../engine/io/gguf-model.ts';
import { inspectModel } from '../../engine/io/model-source.ts';
import { GgmlTypeError } from '../../engine/quant/ggml-blocks.ts';
import { GgufError, readGguf } from '../../engine/quant/gguf-reader.ts';
import { realModelPath } from '../helpers/real-model.ts';

const real = realModelPath();
const good = readGguf(real);
const dir = mkdtempSync(join(tmpdir(), 'gguf-bad-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The real file's header bytes (everything before the tensor data). */
const header: Buffer = (() => {
  const fd = openSync(real, 'r');
  try {
    const b = Buffer.alloc(good.dataOffset);
    readSync(fd, b, 0, b.length, 0);
    return b;
  } finally {
    closeSync(fd);
  }
})();

/** Writes `head` as a file of `size` bytes (sparse past the head). */
function file(name: string, head: Uint8Array, size = head.length): string {
  const p = join(dir, name);
  const fd = openSync(p, 'w');
  try {
    writeSync(fd, head);
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
  return p;
}

function refusal(fn: () => unknown): GgufError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof GgufError, `expected a GgufError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a GgufError');
}

/** Byte positions of a tensor info's fields in the header: found by its name, which follows its u64 length. */
function tensorInfoAt(name: string): { type: number; offset: number } {
  const at = header.lastIndexOf(Buffer.from(name, 'latin1'));
  assert.ok(at > 0 && header.readBigUInt64LE(at - 8) === BigInt(name.length), `tensor info of ${name} not found`);
  const nDims = header.readUInt32LE(at + name.length);
  const type = at + name.length + 4 + 8 * nDims;
  return { type, offset: type + 4 };
}

test('a GGUF cut short anywhere in its header names the file, the key or tensor being read and the byte', () => {
  const tokens = header.indexOf(Buffer.from('tokenizer.ggml.tokens', 'latin1'));
  const firstInfo = header.lastIndexOf(Buffer.from('token_embd.weight', 'latin1'));
  const cases: { cut: number; message: RegExp; key?: string; tensor?: string }[] = [
    { cut: 2, message: /not a GGUF file/ },
    { cut: 18, message: /file ends inside key\/value count \(the file is truncated: 18 bytes\) \(at byte 16\)/ },
    { cut: 6, message: /file ends inside version \(the file is truncated: 6 bytes\)/ },
    { cut: 24, message: /the header claims 33 keys and 272 tensors, more than the 0 bytes left in the file can hold/ },
    { cut: tokens + 500000, message: /file ends inside (length of )?an item of key 'tokenizer\.ggml\.tokens' \(the file is truncated: \d+ bytes\) \(at byte \d+\)/, key: 'tokenizer.ggml.tokens' },
    { cut: firstInfo + 10, message: /name of tensor 0 claims 17 bytes, but only 10 bytes follow in the file \(at byte \d+\)/ },
    { cut: firstInfo + 17 + 8, message: /file ends inside dimension 0 of tensor 'token_embd\.weight' \(the file is truncated: \d+ bytes\) \(at byte \d+\)/, tensor: 'token_embd.weight' },
    { cut: good.dataOffset - 8, message: /file ends inside offset of tensor '[^']+' \(the file is truncated: \d+ bytes\) \(at byte \d+\)/ },
  ];
  for (const c of cases) {
    const p = file(`cut-${c.cut}.gguf`, header.subarray(0, c.cut));
    const e = refusal(() => readGguf(p));
    assert.ok(e.message.startsWith(`${p}: `), e.message);
    assert.match(e.message, c.message, `cut at ${c.cut}`);
    if (c.key) assert.equal(e.key, c.key, e.message);
    if (c.tensor) assert.equal(e.tensor, c.tensor, e.message);
  }
  // The whole header but half of the data: the first tensor past the cut is named, with its size and place.
  const half = file('half-data.gguf', header, Math.floor(good.fileSize / 2));
  const e = refusal(() => readGguf(half));
  assert.match(e.message, /tensor '[^']+' \((Q4_1|Q8_0) \[\d+(, \d+)?\], \d+ bytes at \d+\) runs past the end of the file \(\d+ bytes\): the file is truncated/);
  assert.ok(e.tensor);
  // The same file as a model: the message still names it (as the model field shows it).
  assert.throws(() => inspectModel(half), (x: unknown) => x instanceof GgufError && x.message.startsWith(half));
});

test('a wrong magic, and a safetensors file given as GGUF, are told apart from a damaged GGUF', () => {
  for (const [name, magic] of [['ggml', 'GGML'], ['ggjt', 'tjgg'], ['zip', 'PK\x03\x04']] as const) {
    const head = Buffer.from(header);
    head.write(magic, 0, 'latin1');
    const p = file(`${name}.gguf`, head, good.fileSize);
    assert.match(refusal(() => readGguf(p)).message, /: not a GGUF file \(it does not start with "GGUF"\) \(at byte 4\)$/);
  }
  const v = Buffer.from(header);
  v.writeUInt32LE(4, 4);
  assert.match(refusal(() => readGguf(file('v4.gguf', v, good.fileSize))).message, /unsupported GGUF version 4 \(2 and 3 are supported\) \(at byte 8\)/);
});

test('tensor and key counts no file could hold are refused before anything is allocated for them', () => {
  for (const [field, at] of [['tensor count', 8], ['key/value count', 16]] as const) {
    for (const n of [2n ** 40n, 2n ** 53n - 1n]) {
      const head = Buffer.from(header);
      head.writeBigUInt64LE(n, at);
      const e = refusal(() => readGguf(file(`count-${at}-${n}.gguf`, head, good.fileSize)));
      assert.match(e.message, new RegExp(`the header claims (${n} keys|33 keys) and (${n}|272) tensors, more than the \\d+ bytes left in the file can hold`), field);
    }
    const head = Buffer.from(header);
    head.writeBigUInt64LE(2n ** 64n - 1n, at);
    assert.match(refusal(() => readGguf(file(`count-${at}-max.gguf`, head, good.fileSize))).message, new RegExp(`${field.replace('/', '\\/')} is too large \\(18446744073709551615\\) \\(at byte ${at + 8}\\)`));
  }
  // An array length past the file (the vocabulary claiming 2^40 strings).
  const tokens = header.indexOf(Buffer.from('tokenizer.ggml.tokens', 'latin1')) + 'tokenizer.ggml.tokens'.length;
  const head = Buffer.from(header);
  head.writeBigUInt64LE(2n ** 40n, tokens + 8);
  const e = refusal(() => readGguf(file('vocab-count.gguf', head, good.fileSize)));
  assert.match(e.message, /key 'tokenizer\.ggml\.tokens': array claims 1099511627776 string items, more than the \d+ bytes left in the file can hold/);
  assert.equal(e.key, 'tokenizer.ggml.tokens');
});

test('a tensor offset far past the end of the file, or misaligned, names the tensor', () => {
  const name = 'blk.0.attn_q.weight';
  const { offset } = tensorInfoAt(name);
  const far = Buffer.from(header);
  far.writeBigUInt64LE(2n ** 50n, offset);
  const e = refusal(() => readGguf(file('far.gguf', far, good.fileSize)));
  assert.match(e.message, new RegExp(`tensor '${name.replaceAll('.', '\\.')}' \\(Q4_1 \\[576, 576\\], 207360 bytes at \\d+\\) runs past the end of the file \\(${good.fileSize} bytes\\)`));
  assert.equal(e.tensor, name);
  const odd = Buffer.from(header);
  odd.writeBigUInt64LE(header.readBigUInt64LE(offset) + 4n, offset);
  assert.match(refusal(() => readGguf(file('odd.gguf', odd, good.fileSize))).message, /tensor 'blk\.0\.attn_q\.weight': data offset \d+ is not a multiple of the alignment 32 \(at byte \d+\)/);
});

test('an unknown ggml type is refused when reading the header; a known but unreadable one (IQ4_NL) when opening the model', () => {
  const name = 'blk.3.ffn_up.weight';
  const { type } = tensorInfoAt(name);
  const unknown = Buffer.from(header);
  unknown.writeUInt32LE(99, type);
  const e = refusal(() => readGguf(file('type-99.gguf', unknown, good.fileSize)));
  assert.match(e.message, new RegExp(`tensor '${name.replaceAll('.', '\\.')}' has unknown ggml type 99 \\(at byte ${type + 4}\\)$`));
  assert.equal(e.tensor, name);
  // IQ4_NL: blocks of 32 in 18 bytes (Q4_1's are 20), so the layout stays valid and only the type is the problem.
  const iq = Buffer.from(header);
  iq.writeUInt32LE(20, type);
  const p = file('iq4_nl.gguf', iq, good.fileSize);
  assert.equal(readGguf(p).byName.get(name)?.typeName, 'IQ4_NL');
  assert.throws(
    () => GgufModelSource.open(p),
    (x: unknown) => x instanceof GgmlTypeError && x.message.startsWith(`${p}: tensor '${name}': ggml type IQ4_NL cannot be read (readable: F32, F16, Q4_0, Q4_1`),
  );
});

test('a GGUF of an architecture the studio does not train names it and says what it is', () => {
  const head = Buffer.from(header);
  const at = head.indexOf(Buffer.from('llama', 'latin1'), head.indexOf(Buffer.from('general.architecture', 'latin1')));
  head.write('gemma', at, 'latin1');
  const p = file('gemma.gguf', head, good.fileSize);
  const e = refusal(() => inspectModel(p));
  assert.ok(e.message.startsWith(`${p}: `), e.message);
  assert.match(e.message, /Gemma/);
  assert.equal(e.key, 'general.architecture');
  writeFileSync(join(dir, 'empty.gguf'), '');
  assert.match(refusal(() => readGguf(join(dir, 'empty.gguf'))).message, /empty\.gguf: not a GGUF file/);
});
