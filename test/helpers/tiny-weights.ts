/** Tiny random models of each family, built in memory from a seed, for numerical tests. */
import { forEachPair, newLora } from '../../engine/model/lora.ts';
import type { FloatArrayConstructor } from '../../engine/model/lora.ts';
import type { FloatArray, LayerWeights, Linear, LoraConfig, LoraWeights, ModelConfig, ModelFamily, ModelWeights, RopeScaling } from '../../engine/model/types.ts';
import { Rng } from '../../engine/util/rng.ts';

export interface TinyOptions {
  family: ModelFamily;
  vocab?: number;
  hidden?: number;
  intermediate?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  headDim?: number;
  tie?: boolean;
  ropeScaling?: RopeScaling | null;
  ropeTheta?: number;
  slidingWindow?: number | null;
  /** Defaults: qwen2 → true, others false. */
  qkvBias?: boolean;
  ArrayCtor?: FloatArrayConstructor;
  seed?: number;
}

export function tinyConfig(o: TinyOptions): ModelConfig {
  const hidden = o.hidden ?? 16;
  const heads = o.heads ?? 4;
  return {
    family: o.family,
    architecture: { llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' }[o.family],
    vocabSize: o.vocab ?? 23,
    hiddenSize: hidden,
    intermediateSize: o.intermediate ?? 24,
    numLayers: o.layers ?? 2,
    numHeads: heads,
    numKvHeads: o.kvHeads ?? 2,
    headDim: o.headDim ?? hidden / heads,
    rmsNormEps: 1e-6,
    ropeTheta: o.ropeTheta ?? 10000,
    ropeScaling: o.ropeScaling ?? null,
    maxPositionEmbeddings: 2048,
    tieWordEmbeddings: o.tie ?? false,
    qkvBias: o.qkvBias ?? o.family === 'qwen2',
    oBias: false,
    mlpBias: false,
    qkNorm: o.family === 'qwen3',
    slidingWindow: o.slidingWindow ?? null,
    torchDtype: 'float32',
    bosTokenId: 1,
    eosTokenId: 2,
    padTokenId: 0,
  };
}

export function randomArray(F: FloatArrayConstructor, n: number, rng: Rng, scale: number, offset = 0): FloatArray {
  const a = new F(n);
  for (let i = 0; i < n; i++) a[i] = offset + scale * rng.normal();
  return a;
}

function linear(F: FloatArrayConstructor, rng: Rng, out: number, inF: number, bias: boolean): Linear {
  return {
    weight: randomArray(F, out * inF, rng, 1 / Math.sqrt(inF)),
    bias: bias ? randomArray(F, out, rng, 0.1) : null,
    outFeatures: out,
    inFeatures: inF,
  };
}

/** Random weights: Linear entries ~ N(0, 1/in), norms ~ 1 + N(0, 0.1²), embeddings ~ N(0, 1). */
export function tinyWeights(o: TinyOptions): ModelWeights {
  const config = tinyConfig(o);
  const F = o.ArrayCtor ?? Float64Array;
  const rng = new Rng(o.seed ?? 1);
  const H = config.hiddenSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  const embedTokens = randomArray(F, config.vocabSize * H, rng, 1);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    layers.push({
      inputNorm: randomArray(F, H, rng, 0.1, 1),
      postAttentionNorm: randomArray(F, H, rng, 0.1, 1),
      q: linear(F, rng, qDim, H, config.qkvBias),
      k: linear(F, rng, kvDim, H, config.qkvBias),
      v: linear(F, rng, kvDim, H, config.qkvBias),
      o: linear(F, rng, H, qDim, config.oBias),
      qNorm: config.qkNorm ? randomArray(F, config.headDim, rng, 0.1, 1) : null,
      kNorm: config.qkNorm ? randomArray(F, config.headDim, rng, 0.1, 1) : null,
      gate: linear(F, rng, config.intermediateSize, H, config.mlpBias),
      up: linear(F, rng, config.intermediateSize, H, config.mlpBias),
      down: linear(F, rng, H, config.intermediateSize, config.mlpBias),
    });
  }
  const norm = randomArray(F, H, rng, 0.1, 1);
  const lmHead = config.tieWordEmbeddings ? embedTokens : randomArray(F, config.vocabSize * H, rng, 1 / Math.sqrt(H));
  return { config, embedTokens, layers, norm, lmHead };
}

/** A LoRA adapter with PEFT's A init and a random (non-zero) B, so that gradients w.r.t. A are non-zero too. */
export function randomLora(config: ModelConfig, lora: LoraConfig, seed: number, F: FloatArrayConstructor = Float64Array, bScale = 0.3): LoraWeights {
  const rng = new Rng(seed);
  const w = newLora(config, lora, rng, F);
  forEachPair(w, (_t, _l, p) => {
    for (let i = 0; i < p.B.length; i++) p.B[i] = bScale * rng.normal();
  });
  return w;
}
