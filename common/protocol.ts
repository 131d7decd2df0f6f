/**
 * The one protocol module: every message between renderer, services and engine is typed here.
 *
 * - Renderer → services: `StudioRequests` (request/reply, by method name).
 * - Services → renderer: `StudioEvents` (pushed).
 * - Services ↔ engine worker: `EngineCommand` / `EngineEvent`.
 *
 * Runs anywhere (browser, Node, Electron): imports nothing but zod (and the plain report types next to it).
 */
import { z } from 'zod';
import type { BundleDropoutMode, BundleLaunch, BundleLauncher } from './bundle-launch.ts';
import type { QuantReport } from './quant-report.ts';
import type { ModelPullEnded, ModelPullProgress, ModelsPullParams } from './models-pull.ts';
import type { MergedExportParams, MergedExportResult } from './merged-export.ts';
import type { OllamaExportInfo } from './ollama-export.ts';
import type { AdapterDeleteResult, AdaptersDeleteParams, AdaptersRenameParams, RunDeleteResult, RunsDeleteParams, RunsUpdateParams } from './run-info.ts';
import { DEFAULT_HEALTH_THRESHOLDS, HealthThresholdsSchema, type HealthThresholds, type RunAlert } from './run-health.ts';

// ---------------------------------------------------------------------------------------------------------------
// Run configuration (validated with zod so every message names the field)
// ---------------------------------------------------------------------------------------------------------------

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
export interface EvalSample {
  runId: string;
  step: number;
  index: number;
  prompt: string;
  answer: string;
  tokens: number;
  stop: 'eos' | 'length';
}

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
export interface FieldError {
  field: string;
  message: string;
}

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

// ---------------------------------------------------------------------------------------------------------------
// Things the services know about
// ---------------------------------------------------------------------------------------------------------------

export type RunState =
  | 'pending'
  | 'validating'
  | 'queuing'
  | 'executing'
  | 'finalizing'
  | 'completed'
  | 'failed'
  | 'cancelled'
  | 'paused';

/** One training step as the engine measured it. */
const finiteMetric = z.number().finite();
/**
 * One training step's metrics: what the engine reports, the services store and push ('run.metrics'), and what an
 * exported bundle's train.py writes as one line of metrics.jsonl ('external.metrics' reads it with this schema).
 * JSON has no NaN: a step without target tokens is written with loss null and reads back as NaN.
 */
export const MetricPointSchema = z.object({
  step: z.number().int().min(1),
  loss: finiteMetric.nullable().transform((v) => v ?? Number.NaN),
  learningRate: finiteMetric,
  /** Non-ignored tokens trained on in this step. */
  tokens: z.number().min(0),
  tokensPerSecond: finiteMetric.min(0),
  elapsedMs: finiteMetric.min(0),
  gradNorm: finiteMetric,
  lossScale: finiteMetric.optional(),
  skipped: z.boolean().optional(),
  validationLoss: finiteMetric.optional(),
  /**
   * Resident set size, in bytes, of the process the engine runs in, at the end of the step. The engine is a
   * worker_thread of the studio, so this is the studio's whole footprint: on cpu it holds the training's weights,
   * activations and optimizer state. Reported on every backend (the 'memory-high' alert compares it with the
   * machine's memory); absent in points stored before it was measured.
   */
  rssBytes: finiteMetric.min(0).optional(),
  /**
   * webgpu only: bytes of device buffers the session's allocator holds at the end of the step (frozen weights,
   * activations, LoRA and AdamW state) — GPU memory, which the process's resident set does not show.
   */
  deviceBytes: finiteMetric.min(0).optional(),
});
export type MetricPoint = z.output<typeof MetricPointSchema>;

export interface RunSummary {
  id: string;
  /** Given at the start (config.name) or generated; renamed with 'runs.update'. */
  name: string;
  /** What the person wrote about the run ('runs.update'); '' when nothing. */
  notes?: string;
  /** Short labels the Runs list filters by ('runs.update'). */
  tags?: string[];
  state: RunState;
  config: RunConfig;
  createdAt: string;
  updatedAt: string;
  step: number;
  totalSteps: number;
  lastLoss: number | null;
  tokensPerSecond: number | null;
  /** Milliseconds left, estimated from the recent step time. */
  etaMs: number | null;
  error: string | null;
  adapterId: string | null;
  backend: string | null;
  /** Higher starts first among waiting runs (default 0). */
  priority?: number;
  /** What the run is queued on and counted against ('cpu', 'webgpu'). */
  device?: string;
  /** 1-based place among the runs waiting for the same device; null when not waiting. */
  queuePosition?: number | null;
  /** Times the run continued from a checkpoint (after a crash, a pause or a failure). */
  resumeCount?: number;
  /** Step of the newest checkpoint, null before the first one. */
  checkpointStep?: number | null;
  /** Folder of that checkpoint on the services' disk. */
  checkpointPath?: string | null;
  startedAt?: string | null;
  finishedAt?: string | null;
}

/** One line of a run's event log (engine logs, state changes, checkpoints), kept in the studio database. */
export interface RunEventInfo {
  id: number;
  runId: string;
  at: string;
  level: 'info' | 'warn' | 'error';
  /** The training step the event belongs to, when it belongs to one. */
  step: number | null;
  message: string;
}

/** A run's move from one state to another, with why. */
export interface RunStateChange {
  from: RunState | null;
  to: RunState;
  at: string;
  reason: string | null;
}

/** Studio-wide settings ('settings.get' / 'settings.set'), kept in the studio database. */
export const StudioSettingsSchema = z.object({
  /** Checkpoint every this many steps when the run itself says 0; 0 turns step checkpoints off. */
  checkpointEverySteps: z.number().int('a whole number of steps').min(0, 'cannot be negative').max(10_000_000),
  /** Also checkpoint when this many minutes passed since the last one; 0 turns it off. */
  checkpointEveryMinutes: z.number().min(0, 'cannot be negative').max(24 * 60, 'at most a day'),
  /** After a crash, resume runs that were executing from their last checkpoint when the studio starts. */
  autoResume: z.boolean(),
  /** Runs executing at once on one device (cpu, webgpu). */
  maxConcurrentRunsPerDevice: z.number().int('a whole number').min(1, 'at least 1').max(64, 'at most 64'),
  /** Serve Prometheus metrics on http://127.0.0.1:<port>/metrics; null: off. */
  prometheusPort: z.number().int('a whole port number').min(1, 'ports start at 1').max(65535, 'ports end at 65535').nullable(),
  /** A run fails when checking it takes longer (0: no limit). */
  validationTimeoutSeconds: z.number().min(0),
  /** A run fails when loading and its first step take longer (0: no limit). */
  startupTimeoutMinutes: z.number().min(0),
  /** A run fails when no step finishes for this long (the watchdog; 0: no limit). */
  stepTimeoutMinutes: z.number().min(0),
  /** Threads of the cpu backend (its big products are split over them); null: the machine's cores, at most 8. */
  cpuThreads: z.number().int('a whole number of threads').min(1, 'at least 1').max(256, 'at most 256').nullable(),
  /** Training-health alerts: on/off, their thresholds, and whether they also notify (common/run-health.ts). */
  healthAlerts: HealthThresholdsSchema,
});
export type StudioSettings = z.infer<typeof StudioSettingsSchema>;

export const DEFAULT_STUDIO_SETTINGS: StudioSettings = {
  checkpointEverySteps: 50,
  checkpointEveryMinutes: 10,
  autoResume: true,
  maxConcurrentRunsPerDevice: 1,
  prometheusPort: null,
  validationTimeoutSeconds: 300,
  startupTimeoutMinutes: 30,
  stepTimeoutMinutes: 30,
  cpuThreads: null,
  healthAlerts: DEFAULT_HEALTH_THRESHOLDS,
};

/** Bytes a run will need at its peak, by part ('runs.estimateMemory'; engine/train/memory-estimate.ts). */
export interface MemoryEstimateInfo {
  backend: 'cpu' | 'webgpu';
  tokensPerMicroBatch: number;
  parameters: { base: number; trainable: number };
  weights: number;
  lora: number;
  gradients: number;
  optimizer: number;
  data: number;
  activations: number;
  activationsWithoutCheckpointing: number;
  activationsWithCheckpointing: number;
  logitsChunk: number;
  total: number;
  totalWithoutCheckpointing: number;
  totalWithCheckpointing: number;
}

/** A compute backend as this machine has it ('backends.probe'). */
export interface BackendInfo {
  id: 'cpu' | 'webgpu';
  available: boolean;
  /** What it runs on: the WebGPU adapter's name, or 'CPU'; null when unavailable. */
  name: string | null;
  /** Why it is unavailable, or why `auto` passes it over (a software adapter); null otherwise. */
  reason: string | null;
  /** A CPU rasteriser (llvmpipe, SwiftShader…): usable when chosen explicitly, never picked by `auto`. */
  software?: boolean;
}

export interface AdapterSummary {
  id: string;
  name: string;
  runId: string | null;
  createdAt: string;
  baseModel: string;
  r: number;
  alpha: number;
  targets: string[];
  /** Folder on the services' disk holding adapter_config.json + adapter_model.safetensors. */
  path: string;
  sizeBytes: number;
  /** Imported adapters ('adapters.import', an external run): where the folder came from. */
  importedFrom?: string;
}

export interface ModelSummary {
  path: string;
  name: string;
  architecture: string;
  modelType: string;
  hiddenSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocabSize: number;
  parameters: number;
  dtype: string;
  hasTokenizer: boolean;
  hasChatTemplate: boolean;
  /** 'gguf' for a GGUF file (llama.cpp, Ollama, LM Studio), 'hf' (or absent) for a Hugging Face folder. */
  format?: 'hf' | 'gguf';
  /** Bytes on disk (the GGUF file, or the folder's weights). */
  sizeBytes?: number;
}

/** Where models already on the machine are kept (engine/io/model-discovery.ts). */
export type ModelStoreKind = 'hf-cache' | 'ollama' | 'lmstudio';

/** A model found in a store: `path` is what the model field takes (a snapshot folder, a GGUF file or Ollama blob). */
export interface LocalModel {
  store: ModelStoreKind;
  /** As the store names it: "org/name" (HF cache), "llama3.2:latest" (Ollama), "publisher/repo/file.gguf" (LM Studio). */
  name: string;
  path: string;
  format: 'hf' | 'gguf';
  /** Bytes on disk (the GGUF file, or every file of the snapshot). */
  sizeBytes: number;
  /** Hugging Face class name (LlamaForCausalLM…) when the model could be read, else null. */
  architecture: string | null;
  /** GGUF: the type most bytes are stored in (Q4_K, Q8_0…); HF: the stored dtype (bfloat16…). */
  quantization: string | null;
  parameters: number | null;
  /** Why the studio cannot train it (naming the file and what is wrong); absent when it can. */
  problem?: string;
  /** HF cache: the snapshot's commit. */
  revision?: string;
}

export interface LocalModelsInfo {
  models: LocalModel[];
  /** Every folder that was looked in, and whether it exists. */
  searched: { store: ModelStoreKind; dir: string; exists: boolean }[];
}

export interface DatasetSummary {
  path: string;
  format: Exclude<DatasetFormat, 'auto'>;
  records: number;
  badRecords: { line: number; message: string }[];
  /** Present when a model was given: token count per example. */
  tokenLengths?: number[];
  truncated?: number;
  preview: { text: string; trainedSpans: [number, number][] }[];
  /** All bad records (badRecords lists at most the first 1000). */
  badRecordCount?: number;
  /** The max sequence length the truncation count and histogram cut-off refer to. */
  maxSeqLen?: number;
  /** Statistics of tokenLengths. */
  tokenStats?: { count: number; min: number; max: number; mean: number; median: number; p95: number; total: number };
  /** Token-length histogram: counts[i] examples have a length in [edges[i], edges[i+1]). */
  histogram?: { edges: number[]; counts: number[] };
  /** What rendered chat records: 'model' (its own chat_template) or a built-in template name; absent for non-chat data. */
  chatTemplate?: string;
}

/** A problem the UI shows next to the thing it is about. */
export interface StudioErrorInfo {
  message: string;
  /** Field of the request the problem is about (e.g. `modelPath`, `lora.r`). */
  field?: string;
  /** File and line the problem is in, when it comes from a file. */
  file?: string;
  line?: number;
  fieldErrors?: FieldError[];
}

// ---------------------------------------------------------------------------------------------------------------
// Export for a cluster (an Accelerate + PEFT bundle), external runs, imported adapters
// ---------------------------------------------------------------------------------------------------------------

export const BUNDLE_INCLUDE_MODEL = ['auto', 'always', 'never'] as const;
/** Copy the base model into the bundle: 'auto' when it is small (≤ 64 MiB), or always, or never. */
export type BundleIncludeModel = (typeof BUNDLE_INCLUDE_MODEL)[number];

/** A bundle written by 'runs.exportBundle' (engine/export/bundle.ts). */
export interface BundleSummary {
  /** The bundle folder on the services' disk. */
  path: string;
  bundleId: string;
  name: string;
  steps: number;
  trainExamples: number;
  validationExamples: number;
  targetTokens: number;
  /** Whether the base model was copied into the bundle (model/). */
  modelIncluded: boolean;
  /** Every file, relative to the bundle folder. */
  files: string[];
  /** The launch command as chosen at export (default 8 GPUs, DDP), from the bundle folder; the README lists the others. */
  launch: string;
  chosenLaunch: BundleLaunch;
}

/** waiting: nothing written yet; running; completed (the adapter is there); failed (status.json says why). */
export type ExternalRunState = 'waiting' | 'running' | 'completed' | 'failed';

/** A run outside the studio (an exported bundle's output folder) that the studio follows. */
export interface ExternalRunSummary {
  id: string;
  name: string;
  /** The followed output folder (metrics.jsonl, status.json, adapter/). */
  path: string;
  /** The bundle the folder belongs to, when its bundle.json is next to it. */
  bundlePath: string | null;
  /** The studio run the bundle was exported from. */
  sourceRunId: string | null;
  state: ExternalRunState;
  step: number;
  totalSteps: number | null;
  lastLoss: number | null;
  validationLoss: number | null;
  tokensPerSecond: number | null;
  /** Processes, how accelerate ran them (MULTI_GPU, DEEPSPEED, FSDP, MULTI_CPU, NO), precision, dropout masks. */
  worldSize: number | null;
  distributedType: string | null;
  mixedPrecision: string | null;
  dropoutMasks: string | null;
  zeroStage: number | null;
  error: string | null;
  startedAt: string | null;
  /** The run's last sign of life (status.json or metrics.jsonl). */
  updatedAt: string | null;
  followedAt: string;
  /** The run completed and output/adapter is a PEFT adapter folder. */
  adapterReady: boolean;
  /** The Adapters entry it was imported as. */
  adapterId: string | null;
  /** Import the adapter by itself when the run completes. */
  autoImport: boolean;
  importError: StudioErrorInfo | null;
  /** Lines of metrics.jsonl that could not be read (first few). */
  problems: string[];
}

/** An adapter folder brought into the Adapters list ('adapters.import', 'external.importAdapter'). */
export interface AdapterImportResult {
  adapter: AdapterSummary;
  /** Things the user should know that did not stop the import (e.g. the base model is not on this machine). */
  warnings: string[];
}

// ---------------------------------------------------------------------------------------------------------------
// Quantization lab
// ---------------------------------------------------------------------------------------------------------------

export const QUANT_ADAPTER_MODES = ['merged', 'on-quantized'] as const;
/** merged: quantize W + s·BA; on-quantized: keep the adapter in fp32 on top of the quantized base. */
export type QuantAdapterMode = (typeof QUANT_ADAPTER_MODES)[number];

export interface QuantFormatInfo {
  /** Registry key: f16, int8, int4-g128, nf4, q8_0, q4_0, q4_1. */
  name: string;
  label: string;
  bitsPerWeight: number;
  /** The format can be written to a GGUF file (`lora-studio quantize`). */
  gguf: boolean;
}

/** What one lab job measures. */
export interface QuantJobRequest {
  modelPath: string;
  /** A PEFT adapter folder (an Adapters entry's path). */
  adapterPath?: string;
  /** Format names from 'quant.formats'. */
  formats: string[];
  /** With an adapter: which ways to combine it with the quantized base (both when absent). */
  adapterModes?: QuantAdapterMode[];
  /** Calibration text for the behaviour metrics; without it (and without useSampleCalib) only weights are measured. */
  calibPath?: string;
  useSampleCalib?: boolean;
  /** Calibration tokens in all (default 512) and per sequence (default 128). */
  calibTokens?: number;
  calibSeqLen?: number;
  /** Replace the automatic flagging: absolute relative-error and KL thresholds, or k in k × median. */
  thresholds?: { relErr?: number; kl?: number; multiplier?: number };
}

export type QuantJobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface QuantProgress {
  jobId: string;
  phase: 'loading' | 'weights' | 'calibration';
  /** Steps of this phase. */
  done: number;
  total: number;
  /** Format (report key) being measured; '' while loading. */
  format: string;
  /** Whole job, 0..1. */
  fraction: number;
}

export interface QuantJobSummary {
  id: string;
  state: QuantJobState;
  request: QuantJobRequest;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  progress: QuantProgress | null;
  error: StudioErrorInfo | null;
}

// ---------------------------------------------------------------------------------------------------------------
// Playground: try a model, with or without an adapter, on a prompt
// ---------------------------------------------------------------------------------------------------------------

/**
 * How the prompt is wrapped before tokenizing, to match how the adapter was trained: 'raw' as typed (with the
 * tokenizer's BOS), 'alpaca' in the Stanford Alpaca prompt (Alpaca datasets), 'chat' as one user turn through the chat
 * template with the generation prompt (chat datasets).
 */
export const PROMPT_FORMATS = ['raw', 'alpaca', 'chat'] as const;
/** The engine's built-in chat templates (engine/data/chat-template.ts), for a model without its own. */
export const BUILTIN_CHAT_TEMPLATE_NAMES = ['llama3', 'chatml', 'mistral'] as const;
export type PromptFormat = (typeof PROMPT_FORMATS)[number];

export interface PlaygroundRequest {
  modelPath: string;
  /** A PEFT adapter folder; absent = the base model alone. */
  adapterPath?: string;
  /** With an adapter: also answer with the base model (same settings and seed), to compare. */
  compareBase?: boolean;
  /** With an adapter: also answer with this second adapter folder (same base model, prompt, settings and seed), side by side. */
  compareAdapterPath?: string;
  prompt: string;
  promptFormat: PromptFormat;
  /** Chat: a built-in template name (as a run's data.chatTemplate) instead of the model's own. */
  chatTemplate?: string;
  /** Chat: a system message before the user turn; Alpaca: replaces the preamble. */
  system?: string;
  /** Chat: the conversation so far (user and assistant turns, oldest first); the prompt is the next user turn. */
  history?: PlaygroundTurn[];
  maxNewTokens: number;
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  seed: number;
  backend: 'auto' | 'cpu' | 'webgpu';
}

/** 'adapter': adapterPath's answer; 'compare': compareAdapterPath's; 'base': the base model alone. */
export type PlaygroundVariant = 'adapter' | 'compare' | 'base';

export interface PlaygroundTurn {
  role: 'user' | 'assistant';
  content: string;
}

/** A job has started generating: the prompt as the model reads it, and where it runs. */
export interface PlaygroundStarted {
  jobId: string;
  /** Backend that runs it ('cpu', or 'webgpu' with the adapter's name). */
  backend: string;
  /** The formatted prompt, special tokens included, decoded back from its ids. */
  promptText: string;
  promptTokens: number;
  variants: PlaygroundVariant[];
}

export interface PlaygroundOutput {
  jobId: string;
  variant: PlaygroundVariant;
  /** Everything generated so far (prompt excluded, special tokens skipped). */
  text: string;
  tokens: number;
  /**
   * Decode speed: tokens after the first per second since the first came (the first token comes out of the prompt's
   * prefill, whose time is prefillMs); null until a second token exists.
   */
  tokensPerSecond: number | null;
  /** Milliseconds from the start to the first token: the prompt's prefill (and that token's sampling); null before it. */
  prefillMs: number | null;
  /** Set on the variant's last update: why it stopped. */
  stop: 'eos' | 'length' | 'cancelled' | null;
}

export interface PlaygroundEnded {
  jobId: string;
  cancelled: boolean;
  error: StudioErrorInfo | null;
}

// ---------------------------------------------------------------------------------------------------------------
// Renderer → services
// ---------------------------------------------------------------------------------------------------------------

export interface StudioRequests {
  'app.info': { params: Record<string, never>; result: { version: string; home: string; host: 'electron' | 'web'; backends: string[] } };
  'models.sample': { params: Record<string, never>; result: ModelSummary };
  'models.inspect': { params: { path: string }; result: ModelSummary };
  /** Models already on this machine: the Hugging Face cache, Ollama's store, LM Studio's models folder. */
  'models.discover': { params: Record<string, never>; result: LocalModelsInfo };
  /** Starts a Hugging Face download into the HF cache (common/models-pull.ts); progress as 'models.pullProgress', the end as 'models.pullEnded'. */
  'models.pull': { params: ModelsPullParams; result: { jobId: string } };
  /** Stops a download; its part stays as .incomplete for the next pull to resume. False when it had already ended. */
  'models.pullCancel': { params: { jobId: string }; result: { cancelled: boolean } };
  'datasets.sample': { params: Record<string, never>; result: DatasetSummary };
  'datasets.inspect': { params: { path: string; modelPath?: string; format?: DatasetFormat; maxSeqLen?: number; trainOn?: TrainOn }; result: DatasetSummary };
  /** Browser only: the file's content travels in the request and is stored under the studio home. */
  'datasets.upload': { params: { fileName: string; content: string }; result: DatasetSummary };
  'runs.start': { params: { config: RunConfigInput; priority?: number }; result: RunSummary };
  'runs.list': { params: Record<string, never>; result: RunSummary[] };
  'runs.get': { params: { id: string }; result: RunSummary };
  'runs.metrics': { params: { id: string; afterStep?: number }; result: MetricPoint[] };
  'runs.cancel': { params: { id: string }; result: RunSummary };
  /** A waiting run is held; an executing one writes a checkpoint and stops. 'runs.resume' continues it. */
  'runs.pause': { params: { id: string }; result: RunSummary };
  /** A paused or failed run waits for its turn again and continues from its last checkpoint. */
  'runs.resume': { params: { id: string }; result: RunSummary };
  /** An executing run stops at the next step and its adapter is kept as it is then (the run completes early). */
  'runs.stopAndSave': { params: { id: string }; result: RunSummary };
  'runs.setPriority': { params: { id: string; priority: number }; result: RunSummary };
  /** Renames a run, or changes its notes or tags (common/run-info.ts RunsUpdateParamsSchema); any state. */
  'runs.update': { params: RunsUpdateParams; result: RunSummary };
  /**
   * Removes a run that is not going (completed, failed, cancelled, paused): its folder and its database rows; the
   * others are refused with their state. With dryRun, only says what would be freed. Others see 'run.removed'.
   */
  'runs.delete': { params: RunsDeleteParams; result: RunDeleteResult };
  /** The run's event log after event id `afterId` (0: from the start), oldest first. */
  'runs.events': { params: { id: string; afterId?: number }; result: RunEventInfo[] };
  'runs.history': { params: { id: string }; result: RunStateChange[] };
  /** The run's evaluation answers (config.evalPrompts), by step then prompt; after `afterStep` when given. */
  'runs.evalSamples': { params: { id: string; afterStep?: number }; result: EvalSample[] };
  /** Peak memory of a run with these settings, before it starts; plus what this machine has. */
  'runs.estimateMemory': {
    params: { modelPath: string; lora: z.input<typeof LoraSettingsSchema>; train: z.input<typeof TrainSettingsSchema>; backend?: 'cpu' | 'webgpu' };
    result: { estimate: MemoryEstimateInfo; systemMemoryBytes: number; freeMemoryBytes: number };
  };
  /**
   * "Export for a cluster": the run as a folder Accelerate + PEFT train exactly as the studio would (train.py, the
   * prepared data and step plan, the initial adapter, launch configurations). Written into `destination` (a folder
   * on the services' disk) under a new sub-folder, else under the studio home's bundles/.
   */
  'runs.exportBundle': {
    params: { id: string; destination?: string; includeModel?: BundleIncludeModel; launcher?: BundleLauncher; processes?: number; dropout?: BundleDropoutMode };
    result: BundleSummary;
  };
  /** Follows an external run: a bundle's output folder (or the bundle folder itself); its points come as 'external.metrics'. */
  'external.follow': { params: { path: string; autoImport?: boolean }; result: ExternalRunSummary };
  'external.list': { params: Record<string, never>; result: ExternalRunSummary[] };
  'external.metrics': { params: { id: string; afterStep?: number }; result: MetricPoint[] };
  /** Stops following (nothing on disk is touched). */
  'external.unfollow': { params: { id: string }; result: { id: string } };
  /** Imports a completed external run's adapter into the Adapters list, checked against the bundle's base model. */
  'external.importAdapter': { params: { id: string; name?: string }; result: AdapterImportResult };
  'settings.get': { params: Record<string, never>; result: StudioSettings };
  /** Changes some settings (some of the alert thresholds too: the others stay); the answer is all of them. */
  'settings.set': { params: Partial<Omit<StudioSettings, 'healthAlerts'>> & { healthAlerts?: Partial<HealthThresholds> }; result: StudioSettings };
  'adapters.list': { params: Record<string, never>; result: AdapterSummary[] };
  /** Copy an adapter folder to a destination folder the user chose (Save as…). */
  'adapters.saveAs': { params: { id: string; destination: string }; result: { path: string } };
  /**
   * Writes the adapter as a GGUF LoRA file (llama.cpp --lora, Ollama ADAPTER) into its folder, so dragging or saving
   * the folder carries it; the base model's folder must still be where the adapter says.
   */
  'adapters.exportGguf': { params: { id: string; dtype?: 'f32' | 'f16' }; result: { path: string; bytes: number } };
  /** "Export for Ollama": adapter.gguf + a Modelfile (FROM the base, ADAPTER, TEMPLATE/stop) in the adapter's ollama/ folder or `destination`. */
  'adapters.exportOllama': { params: { id: string; destination?: string }; result: OllamaExportInfo };
  /** "Export merged…": the adapter merged into its base, written as a Hugging Face folder or a GGUF into a new folder. */
  'adapters.exportMerged': { params: MergedExportParams; result: MergedExportResult };
  /**
   * Brings a PEFT LoRA adapter folder (a path, a Hugging Face hub cache folder, or a hub id found in the local cache)
   * into the Adapters list. It is checked against its base model (modelPath, else its base_model_name_or_path when
   * that is on this machine): layers, shapes and target modules must fit, else the refusal says what does not.
   */
  'adapters.import': { params: { path: string; modelPath?: string; name?: string }; result: AdapterImportResult };
  /** Removes an adapter's folder and its database row (dryRun: only measures it); the list comes as 'adapters.changed'. */
  'adapters.delete': { params: AdaptersDeleteParams; result: AdapterDeleteResult };
  /** A new display name for an adapter (common/run-info.ts AdaptersRenameParamsSchema); others see 'adapters.changed'. */
  'adapters.rename': { params: AdaptersRenameParams; result: AdapterSummary };
  /** Electron only: start a native drag of the adapter folder. */
  'adapters.startDrag': { params: { id: string }; result: { path: string } };
  /** Electron only: native pickers. */
  'dialog.pickFolder': { params: { title?: string }; result: { path: string | null } };
  'dialog.pickFile': { params: { title?: string; extensions?: string[] }; result: { path: string | null } };
  'quant.formats': { params: Record<string, never>; result: QuantFormatInfo[] };
  /** The backends of this machine and what `auto` resolves to (probed once, in a worker; `refresh` probes again). */
  'backends.probe': { params: { refresh?: boolean }; result: { auto: BackendInfo['id']; backends: BackendInfo[] } };
  /** Queue a lab job (one runs at a time); progress arrives as 'quant.progress', the end as 'quant.done' / 'quant.failed'. */
  'quant.start': { params: QuantJobRequest; result: { jobId: string; job: QuantJobSummary } };
  'quant.cancel': { params: { jobId: string }; result: QuantJobSummary };
  /** The job and, once done, its report. */
  'quant.get': { params: { jobId: string }; result: { job: QuantJobSummary; report: QuantReport | null } };
  /** Every lab job this studio knows, newest first: this session's, and the finished ones stored on disk. */
  'quant.list': { params: Record<string, never>; result: QuantJobSummary[] };
  /**
   * Generate from a prompt in a worker. A new job stops the one running. Text streams as 'generate.output', the end
   * is 'generate.ended'; problems the request shows at once (paths, fields) are refused here.
   */
  'generate.start': { params: PlaygroundRequest; result: { jobId: string } };
  /** Stops a job at its next token; false when it had already ended. */
  'generate.cancel': { params: { jobId: string }; result: { cancelled: boolean } };
}

export type StudioMethod = keyof StudioRequests;
export type StudioParams<M extends StudioMethod> = StudioRequests[M]['params'];
export type StudioResult<M extends StudioMethod> = StudioRequests[M]['result'];

/** Every method, so hosts can prove they handle all of them. */
export const STUDIO_METHODS = [
  'app.info',
  'models.sample',
  'models.inspect',
  'models.discover',
  'models.pull',
  'models.pullCancel',
  'datasets.sample',
  'datasets.inspect',
  'datasets.upload',
  'runs.start',
  'runs.list',
  'runs.get',
  'runs.metrics',
  'runs.cancel',
  'adapters.list',
  'adapters.saveAs',
  'adapters.startDrag',
  'adapters.exportGguf',
  'adapters.exportOllama',
  'adapters.exportMerged',
  'dialog.pickFolder',
  'dialog.pickFile',
  'quant.formats',
  'quant.start',
  'quant.cancel',
  'quant.get',
  'quant.list',
  'backends.probe',
  'runs.pause',
  'runs.resume',
  'runs.stopAndSave',
  'runs.setPriority',
  'runs.events',
  'runs.history',
  'runs.estimateMemory',
  'settings.get',
  'settings.set',
  'generate.start',
  'generate.cancel',
  'adapters.import',
  'runs.exportBundle',
  'external.follow',
  'external.list',
  'external.metrics',
  'external.unfollow',
  'external.importAdapter',
  'runs.update',
  'runs.delete',
  'adapters.delete',
  'adapters.rename',
  'runs.evalSamples',
] as const satisfies readonly StudioMethod[];

// Compile-time proof that STUDIO_METHODS lists every method.
type _MissingMethods = Exclude<StudioMethod, (typeof STUDIO_METHODS)[number]>;
const _allMethodsListed: [_MissingMethods] extends [never] ? true : _MissingMethods = true;
void _allMethodsListed;

/** Reply envelope used by every transport. */
export type StudioReply<M extends StudioMethod> = { ok: true; result: StudioResult<M> } | { ok: false; error: StudioErrorInfo };

// ---------------------------------------------------------------------------------------------------------------
// Services → renderer
// ---------------------------------------------------------------------------------------------------------------

export interface StudioEvents {
  'run.updated': RunSummary;
  /** A run was deleted ('runs.delete', `lora-studio runs delete`): forget it and its metrics. */
  'run.removed': { id: string };
  /**
   * New metric points of a run, in step order. A step can come again after the run went back to a checkpoint
   * (resume after a crash or failure): keep the newest point per step. With `truncatedAfter`, drop the points after
   * that step first (common/run-metrics.ts mergeMetricPoints does both).
   */
  'run.metrics': { runId: string; points: MetricPoint[]; truncatedAfter?: number };
  /** A line of the run's event log; `id`/`at`/`step` are set for lines kept in the database ('runs.events'). */
  'run.log': { runId: string; level: 'info' | 'warn' | 'error'; message: string; id?: number; at?: string; step?: number | null };
  /** A training-health alert (common/run-health.ts); it is also a 'warn' line of the run's event log. */
  'run.alert': RunAlert;
  /** An evaluation answer stored for the run (a step trained again after a resume replaces its answers). */
  'run.eval': EvalSample;
  'settings.changed': StudioSettings;
  'adapters.changed': AdapterSummary[];
  'quant.progress': QuantProgress;
  /** The report is fetched with 'quant.get' (it can be megabytes). */
  'quant.done': { job: QuantJobSummary };
  /** Failed or cancelled (job.state says which; job.error says why). */
  'quant.failed': { job: QuantJobSummary };
  'generate.started': PlaygroundStarted;
  'generate.output': PlaygroundOutput;
  'generate.ended': PlaygroundEnded;
  'external.updated': ExternalRunSummary;
  /** New points of an external run, in step order; with `truncatedAfter`, drop the points after that step first (a relaunch starts again at 0). */
  'external.metrics': { id: string; points: MetricPoint[]; truncatedAfter?: number };
  'external.removed': { id: string };
  'models.pullProgress': ModelPullProgress;
  'models.pullEnded': ModelPullEnded;
}
export type StudioEventName = keyof StudioEvents;
export interface StudioEventMessage<E extends StudioEventName = StudioEventName> {
  event: E;
  data: StudioEvents[E];
}

// ---------------------------------------------------------------------------------------------------------------
// Services ↔ engine worker (worker_thread, postMessage)
// ---------------------------------------------------------------------------------------------------------------

export type EngineCommand =
  | {
      type: 'train';
      runId: string;
      config: RunConfig;
      /** Folder of this run: checkpoints/, adapter/ are written under it. */
      runDir: string;
      /** Resume from the newest checkpoint in runDir when one exists. */
      resume: boolean;
      /** Folder of prepared datasets (the preflight's, engine/train/run-data-cache.ts); one whose key matches is used instead of tokenizing again. */
      datasetCacheDir?: string;
    }
  /** Stop at the next step boundary; with save, write a checkpoint first. */
  | { type: 'stop'; save: boolean };

export type EngineEvent =
  | { type: 'started'; runId: string; backend: string; totalSteps: number; resumedFromStep: number; parameters: { trainable: number; total: number }; adapterName?: string }
  | { type: 'metric'; runId: string; point: MetricPoint }
  | { type: 'log'; runId: string; level: 'info' | 'warn' | 'error'; message: string }
  | { type: 'checkpoint'; runId: string; step: number; path: string }
  | { type: 'done'; runId: string; adapterDir: string; finalLoss: number | null; steps: number; peakGpuBytes?: number }
  | { type: 'stopped'; runId: string; step: number; checkpoint: string | null }
  /** One fixed evaluation prompt answered (config.evalPrompts). */
  | ({ type: 'eval' } & EvalSample)
  | { type: 'error'; runId: string; message: string; file?: string; line?: number; field?: string };

// ---------------------------------------------------------------------------------------------------------------
// Services ↔ quantization worker (engine/quant/quant-worker.ts, one worker_thread per job)
// ---------------------------------------------------------------------------------------------------------------

export type QuantCommand = { type: 'quant.run'; jobId: string; request: QuantJobRequest } | { type: 'quant.cancel'; jobId: string };

export type QuantEvent =
  | { type: 'progress'; jobId: string; phase: QuantProgress['phase']; done: number; total: number; format: string; fraction: number }
  | { type: 'done'; jobId: string; report: QuantReport }
  | { type: 'error'; jobId: string; message: string; cancelled: boolean; file?: string; line?: number; field?: string };

// ---------------------------------------------------------------------------------------------------------------
// Services ↔ generation worker (engine/generate/generate-worker.ts)
// ---------------------------------------------------------------------------------------------------------------

export type GenerateCommand = {
  type: 'generate.run';
  jobId: string;
  /** backend 'auto' is resolved in the worker, as a run's is. */
  request: PlaygroundRequest;
  /** An Int32Array's buffer: the services store 1 in element 0 to stop the job at its next token. */
  cancelFlag: SharedArrayBuffer;
};

export type GenerateEvent =
  | ({ type: 'started' } & PlaygroundStarted)
  | ({ type: 'output' } & PlaygroundOutput)
  | { type: 'ended'; jobId: string; cancelled: boolean; error: { message: string; file?: string; line?: number; field?: string } | null };

// ---------------------------------------------------------------------------------------------------------------
// Services ↔ bundle-export worker (engine/export/bundle-worker.ts, one worker_thread per export)
// ---------------------------------------------------------------------------------------------------------------

export type BundleCommand = {
  type: 'bundle.export';
  jobId: string;
  config: RunConfig;
  outDir: string;
  options: { runId: string | null; name: string; includeModel: BundleIncludeModel; studioVersion: string; launch?: BundleLaunch };
};

export type BundleEvent =
  | { type: 'progress'; jobId: string; message: string }
  | { type: 'done'; jobId: string; summary: BundleSummary }
  | { type: 'error'; jobId: string; message: string; file?: string; line?: number; field?: string };
