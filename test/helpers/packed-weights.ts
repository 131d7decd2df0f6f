/** Random packed weights of every format for the cpu QLoRA tests, and a model's Linear weights packed in place. */
import { floatWeight } from '../../engine/model/weight-array.ts';
import type { Linear, ModelWeights } from '../../engine/model/types.ts';
import { f32ToF16Bits } from '../../engine/quant/half.ts';
import { packedSizeBytes, PackedWeight, type PackedFormat } from '../../engine/quant/packed-weight.ts';
import { Rng } from '../../engine/util/rng.ts';

/**
 * A random [rows, cols] weight in `f`: quantized from Gaussian values (scale `std`), or — for the K-quants, which the
 * studio reads but does not write — random blocks with finite fp16 super-block scales (as test/webgpu/packed-matmul
 * does; their dequantization is checked against the PyPI gguf package there and in test/quant/ggml-dequant.test.ts).
 */
export function randomPacked(f: PackedFormat, rows: number, cols: number, seed: number, std = 0.05): PackedWeight {
  const rng = new Rng(seed);
  if (f !== 'q4_k' && f !== 'q6_k') {
    const w = new Float32Array(rows * cols);
    for (let i = 0; i < w.length; i++) w[i] = std * rng.normal();
    return PackedWeight.quantize(f, w, rows, cols);
  }
  const bytes = new Uint8Array(packedSizeBytes(f, rows, cols));
  for (let i = 0; i < bytes.length; i++) bytes[i] = rng.nextU32() & 0xff;
  const setF16 = (off: number, v: number): void => {
    const h = f32ToF16Bits(v);
    bytes[off] = h & 0xff;
    bytes[off + 1] = h >>> 8;
  };
  // Scales sized so a weight is about std: q4_k values are up to 63·15·d, q6_k's up to 127·32·d.
  const blockBytes = f === 'q4_k' ? 144 : 210;
  for (let y = 0; y < bytes.length; y += blockBytes) {
    if (f === 'q4_k') {
      setF16(y, rng.normal() * std * 3e-3);
      setF16(y + 2, Math.abs(rng.normal()) * std * 3e-3);
    } else setF16(y + 208, rng.normal() * std * 1e-3);
  }
  return new PackedWeight(f, rows, cols, bytes);
}

/** Shapes per format: rows odd (tile edges), cols whole blocks and, where the format allows, odd. */
export function packedShape(f: PackedFormat): [number, number] {
  if (f === 'q4_k' || f === 'q6_k') return [37, 512];
  if (f === 'nf4' || f === 'int4-g128') return [37, 201];
  return [37, 96];
}

/** The seven Linears of every layer. */
export function linearsOf(m: ModelWeights): Linear[] {
  return m.layers.flatMap((L) => [L.q, L.k, L.v, L.o, L.gate, L.up, L.down]);
}

/**
 * Two views of one quantized base: `packed` with every Linear weight a PackedWeight of `f` (quantized from the f32
 * model; K-quants: random blocks of the weight's shape), and `dequantized`, the same model with those weights as the
 * f32 values PackedWeight.dequantize() gives. Embeddings, norms and lm_head are shared.
 */
export function packModel(model: ModelWeights, f: PackedFormat, seed = 1): { packed: ModelWeights; dequantized: ModelWeights } {
  let s = seed;
  const pack = (lin: Linear): { p: Linear; d: Linear } => {
    const w = floatWeight(lin.weight);
    const pw =
      f === 'q4_k' || f === 'q6_k' ? randomPacked(f, lin.outFeatures, lin.inFeatures, s++, 0.3) : PackedWeight.quantize(f, w instanceof Float32Array ? w : Float32Array.from(w), lin.outFeatures, lin.inFeatures);
    return { p: { ...lin, weight: pw }, d: { ...lin, weight: pw.dequantize() } };
  };
  const packedLayers = [];
  const deqLayers = [];
  for (const L of model.layers) {
    const q = pack(L.q), k = pack(L.k), v = pack(L.v), o = pack(L.o), gate = pack(L.gate), up = pack(L.up), down = pack(L.down);
    packedLayers.push({ ...L, q: q.p, k: k.p, v: v.p, o: o.p, gate: gate.p, up: up.p, down: down.p });
    deqLayers.push({ ...L, q: q.d, k: k.d, v: v.d, o: o.d, gate: gate.d, up: up.d, down: down.d });
  }
  return { packed: { ...model, layers: packedLayers }, dequantized: { ...model, layers: deqLayers } };
}
