import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  DTYPE_SIZES,
  parseSafetensorsHeader,
  readSafetensorsHeader,
  SafetensorsError,
  SafetensorsFile,
  withSafetensors,
  writeSafetensors,
  type SafetensorsDtype,
  type WriteTensor,
} from '../../engine/io/safetensors.ts';

const dir = mkdtempSync(join(tmpdir(), 'st-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const tmpFile = (): string => join(dir, `f${fileNo++}.safetensors`);

/** A file with a hand-made header (object or raw string) and `dataBytes` bytes of data. */
function rawFile(header: unknown, dataBytes: number): string {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const buf = new Uint8Array(8 + json.length + dataBytes);
  new DataView(buf.buffer).setBigUint64(0, BigInt(json.length), true);
  buf.set(json, 8);
  const p = tmpFile();
  writeFileSync(p, buf);
  return p;
}

function bytesOf(v: ArrayBufferView): number[] {
  return [...new Uint8Array(v.buffer, v.byteOffset, v.byteLength)];
}

describe('safetensors round trip', () => {
  // Values exactly representable in f16 and bf16, so the float round trip is exact.
  const floats = Float32Array.from([0, -0, 1, -2, 0.5, 0.25, 3, -96, 1024, 0.125, 7, -0.375]);
  const tensors: WriteTensor[] = [
    { name: 'f32', dtype: 'F32', shape: [3, 4], data: floats },
    { name: 'f64', dtype: 'F64', shape: [2, 6], data: Float64Array.from([Math.PI, -1e300, 1e-300, ...Array(9).fill(2)]) },
    { name: 'f16', dtype: 'F16', shape: [12], data: floats },
    { name: 'bf16', dtype: 'BF16', shape: [4, 3], data: floats },
    { name: 'i32', dtype: 'I32', shape: [3], data: Int32Array.from([-2147483648, 0, 2147483647]) },
    { name: 'i64', dtype: 'I64', shape: [2], data: BigInt64Array.from([-5n, 1n << 40n]) },
    { name: 'i16', dtype: 'I16', shape: [2], data: Int16Array.from([-32768, 77]) },
    { name: 'i8', dtype: 'I8', shape: [3], data: Int8Array.from([-128, 0, 127]) },
    { name: 'u8', dtype: 'U8', shape: [2], data: Uint8Array.from([0, 255]) },
    { name: 'u16', dtype: 'U16', shape: [1], data: Uint16Array.from([65535]) },
    { name: 'u32', dtype: 'U32', shape: [1], data: Uint32Array.from([4294967295]) },
    { name: 'bool', dtype: 'BOOL', shape: [3], data: Uint8Array.from([1, 0, 1]) },
    { name: 'scalar', dtype: 'F32', shape: [], data: Float32Array.from([42]) },
    { name: 'empty', dtype: 'F32', shape: [0, 5], data: new Float32Array(0) },
  ];
  const path = tmpFile();
  writeSafetensors(path, tensors, { format: 'pt', note: 'hello' });

  test('file layout: u64 LE header length, space-padded JSON aligned to 8, data right after', () => {
    const buf = readFileSync(path);
    const len = Number(buf.readBigUInt64LE(0));
    assert.equal(len % 8, 0);
    const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
    assert.deepEqual(header.__metadata__, { format: 'pt', note: 'hello' });
    const ends = Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, v]) => v.data_offsets[1]);
    assert.equal(buf.length, 8 + len + Math.max(...ends));
  });

  test('every dtype reads back with the same shape and bytes', () => {
    withSafetensors(path, (f) => {
      assert.deepEqual(f.header.metadata, { format: 'pt', note: 'hello' });
      assert.deepEqual(f.names(), tensors.map((t) => t.name));
      for (const t of tensors) {
        const info = f.info(t.name);
        assert.equal(info.dtype, t.dtype, t.name);
        assert.deepEqual(info.shape, t.shape, t.name);
        if (t.dtype !== 'F16' && t.dtype !== 'BF16') assert.deepEqual([...f.readBytes(t.name)], bytesOf(t.data), t.name);
      }
    });
  });

  test('F16 and BF16 bytes are the IEEE encodings', () => {
    withSafetensors(path, (f) => {
      const h = new Uint16Array(f.readBytes('f16').buffer);
      assert.deepEqual([...h.slice(0, 5)], [0x0000, 0x8000, 0x3c00, 0xc000, 0x3800]);
      const b = new Uint16Array(f.readBytes('bf16').buffer);
      assert.deepEqual([...b.slice(0, 5)], [0x0000, 0x8000, 0x3f80, 0xc000, 0x3f00]);
    });
  });

  test('readFloat converts every numeric dtype, into f32 or f64', () => {
    withSafetensors(path, (f) => {
      for (const name of ['f32', 'f16', 'bf16']) {
        assert.deepEqual([...f.readFloat(name)], [...floats], name);
        const d = f.readFloat(name, Float64Array);
        assert.ok(d instanceof Float64Array);
        assert.deepEqual([...d], [...floats], name);
      }
      assert.deepEqual([...f.readFloat('f64', Float64Array)], [Math.PI, -1e300, 1e-300, ...Array(9).fill(2)]);
      assert.deepEqual([...f.readFloat('i32', Float64Array)], [-2147483648, 0, 2147483647]);
      assert.deepEqual([...f.readFloat('i64')], [-5, 2 ** 40]);
      assert.deepEqual([...f.readFloat('u32', Float64Array)], [4294967295]);
      assert.deepEqual([...f.readFloat('i8')], [-128, 0, 127]);
      assert.deepEqual([...f.readFloat('scalar')], [42]);
      assert.equal(f.readFloat('empty').length, 0);
      const into = new Float32Array(12);
      assert.equal(f.readFloat('bf16', Float32Array, into), into);
      assert.throws(() => f.readFloat('bool'), /bool.*BOOL/);
      assert.throws(() => f.readFloat('nope'), /no tensor named 'nope'/);
    });
  });

  test('float data is rounded to nearest even when written as F16/BF16', () => {
    const p = tmpFile();
    writeSafetensors(p, [
      { name: 'h', dtype: 'F16', shape: [2], data: Float64Array.from([1 + 2 ** -11, 1 + 3 * 2 ** -11]) },
      { name: 'b', dtype: 'BF16', shape: [2], data: Float32Array.from([1 + 2 ** -8, 1 + 3 * 2 ** -8]) },
    ]);
    withSafetensors(p, (f) => {
      assert.deepEqual([...f.readFloat('h')], [1, 1 + 2 ** -9]);
      assert.deepEqual([...f.readFloat('b')], [1, 1 + 2 ** -6]);
    });
  });

  test('writer refuses data of the wrong size, duplicate names, and leaves no temporary files', () => {
    const p = join(dir, 'bad.safetensors');
    assert.throws(() => writeSafetensors(p, [{ name: 'x', dtype: 'F32', shape: [3], data: new Float32Array(2) }]), /'x' has 8 bytes of data but dtype F32 × shape \[3\] needs 12/);
    assert.throws(() => writeSafetensors(p, [{ name: 'x', dtype: 'I32', shape: [1], data: new Int32Array(1) }, { name: 'x', dtype: 'I32', shape: [1], data: new Int32Array(1) }]), /'x' given twice/);
    assert.throws(() => writeSafetensors(p, [{ name: 'x', dtype: 'F32', shape: [1], data: new Int32Array(1) }]), /F32 but its data is a Int32Array/);
    assert.ok(!readdirSync(dir).some((f) => f.includes('bad.safetensors')), 'no partial or temporary file');
  });
});

describe('safetensors header validation', () => {
  test('overlapping tensors name both tensors and the file', () => {
    const p = rawFile({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, 24);
    assert.throws(() => SafetensorsFile.open(p), (e: Error) => e instanceof SafetensorsError && e.message.includes(p) && /'a'.*'b'.*overlap/.test(e.message));
  });
  test('offsets out of bounds', () => {
    const p = rawFile({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8);
    assert.throws(() => SafetensorsFile.open(p), /tensor 'w': data_offsets \[0, 16\] run past the end of the data \(8 bytes\)/);
  });
  test('unknown dtype', () => {
    const p = rawFile({ w: { dtype: 'F7', shape: [1], data_offsets: [0, 1] } }, 1);
    assert.throws(() => SafetensorsFile.open(p), /tensor 'w': unknown dtype "F7"/);
  });
  test('byte count must match dtype × shape', () => {
    const p = rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8);
    assert.throws(() => SafetensorsFile.open(p), /tensor 'w': data_offsets \[0, 8\] hold 8 bytes but dtype F32 × shape \[3\] needs 12/);
  });
  test('bad shapes, offsets and metadata', () => {
    assert.throws(() => SafetensorsFile.open(rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }, 0)), /'w': shape must be a list of non-negative integers/);
    assert.throws(() => SafetensorsFile.open(rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, 4)), /'w': data_offsets \[4, 0\] end before they begin/);
    assert.throws(() => SafetensorsFile.open(rawFile({ w: { dtype: 'F32', shape: [1] } }, 4)), /'w': data_offsets must be \[begin, end\]/);
    assert.throws(() => SafetensorsFile.open(rawFile({ __metadata__: { a: 1 } }, 0)), /__metadata__\.a must be a string/);
    assert.throws(() => SafetensorsFile.open(rawFile('[1, 2]', 0)), /header must be a JSON object/);
    assert.throws(() => SafetensorsFile.open(rawFile('{"w": ', 0)), /header is not valid UTF-8 JSON/);
  });
  test('truncated files', () => {
    const p = tmpFile();
    writeSafetensors(p, [{ name: 'weights', dtype: 'F32', shape: [64], data: new Float32Array(64) }]);
    const size = readFileSync(p).length;
    truncateSync(p, size - 4);
    assert.throws(() => SafetensorsFile.open(p), /tensor 'weights'.*truncated/);
    truncateSync(p, 20);
    assert.throws(() => SafetensorsFile.open(p), /header length \d+ runs past the end of the file \(20 bytes\)/);
    truncateSync(p, 5);
    assert.throws(() => SafetensorsFile.open(p), /file is 5 bytes, too short/);
    assert.throws(() => SafetensorsFile.open(join(dir, 'missing.safetensors')), /missing\.safetensors: file not found/);
  });
  test('absurd header length is refused before allocating', () => {
    const p = tmpFile();
    const buf = Buffer.alloc(16);
    buf.writeBigUInt64LE(1n << 60n, 0);
    writeFileSync(p, buf);
    assert.throws(() => readSafetensorsHeader(p), /header length \d+ is larger than/);
  });
});

describe('safetensors header parser under fuzzing', () => {
  const onlyOurErrors = (fn: () => unknown): void => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof SafetensorsError)) throw e;
      assert.ok(e.message.startsWith('fuzz'), e.message);
    }
  };
  const dtypes = [...Object.keys(DTYPE_SIZES), 'F7', '', 'f32'];
  const num = fc.oneof(fc.integer({ min: -4, max: 64 }), fc.constantFrom(1e300, -0, 0.5, Number.MAX_SAFE_INTEGER, 2 ** 60));
  const entry = fc.record(
    {
      dtype: fc.oneof(fc.constantFrom(...dtypes), fc.anything()),
      shape: fc.oneof(fc.array(num, { maxLength: 3 }), fc.anything()),
      data_offsets: fc.oneof(fc.tuple(num, num), fc.array(num, { maxLength: 3 }), fc.anything()),
    },
    { requiredKeys: [] },
  );
  const header = fc.dictionary(fc.oneof(fc.string(), fc.constant('__metadata__')), fc.oneof(entry, fc.anything()), { maxKeys: 5 });

  test('structured headers: valid or a SafetensorsError, never a crash', () => {
    fc.assert(
      fc.property(header, fc.integer({ min: 0, max: 256 }), (h, dataLen) => {
        onlyOurErrors(() => parseSafetensorsHeader(new TextEncoder().encode(JSON.stringify(h)), dataLen, 'fuzz'));
      }),
      { numRuns: 3000 },
    );
  });

  test('random bytes as header: a SafetensorsError, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 1000 }), (bytes, dataLen) => {
        onlyOurErrors(() => parseSafetensorsHeader(bytes, dataLen, 'fuzz'));
      }),
      { numRuns: 3000 },
    );
  });

  test('headers with non-overlapping in-bounds tensors always parse, with the same entries', () => {
    const dtypeArb = fc.constantFrom(...(Object.keys(DTYPE_SIZES) as SafetensorsDtype[]));
    const tensor = fc.record({ dtype: dtypeArb, shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }), gap: fc.integer({ min: 0, max: 3 }) });
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(fc.string({ minLength: 1 }).filter((s) => s !== '__metadata__'), tensor), { selector: (t) => t[0], maxLength: 6 }), (list) => {
        const entries: [string, unknown][] = [];
        let off = 0;
        for (const [name, t] of list) {
          off += t.gap;
          const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZES[t.dtype];
          entries.push([name, { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + bytes] }]);
          off += bytes;
        }
        // fromEntries keeps a name like "__proto__" as an ordinary key.
        const h = Object.fromEntries(entries);
        const parsed = parseSafetensorsHeader(new TextEncoder().encode(JSON.stringify(h)), off, 'fuzz');
        assert.equal(parsed.tensors.size, list.length);
        for (const [name, t] of list) {
          assert.equal(parsed.tensors.get(name)?.dtype, t.dtype);
          assert.deepEqual(parsed.tensors.get(name)?.shape, t.shape);
        }
      }),
      { numRuns: 1000 },
    );
  });

  test('random whole files: open() throws a SafetensorsError or succeeds', () => {
    const p = join(dir, 'fuzz.safetensors');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.option(header), fc.integer({ min: 0, max: 64 }), (junk, h, extra) => {
        let buf: Uint8Array = junk;
        if (h !== null) {
          const json = new TextEncoder().encode(JSON.stringify(h));
          buf = new Uint8Array(8 + json.length + extra);
          new DataView(buf.buffer).setBigUint64(0, BigInt(json.length), true);
          buf.set(json, 8);
        }
        writeFileSync(p, buf);
        try {
          SafetensorsFile.open(p).close();
        } catch (e) {
          if (!(e instanceof SafetensorsError)) throw e;
          assert.ok(e.message.includes(p), e.message);
        }
      }),
      { numRuns: 500 },
    );
  });
});
