/**
 * A run's configuration: the zod schemas that name every field in their messages, the defaults, and the helpers that
 * read an older run.json. Its own module so the request schemas (common/request-schemas.ts) can use it without a
 * runtime import of common/protocol.ts, which re-exports all of it.
 */
import { z } from 'zod';
import { LORA_TARGETS } from './lora-targets.ts';
export { LORA_TARGETS, type LoraTarget } from './lora-targets.ts';

export const DATASET_FORMATS = ['auto', 'text', 'prompt-completion', 'alpaca', 'sharegpt', 'messages', 'tokenized'] as const;
export type DatasetFormat = (typeof DATASET_FORMATS)[number];

export const LoraSettingsSchema = z.object({
  r: z.number({ message: 'rank must be a number' }).int('rank must be a whole number').min(1, 'rank must be at least 1').max(1024, 'rank must be at most 1024'),
  alpha: z.number({ message: 'alpha must be a number' }).positive('alpha must be greater than 0').max(1_000_000, 'alpha must be at most 1,000,000'),
  dropout: z.number({ message: 'dropout must be a number' }).min(0, 'dropout must be between 0 and 1').lt(1, 'dropout must be below 1'),
  targets: z
    .array(z.enum(LORA_TARGETS))
    .min(1, 'choose at least one target module')
    .refine((t) => new Set(t).size === t.length, 'a target module is listed twice'),
  rslora: z.boolean().default(false),
});
export type LoraSettings = z.infer<typeof LoraSettingsSchema>;

/**
 * How the frozen base weights are held while training and generating:
 * - 'f32' (default), 'f16': every frozen matrix as floats (f16 halves the memory; values rounded to f16);
 * - 'as-stored': a GGUF's linears stay in their ggml blocks when the type is q8_0, q4_0, q4_1, q4_k or q6_k (others
 *   are dequantized); a Hugging Face folder keeps its dtype (F16 stays f16, anything else f32);
 * - 'q8_0' … 'int4-g128': each linear is quantized to that format as it is read (QLoRA).
 * With a packed setting, embed_tokens and lm_head stay packed too — as the GGUF stores them when that is a packed type
 * (else f16), or quantized at load to q8_0 (they are the most sensitive matrices; f16 where a row is not whole
 * 32-blocks) — and norms and biases are f32.
 */
export const BASE_WEIGHTS = ['f32', 'f16', 'as-stored', 'q8_0', 'q4_0', 'q4_1', 'nf4', 'int4-g128'] as const;
export type BaseWeights = (typeof BASE_WEIGHTS)[number];
/** The formats a base can be quantized to at load. */
export const QUANTIZE_AT_LOAD_FORMATS = ['q8_0', 'q4_0', 'q4_1', 'nf4', 'int4-g128'] as const;

/** What a kept layer can be held as: floats, or a quantize-at-load format (usually q8_0 under a 4-bit base). */
export const KEEP_AS = ['f32', 'f16', ...QUANTIZE_AT_LOAD_FORMATS] as const;
export const BaseWeightsKeepSchema = z.object({
  layers: z
    .array(z.number({ message: 'a layer must be a number' }).int('a layer must be a whole number').min(0, 'layers count from 0'), { message: 'layers must be a list of layer numbers' })
    .min(1, 'name at least one layer to keep')
    .refine((l) => new Set(l).size === l.length, 'a layer is named twice'),
  as: z.enum(KEEP_AS, { message: `kept layers must be held as one of ${KEEP_AS.join(', ')}` }),
});
export type BaseWeightsKeep = z.infer<typeof BaseWeightsKeepSchema>;

/**
 * Kept layers as a person types them ("0, 1 29", the Train form and `--keep-layers`): numbers where they read as
 * numbers (so the schema's own words say "layers count from 0" for -1), the rest as typed (so it says "a layer must
 * be a number" for x).
 */
export function keepLayersFromText(text: string): (number | string)[] {
  return text
    .split(/[\s,]+/)
    .filter((x) => x !== '')
    .map((x) => (/^-?\d+(\.\d+)?$/.test(x) ? Number(x) : x));
}

export const TrainSettingsSchema = z.object({
  learningRate: z.number({ message: 'learning rate must be a number' }).positive('learning rate must be greater than 0').max(1, 'learning rate must be at most 1'),
  steps: z.number({ message: 'steps must be a number' }).int('steps must be a whole number').min(1, 'steps must be at least 1').max(10_000_000, 'steps must be at most 10,000,000'),
  batchSize: z.number({ message: 'batch size must be a number' }).int('batch size must be a whole number').min(1, 'batch size must be at least 1').max(4096, 'batch size must be at most 4096'),
  gradAccumulation: z.number({ message: 'gradient accumulation must be a number' }).int('gradient accumulation must be a whole number').min(1, 'gradient accumulation must be at least 1').max(4096, 'gradient accumulation must be at most 4096').default(1),
  maxSeqLen: z.number({ message: 'max sequence length must be a number' }).int('max sequence length must be a whole number').min(8, 'max sequence length must be at least 8').max(131072, 'max sequence length must be at most 131072'),
  warmupSteps: z.number({ message: 'warmup steps must be a number' }).int('warmup steps must be a whole number').min(0, 'warmup steps cannot be negative').max(10_000_000, 'warmup steps must be at most 10,000,000').default(0),
  schedule: z.enum(['constant', 'linear', 'cosine']).default('constant'),
  weightDecay: z.number({ message: 'weight decay must be a number' }).min(0, 'weight decay cannot be negative').max(10, 'weight decay must be at most 10').default(0),
  maxGradNorm: z.number({ message: 'max grad norm must be a number' }).min(0, 'max grad norm cannot be negative (0 turns clipping off)').default(1),
  seed: z.number({ message: 'seed must be a number' }).int('seed must be a whole number').min(0, 'seed cannot be negative').max(2 ** 32 - 1, 'seed must be below 4294967296').default(42),
  gradientCheckpointing: z.boolean().default(false),
  precision: z.enum(['fp32', 'fp16']).default('fp32'),
  checkpointEverySteps: z.number().int().min(0).default(0),
  /** Also write a checkpoint when this many minutes passed since the last one; 0 or absent: the studio setting. */
  checkpointEveryMinutes: z.number().min(0, 'checkpoint interval cannot be negative').optional(),
  validationPercent: z.number({ message: 'validation split must be a number' }).min(0, 'validation split cannot be negative').max(50, 'validation split must be at most 50 %').default(0),
  evalEverySteps: z.number({ message: 'evaluation interval must be a number' }).int('evaluation interval must be a whole number of steps').min(0, 'evaluation interval cannot be negative').default(0),
  /**
   * The older name of `baseWeights: 'f16'` (kept so run.json files written before baseWeights load as they trained).
   * Read both through baseWeightsOf.
   */
  frozenWeightsF16: z.boolean().default(false),
  /**
   * How the frozen base model is held while training (QLoRA when packed). Absent: 'f16' when frozenWeightsF16, else
   * 'f32'; when given it wins over frozenWeightsF16. See BASE_WEIGHTS. (No object-level refinement here: other
   * modules pick and extend this schema, which zod refuses on a refined object.)
   */
  baseWeights: z.enum(BASE_WEIGHTS, { message: `base weights must be one of ${BASE_WEIGHTS.join(', ')}` }).optional(),
  /**
   * A mixed plan: these decoder layers' seven linears are held as `as` instead of the quantize-at-load baseWeights
   * (the quantization lab's "keep at higher precision" suggestion). Only with a quantize-at-load baseWeights, and
   * layers the model has: engine/io/base-weights.ts refuses anything else naming this field.
   */
  baseWeightsKeep: BaseWeightsKeepSchema.optional(),
});
export type TrainSettings = z.infer<typeof TrainSettingsSchema>;

/** The base-weights setting of a run, old run.json files (frozenWeightsF16) included. */
export function baseWeightsOf(train: { baseWeights?: BaseWeights; frozenWeightsF16?: boolean }): BaseWeights {
  return train.baseWeights ?? (train.frozenWeightsF16 === true ? 'f16' : 'f32');
}

/** Whether the setting keeps the base model's linear weights packed (quantized): QLoRA. */
export function isPackedBase(b: BaseWeights): boolean {
  return b !== 'f32' && b !== 'f16';
}

export const TRAIN_ON = ['auto', 'completions', 'all'] as const;
/** What the loss is computed on: 'completions' = completions / assistant turns only; 'auto' = completions for chat and instruction data, everything for raw text. */
export type TrainOn = (typeof TRAIN_ON)[number];

/** How the dataset file becomes training examples. Absent in older configs: every field has its default. */
export const DataSettingsSchema = z.object({
  trainOn: z.enum(TRAIN_ON).default('auto'),
  /** 'fail': a broken record stops the run before it starts (file and line named); 'skip': broken records are left out and counted. */
  badRecords: z.enum(['fail', 'skip']).default('fail'),
  /** Several short examples per row of maxSeqLen tokens. */
  packing: z.boolean().default(false),
  /** A second file used whole as the validation split (instead of train.validationPercent). */
  validationPath: z.string().min(1, 'choose a validation file or leave it empty').optional(),
});
export type DataSettings = z.infer<typeof DataSettingsSchema>;

/** Most fixed evaluation prompts a run samples, and the longest one (characters). */
export const EVAL_PROMPTS_MAX = 8;
export const EVAL_PROMPT_MAX_CHARS = 2000;

/**
 * Fixed evaluation prompts (common/eval-prompts.ts): answered greedily with the current LoRA before the first step,
 * every `everySteps` steps and at the end, wrapped as the Playground wraps a prompt for this dataset's format. Absent:
 * none are sampled.
 */
export const EvalPromptsSchema = z.object({
  prompts: z
    .array(z.string({ message: 'an evaluation prompt must be text' }).max(EVAL_PROMPT_MAX_CHARS, `an evaluation prompt must be at most ${EVAL_PROMPT_MAX_CHARS} characters`).refine((t) => t.trim() !== '', 'an evaluation prompt is empty; type it or remove it'), { message: 'the evaluation prompts must be a list of texts' })
    .min(1, 'add at least one evaluation prompt, or turn them off')
    .max(EVAL_PROMPTS_MAX, `at most ${EVAL_PROMPTS_MAX} evaluation prompts`),
  everySteps: z.number({ message: 'must be a number' }).int('must be a whole number of steps').min(1, 'must be at least 1 step').max(1_000_000, 'must be at most 1 000 000 steps'),
  maxNewTokens: z.number({ message: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(512, 'must be at most 512'),
});
export type EvalPrompts = z.infer<typeof EvalPromptsSchema>;

/** One evaluation answer: prompt `index` of the run's evalPrompts, answered with the LoRA as it was after `step` steps. */
export const EvalSampleSchema = z.object({
  runId: z.string(),
  step: z.number().int().min(0),
  index: z.number().int().min(0),
  prompt: z.string(),
  answer: z.string(),
  tokens: z.number().int().min(0),
  stop: z.enum(['eos', 'length']),
});
export type EvalSample = z.infer<typeof EvalSampleSchema>;

export const RunConfigSchema = z.object({
  name: z.string({ message: 'the run name must be text' }).max(200, 'the run name must be at most 200 characters').optional(),
  modelPath: z.string({ message: 'choose a model folder' }).min(1, 'choose a model folder'),
  datasetPath: z.string({ message: 'choose a dataset file' }).min(1, 'choose a dataset file'),
  datasetFormat: z.enum(DATASET_FORMATS).default('auto'),
  backend: z.enum(['auto', 'cpu', 'webgpu']).default('cpu'),
  lora: LoraSettingsSchema,
  train: TrainSettingsSchema,
  data: DataSettingsSchema.optional(),
  evalPrompts: EvalPromptsSchema.optional(),
});
export type RunConfig = z.infer<typeof RunConfigSchema>;
export type RunConfigInput = z.input<typeof RunConfigSchema>;

/** One validation problem, with the dotted path of the field (e.g. `lora.r`). */
export const FieldErrorSchema = z.object({ field: z.string(), message: z.string() });
export type FieldError = z.infer<typeof FieldErrorSchema>;

/** Validate a run config; returns the typed config or the list of field errors. */
export function validateRunConfig(input: unknown): { ok: true; config: RunConfig } | { ok: false; errors: FieldError[] } {
  const parsed = RunConfigSchema.safeParse(input);
  if (parsed.success) return { ok: true, config: parsed.data };
  return {
    ok: false,
    errors: parsed.error.issues.map((i) => ({ field: i.path.join('.'), message: i.message })),
  };
}

export const DEFAULT_RUN_CONFIG: Omit<RunConfig, 'modelPath' | 'datasetPath'> = {
  datasetFormat: 'auto',
  backend: 'cpu',
  lora: { r: 8, alpha: 16, dropout: 0.05, targets: ['q_proj', 'v_proj'], rslora: false },
  train: {
    learningRate: 2e-3,
    steps: 40,
    batchSize: 4,
    gradAccumulation: 1,
    maxSeqLen: 128,
    warmupSteps: 0,
    schedule: 'constant',
    weightDecay: 0,
    maxGradNorm: 1,
    seed: 42,
    gradientCheckpointing: false,
    precision: 'fp32',
    checkpointEverySteps: 0,
    validationPercent: 0,
    evalEverySteps: 0,
    frozenWeightsF16: false,
  },
};
