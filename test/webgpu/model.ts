/** Tiny random LLaMA-family models for the webgpu step tests (host Float32Array weights, as loadModel gives). */
import { llamaConfig } from '../../engine/model/llama-config.ts';
import { newLora } from '../../engine/model/lora.ts';
import type { Batch, FloatArray, LoraConfig, LoraWeights, ModelConfig, ModelWeights } from '../../engine/model/types.ts';
import { IGNORE_INDEX } from '../../engine/model/types.ts';
import { Rng } from '../../engine/util/rng.ts';

export function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return llamaConfig({ vocabSize: 61, hiddenSize: 32, intermediateSize: 40, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, maxPositionEmbeddings: 128 }, over);
}

function randn(rng: Rng, n: number, std: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * std;
  return a;
}

/**
 * Random weights. By default a fixed std (0.2 linears, 0.5 embeddings), which suits the tiny shapes; `fanIn` scales
 * them by 1/√in instead, as real models are, so wider shapes keep unit-sized activations and unsaturated softmaxes.
 */
export function randomModel(cfg: ModelConfig, seed: number, init: 'fixed' | 'fanIn' = 'fixed'): ModelWeights {
  const rng = new Rng(seed);
  const fan = (inF: number, fixed: number): number => (init === 'fanIn' ? 1.1 / Math.sqrt(inF) : fixed);
  const H = cfg.hiddenSize;
  const qDim = cfg.numHeads * cfg.headDim;
  const kvDim = cfg.numKvHeads * cfg.headDim;
  const lin = (out: number, inF: number, bias: boolean): { weight: FloatArray; bias: FloatArray | null; outFeatures: number; inFeatures: number } => ({
    weight: randn(rng, out * inF, fan(inF, 0.2)),
    bias: bias ? randn(rng, out, 0.1) : null,
    outFeatures: out,
    inFeatures: inF,
  });
  const norm = (n: number): Float32Array => Float32Array.from(randn(rng, n, 0.1), (v) => 1 + v);
  const embed = randn(rng, cfg.vocabSize * H, init === 'fanIn' ? 1 : 0.5);
  return {
    config: cfg,
    embedTokens: embed,
    layers: Array.from({ length: cfg.numLayers }, () => ({
      inputNorm: norm(H),
      postAttentionNorm: norm(H),
      q: lin(qDim, H, cfg.qkvBias),
      k: lin(kvDim, H, cfg.qkvBias),
      v: lin(kvDim, H, cfg.qkvBias),
      o: lin(H, qDim, cfg.oBias),
      qNorm: cfg.qkNorm ? norm(cfg.headDim) : null,
      kNorm: cfg.qkNorm ? norm(cfg.headDim) : null,
      gate: lin(cfg.intermediateSize, H, cfg.mlpBias),
      up: lin(cfg.intermediateSize, H, cfg.mlpBias),
      down: lin(H, cfg.intermediateSize, cfg.mlpBias),
    })),
    norm: norm(H),
    lmHead: cfg.tieWordEmbeddings ? embed : randn(rng, cfg.vocabSize * H, fan(H, 0.5)),
  };
}

/** PEFT-initialised adapter with B made non-zero, so dA (which is 0 while B = 0) is exercised too. */
export function randomLora(cfg: ModelConfig, lc: LoraConfig, seed: number): LoraWeights {
  const rng = new Rng(seed);
  const lora = newLora(cfg, lc, rng);
  for (const layer of lora.layers) for (const p of Object.values(layer)) if (p) for (let i = 0; i < p.B.length; i++) p.B[i] = rng.normal() * 0.2;
  return lora;
}

/** B sequences of T tokens; the first `prompt` labels of sequence 0 and the last `pad` of the last are −100. */
export function randomBatch(cfg: ModelConfig, B: number, T: number, seed: number, prompt = 3, pad = 2): Batch {
  const rng = new Rng(seed);
  const inputIds = Int32Array.from({ length: B * T }, () => rng.int(cfg.vocabSize));
  const labels = Int32Array.from(inputIds);
  for (let t = 0; t < prompt; t++) labels[t] = IGNORE_INDEX;
  for (let t = T - pad; t < T; t++) labels[(B - 1) * T + t] = IGNORE_INDEX;
  return { batchSize: B, seqLen: T, inputIds, labels };
}

export const ALL_TARGETS: LoraConfig['targets'] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
