/**
 * Benchmark: time to produce the full weight-metric report (every format, every decoder linear) for a model of a
 * given shape with random weights. `npm run bench` calls it with 'smollm-135m'; tests never run that size.
 */
import { llamaConfig } from '../model/llama-config.ts';
import type { ModelWeights } from '../model/types.ts';
import { QUANT_FORMAT_NAMES, type QuantFormatName } from './format.ts';
import { quantReport } from './report.ts';

export interface BenchShapeSpec {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
  vocabSize: number;
  tieWordEmbeddings: boolean;
}

export const BENCH_SHAPES: Readonly<Record<string, BenchShapeSpec>> = {
  'smollm-135m': { hiddenSize: 576, numLayers: 30, numHeads: 9, numKvHeads: 3, intermediateSize: 1536, vocabSize: 49152, tieWordEmbeddings: true },
  tiny: { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 192, vocabSize: 512, tieWordEmbeddings: false },
};

/** Random model of a shape; weights ≈ N(0, 0.02²) from a fast generator (the values do not change the timing). */
export function randomBenchModel(spec: BenchShapeSpec, seed = 1): ModelWeights {
  let s = seed >>> 0 || 1;
  const fill = (n: number, std: number, offset = 0): Float32Array => {
    const a = new Float32Array(n);
    const k = std * Math.sqrt(3) / 2 ** 31;
    for (let i = 0; i < n; i++) {
      // xorshift32, sum of two uniforms: a triangular distribution with the right variance is enough here
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      const u1 = s | 0;
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      a[i] = offset + (u1 + (s | 0)) * k * Math.SQRT1_2;
    }
    return a;
  };
  const headDim = spec.hiddenSize / spec.numHeads;
  const { vocabSize, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, tieWordEmbeddings } = spec;
  const config = llamaConfig({ vocabSize, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, maxPositionEmbeddings: 2048 }, { tieWordEmbeddings });
  const H = spec.hiddenSize;
  const I = spec.intermediateSize;
  const q = spec.numHeads * headDim;
  const kv = spec.numKvHeads * headDim;
  const lin = (out: number, inp: number): ModelWeights['layers'][number]['q'] => ({ weight: fill(out * inp, 0.02), bias: null, outFeatures: out, inFeatures: inp });
  const embed = fill(spec.vocabSize * H, 0.02);
  return {
    config,
    embedTokens: embed,
    layers: Array.from({ length: spec.numLayers }, () => ({
      inputNorm: fill(H, 0.05, 1),
      postAttentionNorm: fill(H, 0.05, 1),
      q: lin(q, H),
      k: lin(kv, H),
      v: lin(kv, H),
      o: lin(H, q),
      qNorm: null,
      kNorm: null,
      gate: lin(I, H),
      up: lin(I, H),
      down: lin(H, I),
    })),
    norm: fill(H, 0.05, 1),
    lmHead: spec.tieWordEmbeddings ? embed : fill(spec.vocabSize * H, 0.02),
  };
}

export interface WeightReportBench {
  shape: string;
  formats: string;
  linearParameters: number;
  /** Wall time of quantReport (weights only), seconds. */
  reportSeconds: number;
  /** Quantize + dequantize + metrics throughput over all formats, million weights per second. */
  mWeightsPerSecond: number;
  reportJsonMiB: number;
}

export async function benchWeightReport(shape: string | BenchShapeSpec, formats: readonly QuantFormatName[] = QUANT_FORMAT_NAMES): Promise<WeightReportBench> {
  const spec = typeof shape === 'string' ? BENCH_SHAPES[shape] : shape;
  if (!spec) throw new Error(`benchWeightReport: unknown shape '${String(shape)}' (known: ${Object.keys(BENCH_SHAPES).join(', ')})`);
  const model = randomBenchModel(spec);
  const t0 = performance.now();
  const report = await quantReport(model, formats);
  const seconds = (performance.now() - t0) / 1000;
  const json = JSON.stringify(report);
  return {
    shape: typeof shape === 'string' ? shape : 'custom',
    formats: formats.join(','),
    linearParameters: report.model.linearParameters,
    reportSeconds: seconds,
    mWeightsPerSecond: (report.model.linearParameters * formats.length) / seconds / 1e6,
    reportJsonMiB: json.length / 2 ** 20,
  };
}
