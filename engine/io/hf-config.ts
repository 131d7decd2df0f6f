/**
 * Hugging Face config.json → ModelConfig, with the defaults transformers (5.x) applies per family, and an error
 * naming the file and the field for everything the engine does not support.
 *
 * Both RoPE spellings are read: `rope_theta` + `rope_scaling` (transformers 4) and `rope_parameters` (5).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig, ModelFamily, RopeScaling } from '../model/types.ts';

export const SUPPORTED_ARCHITECTURES: Record<ModelFamily, string> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
};

/** What transformers' config classes default to when config.json leaves a field out. */
const FAMILY_DEFAULTS: Record<ModelFamily, { maxPositionEmbeddings: number; kvHeads: number | 'heads'; headDim: number | 'derived'; bos: number | null; eos: number | null }> = {
  llama: { maxPositionEmbeddings: 2048, kvHeads: 'heads', headDim: 'derived', bos: 1, eos: 2 },
  mistral: { maxPositionEmbeddings: 4096 * 32, kvHeads: 8, headDim: 'derived', bos: 1, eos: 2 },
  qwen2: { maxPositionEmbeddings: 32768, kvHeads: 32, headDim: 'derived', bos: null, eos: null },
  qwen3: { maxPositionEmbeddings: 32768, kvHeads: 32, headDim: 128, bos: null, eos: null },
};

/** A config.json problem; `field` is the JSON path of the offending field. */
export class HfConfigError extends Error {
  readonly file: string;
  readonly field: string | undefined;
  constructor(file: string, field: string | undefined, message: string) {
    super(field ? `${file}: \`${field}\` ${message}` : `${file}: ${message}`);
    this.name = 'HfConfigError';
    this.file = file;
    this.field = field;
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}


/**
 * Upper bounds for the size fields, far above any released model (Llama-3.1-405B: 126 layers, hidden 16384, vocab
 * 128256) but low enough that a damaged or hostile config.json fails here, before a loop or an allocation walks a
 * billion layers. The tensors actually present are checked against the config afterwards (hf-model.ts).
 */
const SIZE_LIMITS: Readonly<Record<string, number>> = {
  num_hidden_layers: 1024,
  hidden_size: 1 << 17,
  intermediate_size: 1 << 20,
  vocab_size: 1 << 24,
  num_attention_heads: 1024,
  num_key_value_heads: 1024,
  head_dim: 4096,
  max_position_embeddings: 1 << 24,
  original_max_position_embeddings: 1 << 24,
  sliding_window: 1 << 24,
};
class Reader {
  constructor(
    readonly file: string,
    readonly obj: Record<string, unknown>,
    readonly prefix = '',
  ) {}

  fail(field: string, message: string): never {
    throw new HfConfigError(this.file, this.prefix + field, message);
  }

  has(field: string): boolean {
    return this.obj[field] !== undefined;
  }

  /** Present and not null. */
  given(field: string): boolean {
    return this.obj[field] !== undefined && this.obj[field] !== null;
  }

  positiveInt(field: string, fallback?: number): number {
    const v = this.obj[field];
    if ((v === undefined || v === null) && fallback !== undefined) return fallback;
    if (v === undefined) this.fail(field, 'is missing (a positive integer is required)');
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) this.fail(field, `must be a positive integer, got ${JSON.stringify(v)}`);
    const max = SIZE_LIMITS[field];
    if (max !== undefined && v > max) this.fail(field, `(${v}) is larger than any real model's (at most ${max}); the file looks damaged`);
    return v;
  }

  nonNegativeInt(field: string, fallback: number): number {
    const v = this.obj[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(field, `must be a non-negative integer, got ${JSON.stringify(v)}`);
    return v;
  }

  positiveNumber(field: string, fallback?: number): number {
    const v = this.obj[field];
    if ((v === undefined || v === null) && fallback !== undefined) return fallback;
    if (v === undefined || v === null) this.fail(field, 'is missing (a positive number is required)');
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(field, `must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.obj[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') this.fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  string(field: string, fallback: string): string {
    const v = this.obj[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string') this.fail(field, `must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  tokenId(field: string, fallback: number | null): number | null {
    const v = this.obj[field];
    if (v === undefined) return fallback;
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.fail(field, `must be a token id (a non-negative integer) or null, got ${JSON.stringify(v)}`);
    return v;
  }

  tokenIds(field: string, fallback: number | null): number | number[] | null {
    const v = this.obj[field];
    if (Array.isArray(v)) {
      if (!v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) this.fail(field, `must be a token id or a list of token ids, got ${JSON.stringify(v)}`);
      return v as number[];
    }
    return this.tokenId(field, fallback);
  }
}

function parseFamily(r: Reader): ModelFamily {
  const v = r.obj.model_type;
  if (v === undefined) r.fail('model_type', `is missing (expected one of ${Object.keys(SUPPORTED_ARCHITECTURES).join(', ')})`);
  if (typeof v !== 'string' || !Object.prototype.hasOwnProperty.call(SUPPORTED_ARCHITECTURES, v)) {
    r.fail('model_type', `${JSON.stringify(v)} is not supported (supported: ${Object.keys(SUPPORTED_ARCHITECTURES).join(', ')})`);
  }
  return v as ModelFamily;
}

function parseArchitecture(r: Reader, family: ModelFamily): string {
  const v = r.obj.architectures;
  if (v === undefined || v === null) return SUPPORTED_ARCHITECTURES[family];
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string')) {
    r.fail('architectures', `must be a non-empty list of class names, got ${JSON.stringify(v)}`);
  }
  const supported = Object.values(SUPPORTED_ARCHITECTURES);
  const arch = (v as string[]).find((a) => supported.includes(a));
  if (!arch) r.fail('architectures', `${JSON.stringify(v)} is not supported (supported: ${supported.join(', ')})`);
  return arch;
}

function parseRope(r: Reader, maxPositionEmbeddings: number): { theta: number; scaling: RopeScaling | null } {
  // transformers 5 merges `rope_scaling` into `rope_parameters`; a config may carry either (or both, identical).
  const field = r.given('rope_parameters') ? 'rope_parameters' : 'rope_scaling';
  const raw = r.obj[field];
  if (raw !== undefined && raw !== null && !isObject(raw)) r.fail(field, `must be an object or null, got ${JSON.stringify(raw)}`);
  const params = new Reader(r.file, isObject(raw) ? raw : {}, `${field}.`);
  const topTheta = r.positiveNumber('rope_theta', 10000);
  const theta = params.positiveNumber('rope_theta', topTheta);
  const typeField = params.given('rope_type') ? 'rope_type' : 'type';
  const ropeType = params.string(typeField, 'default');
  const partialTop = r.given('partial_rotary_factor') ? r.positiveNumber('partial_rotary_factor') : 1;
  const partial = params.positiveNumber('partial_rotary_factor', partialTop);
  if (partial !== 1) params.fail('partial_rotary_factor', `${partial} is not supported (only 1.0, RoPE over the whole head)`);
  if (ropeType === 'default') return { theta, scaling: null };
  if (ropeType !== 'llama3') params.fail(typeField, `${JSON.stringify(ropeType)} is not supported (supported: "default", "llama3")`);
  const topOrig = r.given('original_max_position_embeddings') ? r.positiveInt('original_max_position_embeddings') : maxPositionEmbeddings;
  const scaling: RopeScaling = {
    ropeType: 'llama3',
    factor: params.positiveNumber('factor'),
    lowFreqFactor: params.positiveNumber('low_freq_factor'),
    highFreqFactor: params.positiveNumber('high_freq_factor'),
    originalMaxPositionEmbeddings: params.positiveInt('original_max_position_embeddings', topOrig),
  };
  if (scaling.highFreqFactor <= scaling.lowFreqFactor) {
    params.fail('high_freq_factor', `(${scaling.highFreqFactor}) must be greater than low_freq_factor (${scaling.lowFreqFactor})`);
  }
  return { theta, scaling };
}

/** Qwen2/Qwen3: a window applies only with use_sliding_window, and only to layers from max_window_layers on. */
function parseQwenSlidingWindow(r: Reader, numLayers: number): number | null {
  if (!r.bool('use_sliding_window', false)) return null;
  const window = r.obj.sliding_window === undefined ? 4096 : r.obj.sliding_window === null ? null : r.positiveInt('sliding_window');
  if (window === null) return null;
  // Which kinds of layer there are decides it; without layer_types, layers from max_window_layers on slide, which
  // the two numbers tell without a per-layer list.
  let hasFull: boolean;
  let hasSliding: boolean;
  if (r.given('layer_types')) {
    const v = r.obj.layer_types;
    if (!Array.isArray(v) || v.length !== numLayers || !v.every((x) => x === 'full_attention' || x === 'sliding_attention')) {
      r.fail('layer_types', `must list "full_attention" or "sliding_attention" for each of the ${numLayers} layers`);
    }
    hasFull = v.includes('full_attention');
    hasSliding = v.includes('sliding_attention');
  } else {
    const maxWindowLayers = r.nonNegativeInt('max_window_layers', 28);
    hasFull = maxWindowLayers > 0;
    hasSliding = maxWindowLayers < numLayers;
  }
  if (!hasSliding) return null;
  if (!hasFull) return window;
  r.fail(
    r.given('layer_types') ? 'layer_types' : 'max_window_layers',
    'mixes sliding-window and full-attention layers, which is not supported (use_sliding_window with max_window_layers between 1 and num_hidden_layers − 1)',
  );
}

/** Normalises a parsed config.json; `file` names it in errors. */
export function parseHfConfig(json: unknown, file = 'config.json'): ModelConfig {
  if (!isObject(json)) throw new HfConfigError(file, undefined, 'must be a JSON object');
  const r = new Reader(file, json);
  const family = parseFamily(r);
  const architecture = parseArchitecture(r, family);
  const defaults = FAMILY_DEFAULTS[family];

  const hiddenAct = r.string('hidden_act', 'silu');
  if (hiddenAct !== 'silu') r.fail('hidden_act', `${JSON.stringify(hiddenAct)} is not supported (only "silu")`);

  const vocabSize = r.positiveInt('vocab_size');
  const hiddenSize = r.positiveInt('hidden_size');
  const intermediateSize = r.positiveInt('intermediate_size');
  const numLayers = r.positiveInt('num_hidden_layers');
  const numHeads = r.positiveInt('num_attention_heads');
  const kvDefault = defaults.kvHeads === 'heads' ? numHeads : defaults.kvHeads;
  // An explicit null means "same as num_attention_heads" in every family; absent means the family default.
  const numKvHeads = r.obj.num_key_value_heads === null ? numHeads : r.positiveInt('num_key_value_heads', kvDefault);
  if (numHeads % numKvHeads !== 0) r.fail('num_key_value_heads', `(${numKvHeads}) must divide num_attention_heads (${numHeads})`);

  let headDim: number;
  if (r.given('head_dim')) headDim = r.positiveInt('head_dim');
  else if (defaults.headDim !== 'derived' && r.obj.head_dim === undefined) headDim = defaults.headDim;
  else {
    if (hiddenSize % numHeads !== 0) r.fail('hidden_size', `(${hiddenSize}) must be a multiple of num_attention_heads (${numHeads}) when head_dim is not given`);
    headDim = hiddenSize / numHeads;
  }
  if (headDim % 2 !== 0) r.fail('head_dim', `(${headDim}) must be even for rotary embeddings`);

  const maxPositionEmbeddings = r.positiveInt('max_position_embeddings', defaults.maxPositionEmbeddings);
  const rope = parseRope(r, maxPositionEmbeddings);

  const attentionBias = r.bool('attention_bias', false);
  let qkvBias = false;
  let oBias = false;
  let mlpBias = false;
  let slidingWindow: number | null = null;
  switch (family) {
    case 'llama':
      qkvBias = oBias = attentionBias;
      mlpBias = r.bool('mlp_bias', false);
      break;
    case 'mistral':
      // MistralAttention's projections have no bias whatever the config says; the window defaults to 4096.
      slidingWindow = r.obj.sliding_window === undefined ? 4096 : r.obj.sliding_window === null ? null : r.positiveInt('sliding_window');
      break;
    case 'qwen2':
      qkvBias = true;
      slidingWindow = parseQwenSlidingWindow(r, numLayers);
      break;
    case 'qwen3':
      qkvBias = oBias = attentionBias;
      slidingWindow = parseQwenSlidingWindow(r, numLayers);
      break;
  }

  return {
    family,
    architecture,
    vocabSize,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: r.positiveNumber('rms_norm_eps', 1e-6),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    maxPositionEmbeddings,
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    qkvBias,
    oBias,
    mlpBias,
    qkNorm: family === 'qwen3',
    slidingWindow,
    torchDtype: r.given('dtype') ? r.string('dtype', 'float32') : r.string('torch_dtype', 'float32'),
    bosTokenId: r.tokenId('bos_token_id', defaults.bos),
    eosTokenId: r.tokenIds('eos_token_id', defaults.eos),
    padTokenId: r.tokenId('pad_token_id', null),
  };
}

/** Reads and parses `<dir>/config.json`. */
export function readHfConfig(dir: string): ModelConfig {
  const file = join(dir, 'config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT') throw new HfConfigError(file, undefined, 'not found');
    throw new HfConfigError(file, undefined, `cannot be read (${e instanceof Error ? e.message : String(e)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new HfConfigError(file, undefined, `is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  return parseHfConfig(json, file);
}
