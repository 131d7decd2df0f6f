/**
 * The one protocol module: every message between renderer, services and engine is typed here.
 *
 * - Renderer → services: `StudioRequests` (request/reply, by method name).
 * - Services → renderer: `StudioEvents` (pushed).
 * - Services ↔ engine worker: `EngineCommand` / `EngineEvent`.
 *
 * Runs anywhere (browser, Node, Electron): imports nothing but zod (and the plain report types next to it).
 * The zod schemas of the contract are next to it: requests in request-schemas.ts, events in event-schemas.ts, a run's
 * configuration in run-config.ts (re-exported here).
 */
import { z } from 'zod';
import type { BundleLaunch } from './bundle-launch.ts';
import type { QuantReport } from './quant-report.ts';
import type { MergedExportResult } from './merged-export.ts';
import type { OllamaExportInfo } from './ollama-export.ts';
import type { AdapterDeleteResult, RunDeleteResult } from './run-info.ts';
import { DEFAULT_HEALTH_THRESHOLDS, HealthThresholdsSchema } from './run-health.ts';
import type { DatasetFormat, EvalSample, RunConfig } from './run-config.ts';
import type { PlaygroundRequestSchema, RequestMethod, RequestParamSchemas } from './request-schemas.ts';
import type { QuantAdapterMode } from './quant-formats.ts';
import type { StudioErrorInfo } from './studio-error.ts';
import type {
  AdapterSummarySchema,
  PLAYGROUND_VARIANTS,
  PlaygroundEndedSchema,
  PlaygroundOutputSchema,
  PlaygroundStartedSchema,
  QuantProgressSchema,
  SchemaEventName,
  StudioEventSchemas,
} from './event-schemas.ts';
import type { BackendInfoSchema, QuantFormatInfoSchema, ReplySchemas, RunEventInfoSchema, RunStateChangeSchema, SchemaReplyMethod } from './reply-schemas.ts';

export * from './run-config.ts';
export { PlaygroundRequestSchema, QuantStartParamsSchema, REQUEST_PARAM_SCHEMAS, type RequestMethod, type StudioSettingsPatch } from './request-schemas.ts';

// ---------------------------------------------------------------------------------------------------------------
// Things the services know about
// ---------------------------------------------------------------------------------------------------------------

export const RUN_STATES = ['pending', 'validating', 'queuing', 'executing', 'finalizing', 'completed', 'failed', 'cancelled', 'paused'] as const;
export type RunState = (typeof RUN_STATES)[number];

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

/** One line of a run's event log (common/reply-schemas.ts RunEventInfoSchema). */
export type RunEventInfo = z.infer<typeof RunEventInfoSchema>;

/** A run's move from one state to another, with why (common/reply-schemas.ts). */
export type RunStateChange = z.infer<typeof RunStateChangeSchema>;

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

/** A compute backend as this machine has it ('backends.probe'; common/reply-schemas.ts BackendInfoSchema). */
export type BackendInfo = z.infer<typeof BackendInfoSchema>;

/** An adapter in the Adapters list (common/event-schemas.ts AdapterSummarySchema). */
export type AdapterSummary = z.infer<typeof AdapterSummarySchema>;

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

export { StudioErrorInfoSchema, type StudioErrorInfo } from './studio-error.ts';

// ---------------------------------------------------------------------------------------------------------------
// Export for a cluster (an Accelerate + PEFT bundle), external runs, imported adapters
// ---------------------------------------------------------------------------------------------------------------

export { BUNDLE_INCLUDE_MODEL, type BundleIncludeModel } from './bundle-launch.ts';
import type { BundleIncludeModel } from './bundle-launch.ts';

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

export { QUANT_ADAPTER_MODES, QUANT_FORMAT_NAMES, LORA_GGUF_DTYPES, type QuantAdapterMode } from './quant-formats.ts';

/** A format the lab can measure ('quant.formats'; common/reply-schemas.ts QuantFormatInfoSchema). */
export type QuantFormatInfo = z.infer<typeof QuantFormatInfoSchema>;

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

/** Where a lab job is (common/event-schemas.ts QuantProgressSchema). */
export type QuantProgress = z.infer<typeof QuantProgressSchema>;

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

export { BUILTIN_CHAT_TEMPLATE_NAMES, PROMPT_FORMATS, type PromptFormat } from './prompt-formats.ts';

/** What the Playground asks for ('generate.start'; the schema, with each field's meaning, is in common/request-schemas.ts). */
export type PlaygroundRequest = z.infer<typeof PlaygroundRequestSchema>;

/** 'adapter': adapterPath's answer; 'compare': compareAdapterPath's; 'base': the base model alone. */
export type PlaygroundVariant = (typeof PLAYGROUND_VARIANTS)[number];

export interface PlaygroundTurn {
  role: 'user' | 'assistant';
  content: string;
}

/** A job has started generating (common/event-schemas.ts PlaygroundStartedSchema). */
export type PlaygroundStarted = z.infer<typeof PlaygroundStartedSchema>;

export type PlaygroundOutput = z.infer<typeof PlaygroundOutputSchema>;

export type PlaygroundEnded = z.infer<typeof PlaygroundEndedSchema>;

// ---------------------------------------------------------------------------------------------------------------
// Renderer → services
// ---------------------------------------------------------------------------------------------------------------

/**
 * What each request answers, by method: the small replies from their schemas (common/reply-schemas.ts), the others
 * (big summaries; see that module for why) written here. The params of each method are its zod schema in common/request-schemas.ts;
 * StudioRequests joins the two.
 */
interface StudioResultsWithoutSchema {
  'models.sample': ModelSummary;
  'models.inspect': ModelSummary;
  /** Models already on this machine: the Hugging Face cache, Ollama's store, LM Studio's models folder. */
  'models.discover': LocalModelsInfo;
  'datasets.sample': DatasetSummary;
  'datasets.inspect': DatasetSummary;
  /** Browser only: the file's content travels in the request and is stored under the studio home. */
  'datasets.upload': DatasetSummary;
  'runs.start': RunSummary;
  'runs.list': RunSummary[];
  'runs.get': RunSummary;
  'runs.cancel': RunSummary;
  /** A waiting run is held; an executing one writes a checkpoint and stops. 'runs.resume' continues it. */
  'runs.pause': RunSummary;
  /** A paused or failed run waits for its turn again and continues from its last checkpoint. */
  'runs.resume': RunSummary;
  /** An executing run stops at the next step and its adapter is kept as it is then (the run completes early). */
  'runs.stopAndSave': RunSummary;
  'runs.setPriority': RunSummary;
  /** Renames a run, or changes its notes or tags (common/run-info.ts RunsUpdateParamsSchema); any state. */
  'runs.update': RunSummary;
  /**
   * Removes a run that is not going (completed, failed, cancelled, paused): its folder and its database rows; the
   * others are refused with their state. With dryRun, only says what would be freed. Others see 'run.removed'.
   */
  'runs.delete': RunDeleteResult;
  /** Peak memory of a run with these settings, before it starts; plus what this machine has. */
  'runs.estimateMemory': { estimate: MemoryEstimateInfo; systemMemoryBytes: number; freeMemoryBytes: number };
  /**
   * "Export for a cluster": the run as a folder Accelerate + PEFT train exactly as the studio would (train.py, the
   * prepared data and step plan, the initial adapter, launch configurations). Written into `destination` (a folder
   * on the services' disk) under a new sub-folder, else under the studio home's bundles/.
   */
  'runs.exportBundle': BundleSummary;
  /** Follows an external run: a bundle's output folder (or the bundle folder itself); its points come as 'external.metrics'. */
  'external.follow': ExternalRunSummary;
  'external.list': ExternalRunSummary[];
  /** Imports a completed external run's adapter into the Adapters list, checked against the bundle's base model. */
  'external.importAdapter': AdapterImportResult;
  /** "Export for Ollama": adapter.gguf + a Modelfile (FROM the base, ADAPTER, TEMPLATE/stop) in the adapter's ollama/ folder or `destination`. */
  'adapters.exportOllama': OllamaExportInfo;
  /** "Export merged…": the adapter merged into its base, written as a Hugging Face folder or a GGUF into a new folder. */
  'adapters.exportMerged': MergedExportResult;
  /**
   * Brings a PEFT LoRA adapter folder (a path, a Hugging Face hub cache folder, or a hub id found in the local cache)
   * into the Adapters list. It is checked against its base model (modelPath, else its base_model_name_or_path when
   * that is on this machine): layers, shapes and target modules must fit, else the refusal says what does not.
   */
  'adapters.import': AdapterImportResult;
  /** Removes an adapter's folder and its database row (dryRun: only measures it); the list comes as 'adapters.changed'. */
  'adapters.delete': AdapterDeleteResult;
  /** Queue a lab job (one runs at a time); progress arrives as 'quant.progress', the end as 'quant.done' / 'quant.failed'. */
  'quant.start': { jobId: string; job: QuantJobSummary };
  'quant.cancel': QuantJobSummary;
  /** The job and, once done, its report. */
  'quant.get': { job: QuantJobSummary; report: QuantReport | null };
  /** Every lab job this studio knows, newest first: this session's, and the finished ones stored on disk. */
  'quant.list': QuantJobSummary[];
}

/** Every request: its params (inferred from its schema, as the caller may send them) and its result. */
/** The replies with a schema (common/reply-schemas.ts REPLY_SCHEMAS): their result types come from it. */
type StudioResultsFromSchemas = { [M in SchemaReplyMethod]: z.output<ReplySchemas[M]> };

export interface StudioResults extends StudioResultsWithoutSchema, StudioResultsFromSchemas {}

export type StudioRequests = { [M in RequestMethod]: { params: z.input<RequestParamSchemas[M]>; result: StudioResults[M] } };

export type StudioMethod = keyof StudioRequests;
export type StudioParams<M extends StudioMethod> = StudioRequests[M]['params'];
export type StudioResult<M extends StudioMethod> = StudioRequests[M]['result'];

export { STUDIO_METHODS } from './request-schemas.ts';

// Compile-time proof that every method with a schema has a result type, and the other way round.
type _NoResult = Exclude<RequestMethod, keyof StudioResults>;
type _NoSchema = Exclude<keyof StudioResults, RequestMethod>;
const _schemasAndResultsAgree: [_NoResult | _NoSchema] extends [never] ? true : _NoResult | _NoSchema = true;
void _schemasAndResultsAgree;

/** Reply envelope used by every transport. */
export type StudioReply<M extends StudioMethod> = { ok: true; result: StudioResult<M> } | { ok: false; error: StudioErrorInfo };

// ---------------------------------------------------------------------------------------------------------------
// Services → renderer
// ---------------------------------------------------------------------------------------------------------------

/** The events whose data has no schema (see common/event-schemas.ts for why): big summaries that are replies too. */
interface StudioEventsWithoutSchema {
  'run.updated': RunSummary;
  /** The report is fetched with 'quant.get' (it can be megabytes). */
  'quant.done': { job: QuantJobSummary };
  /** Failed or cancelled (job.state says which; job.error says why). */
  'quant.failed': { job: QuantJobSummary };
  'external.updated': ExternalRunSummary;
}

/** The events with a schema (common/event-schemas.ts STUDIO_EVENT_SCHEMAS): their data types come from it. */
type StudioEventsFromSchemas = { [E in SchemaEventName]: z.output<StudioEventSchemas[E]> };

export interface StudioEvents extends StudioEventsWithoutSchema, StudioEventsFromSchemas {}
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
  | { type: 'error'; runId: string; message: string; file?: string; line?: number; field?: string; code?: string };

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
