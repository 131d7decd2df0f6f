/** Model shapes the benchmarks use: real dimensions, random weights. */
export interface BenchShape {
  hf: Record<string, unknown>;
  defaultSeq: number;
  defaultBatch: number;
  defaultSteps: number;
}

function llama(hidden: number, layers: number, heads: number, kvHeads: number, intermediate: number, vocab: number, tie: boolean): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: intermediate,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    hidden_act: 'silu',
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: tie,
    torch_dtype: 'float32',
    bos_token_id: 1,
    eos_token_id: 2,
  };
}

export const SHAPES = {
  // The sample model's shape (hidden 64, 2 layers, ~8k vocabulary).
  tiny: { hf: llama(64, 2, 4, 2, 176, 8016, false), defaultSeq: 128, defaultBatch: 4, defaultSteps: 5 },
  'smollm-135m': { hf: llama(576, 30, 9, 3, 1536, 49152, true), defaultSeq: 64, defaultBatch: 1, defaultSteps: 2 },
  'llama-1b': { hf: { ...llama(2048, 16, 32, 8, 8192, 128256, true), head_dim: 64 }, defaultSeq: 512, defaultBatch: 1, defaultSteps: 3 },
  'llama-7b': { hf: llama(4096, 32, 32, 32, 11008, 32000, false), defaultSeq: 2048, defaultBatch: 1, defaultSteps: 3 },
} satisfies Record<string, BenchShape>;

export type ShapeName = keyof typeof SHAPES;
