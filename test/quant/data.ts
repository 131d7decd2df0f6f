/** Test matrices for the quantization tests: random weights plus blocks built to hit the quantizers' edge cases. */
import { llamaConfig } from '../../engine/model/llama-config.ts';
import { Rng } from '../../engine/util/rng.ts';
import type { Linear, ModelConfig, ModelWeights } from '../../engine/model/types.ts';

/** [rows, cols] fp32 with rows of: gaussians at several scales, grid values (many exact ties), special blocks. */
export function edgeCaseMatrix(rows: number, cols: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const w = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      switch (r % 8) {
        case 0:
          w[i] = rng.normal() * 0.02;
          break;
        case 1:
          w[i] = rng.normal();
          break;
        case 2:
          // multiples of 1/8 in [-2, 2]: x/d lands exactly on .5 often
          w[i] = (rng.int(33) - 16) / 8;
          break;
        case 3:
          w[i] = rng.normal() * 1e-6; // scales in the fp16 subnormal range
          break;
        case 4:
          w[i] = c % 64 < 32 ? 0 : -Math.abs(rng.normal()); // an all-zero block, then an all-negative one
          break;
        case 5:
          w[i] = c % 32 === 5 ? -3 : c % 32 === 20 ? 3 : rng.uniformIn(-1, 1); // ±3 tie in magnitude, −3 first
          break;
        case 6:
          w[i] = c % 64 < 32 ? 0.25 : rng.normal() * 300; // a constant block, then large values
          break;
        default:
          w[i] = rng.uniformIn(0.5, 1.5); // all positive: min > 0
      }
    }
  }
  return w;
}

export function gaussianMatrix(rows: number, cols: number, seed: number, std = 1): Float32Array {
  const rng = new Rng(seed);
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < w.length; i++) w[i] = rng.normal() * std;
  return w;
}

export function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return llamaConfig({ vocabSize: 96, hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, maxPositionEmbeddings: 256 }, over);
}

/** A model with gaussian weights (std 0.05 for linears, 1 ± 0.1 for norms) of the given config. */
export function randomModel(config: ModelConfig, seed: number): ModelWeights {
  const rng = new Rng(seed);
  const mat = (n: number, std: number): Float32Array => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = rng.normal() * std;
    return a;
  };
  const lin = (out: number, inp: number): Linear => ({ weight: mat(out * inp, 0.05), bias: null, outFeatures: out, inFeatures: inp });
  const normW = (n: number): Float32Array => {
    const a = mat(n, 0.1);
    for (let i = 0; i < n; i++) a[i] += 1;
    return a;
  };
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim, vocabSize: V } = config;
  const embed = mat(V * H, 0.5);
  return {
    config,
    embedTokens: embed,
    layers: Array.from({ length: config.numLayers }, () => ({
      inputNorm: normW(H),
      postAttentionNorm: normW(H),
      q: lin(numHeads * headDim, H),
      k: lin(numKvHeads * headDim, H),
      v: lin(numKvHeads * headDim, H),
      o: lin(H, numHeads * headDim),
      qNorm: null,
      kNorm: null,
      gate: lin(I, H),
      up: lin(I, H),
      down: lin(H, I),
    })),
    norm: normW(H),
    lmHead: config.tieWordEmbeddings ? embed : mat(V * H, 0.05),
  };
}
