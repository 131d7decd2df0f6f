/** A plain LLaMA config from its dimensions, for synthetic models (tests, benchmarks) that have no config.json. */
import type { ModelConfig } from './types.ts';

export type ModelDims = Pick<ModelConfig, 'vocabSize' | 'hiddenSize' | 'intermediateSize' | 'numLayers' | 'numHeads' | 'numKvHeads' | 'headDim' | 'maxPositionEmbeddings'>;

/** No biases, no qk-norm, no sliding window, untied, fp32; `over` changes any field. */
export function llamaConfig(dims: ModelDims, over: Partial<ModelConfig> = {}): ModelConfig {
  return {
    family: 'llama',
    architecture: 'LlamaForCausalLM',
    vocabSize: dims.vocabSize,
    hiddenSize: dims.hiddenSize,
    intermediateSize: dims.intermediateSize,
    numLayers: dims.numLayers,
    numHeads: dims.numHeads,
    numKvHeads: dims.numKvHeads,
    headDim: dims.headDim,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    maxPositionEmbeddings: dims.maxPositionEmbeddings,
    tieWordEmbeddings: false,
    qkvBias: false,
    oBias: false,
    mlpBias: false,
    qkNorm: false,
    slidingWindow: null,
    torchDtype: 'float32',
    bosTokenId: 1,
    eosTokenId: 2,
    padTokenId: null,
    ...over,
  };
}
