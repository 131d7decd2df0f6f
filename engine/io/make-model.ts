/**
 * Writes a Hugging Face model folder with seeded random weights, for any supported family: config.json,
 * model.safetensors (or shards + model.safetensors.index.json) and, optionally, the tokenizer files of another
 * folder. Used by tests, benchmarks and the sample model; transformers' from_pretrained loads the result.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from '../model/types.ts';
import { writeFileAtomic } from './atomic.ts';
import { parseHfConfig } from './hf-config.ts';
import { expectedTensors } from './hf-model.ts';
import { tensorByteSize, writeSafetensors, type WriteTensor } from './safetensors.ts';

export interface RandomModelOptions {
  seed: number;
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Copy tokenizer.json, tokenizer_config.json, special_tokens_map.json and chat_template.jinja from this folder. */
  tokenizerFrom?: string;
  /** Split the weights into shards of at most about this many bytes (each shard holds at least one tensor). */
  shardBytes?: number;
  /** Standard deviation of linear, bias and embedding weights (default 0.02, transformers' initializer_range). */
  std?: number;
  /** Norm weights are 1 + N(0, normStd); 0 (default) gives all ones as transformers initialises them. */
  normStd?: number;
}

/** Deterministic normal samples: mulberry32 uniforms through Box–Muller. */
export function seededNormal(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const v = spare;
      spare = null;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const a = 2 * Math.PI * uniform();
    spare = r * Math.sin(a);
    return r * Math.cos(a);
  };
}

/** The tensors writeRandomModel writes, in file order, as F32 values (before any f16/bf16 rounding). */
export function randomWeights(config: ModelConfig, opts: Pick<RandomModelOptions, 'seed' | 'std' | 'normStd'>): { name: string; shape: number[]; data: Float32Array }[] {
  const normal = seededNormal(opts.seed);
  const std = opts.std ?? 0.02;
  const normStd = opts.normStd ?? 0;
  return expectedTensors(config).map(({ name, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isNorm = /(layernorm|_norm|\.norm)\.weight$/.test(name);
    if (isNorm) for (let i = 0; i < n; i++) data[i] = 1 + normStd * normal();
    else for (let i = 0; i < n; i++) data[i] = std * normal();
    return { name, shape, data };
  });
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja'];

/** Shard file name as transformers writes it. */
export function shardName(k: number, n: number): string {
  return `model-${String(k).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

/**
 * Writes `dir/config.json` (the given JSON as is) and seeded random weights matching it. Returns the parsed config.
 * The weights for a given (config, seed) are the same whatever dtype or sharding is chosen, up to rounding.
 */
export function writeRandomModel(dir: string, hfConfigJson: Record<string, unknown>, opts: RandomModelOptions): ModelConfig {
  const config = parseHfConfig(hfConfigJson, join(dir, 'config.json'));
  const dtype = opts.dtype ?? 'F32';
  mkdirSync(dir, { recursive: true });
  const tensors: WriteTensor[] = randomWeights(config, opts).map((t) => ({ name: t.name, dtype, shape: t.shape, data: t.data }));
  if (opts.shardBytes !== undefined && opts.shardBytes > 0) {
    const shards: WriteTensor[][] = [];
    let cur: WriteTensor[] = [];
    let curBytes = 0;
    for (const t of tensors) {
      const b = tensorByteSize(t.dtype, t.shape);
      if (cur.length > 0 && curBytes + b > opts.shardBytes) {
        shards.push(cur);
        cur = [];
        curBytes = 0;
      }
      cur.push(t);
      curBytes += b;
    }
    if (cur.length) shards.push(cur);
    const weightMap: Record<string, string> = {};
    let total = 0;
    shards.forEach((shard, i) => {
      const file = shardName(i + 1, shards.length);
      writeSafetensors(join(dir, file), shard);
      for (const t of shard) {
        weightMap[t.name] = file;
        total += tensorByteSize(t.dtype, t.shape);
      }
    });
    writeFileAtomic(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n');
  } else {
    writeSafetensors(join(dir, 'model.safetensors'), tensors);
  }
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify(hfConfigJson, null, 2) + '\n');
  if (opts.tokenizerFrom) {
    for (const f of TOKENIZER_FILES) {
      const src = join(opts.tokenizerFrom, f);
      if (existsSync(src)) copyFileSync(src, join(dir, f));
    }
  }
  return config;
}

/** A small config.json for a family, for tests and benchmarks; `overrides` replace or add fields. */
export function tinyHfConfig(family: 'llama' | 'mistral' | 'qwen2' | 'qwen3', overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const arch = { llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' }[family];
  return {
    architectures: [arch],
    model_type: family,
    vocab_size: 96,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 8,
    hidden_act: 'silu',
    max_position_embeddings: 256,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    bos_token_id: 1,
    eos_token_id: 2,
    ...(family === 'mistral' ? { sliding_window: null } : {}),
    ...overrides,
  };
}
