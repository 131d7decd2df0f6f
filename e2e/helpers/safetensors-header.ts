/**
 * A deliberately separate, minimal safetensors reader for the e2e: it checks the exported file against the format
 * itself (u64 LE header length, JSON header, offsets inside the data), not against our engine's reader.
 */
export interface TensorEntry {
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export function parseSafetensors(bytes: Uint8Array): { tensors: Map<string, TensorEntry>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new Error(`safetensors: ${bytes.length} bytes is too short for the header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (8 + headerLen > bytes.length) throw new Error(`safetensors: header length ${headerLen} runs past the file (${bytes.length} bytes)`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as Record<string, unknown>;
  const dataStart = 8 + headerLen;
  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = raw as Record<string, string>;
      continue;
    }
    const t = raw as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const [begin, end] = t.data_offsets;
    const width = DTYPE_BYTES[t.dtype];
    if (width === undefined) throw new Error(`safetensors: ${name} has unknown dtype ${t.dtype}`);
    const expected = t.shape.reduce((a, b) => a * b, 1) * width;
    if (end - begin !== expected) throw new Error(`safetensors: ${name} holds ${end - begin} bytes, dtype × shape needs ${expected}`);
    if (dataStart + end > bytes.length) throw new Error(`safetensors: ${name} ends past the file`);
    tensors.set(name, { dtype: t.dtype, shape: t.shape, data: bytes.subarray(dataStart + begin, dataStart + end) });
  }
  return { tensors, metadata };
}

export function f32Values(t: TensorEntry): Float32Array {
  if (t.dtype !== 'F32') throw new Error(`expected F32, got ${t.dtype}`);
  const copy = t.data.slice();
  return new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
}
