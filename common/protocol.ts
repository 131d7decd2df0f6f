/**
 * The one protocol module: every message between renderer, services and engine is typed here.
 *
 * - Renderer → services: `StudioRequests` (request/reply, by method name).
 * - Services → renderer: `StudioEvents` (pushed).
 * - Services ↔ engine worker: `EngineCommand` / `EngineEvent`.
 *
 * Runs anywhere (browser, Node, Electron): imports nothing but zod and the common/ modules next to it.
 * The zod schemas of the contract are next to it, and the types here are inferred from them: requests in
 * request-schemas.ts, replies in reply-schemas.ts, events in event-schemas.ts, a run's configuration in run-config.ts
 * (re-exported here); the big summaries they share in run-summary.ts, model-summary.ts, dataset-summary.ts,
 * bundle-summary.ts, external-run.ts, quant-job.ts, quant-report.ts and memory-estimate.ts.
 */
import { z } from 'zod';
import type { BundleLaunch } from './bundle-launch.ts';
import type { QuantReport } from './quant-report.ts';
import type { BundleSummarySchema } from './bundle-summary.ts';
import type { DatasetSummarySchema } from './dataset-summary.ts';
import type { EXTERNAL_RUN_STATES, ExternalRunSummarySchema } from './external-run.ts';
import type { MemoryEstimateInfoSchema } from './memory-estimate.ts';
import type { LocalModelSchema, LocalModelsInfoSchema, MODEL_STORE_KINDS, ModelSummarySchema } from './model-summary.ts';
import type { QUANT_JOB_STATES, QuantJobRequestSchema, QuantJobSummarySchema, QuantProgressSchema } from './quant-job.ts';
import type { RUN_STATES, RunSummarySchema } from './run-summary.ts';
import { DEFAULT_HEALTH_THRESHOLDS, HealthThresholdsSchema } from './run-health.ts';
import type { EvalSample, RunConfig } from './run-config.ts';
import type { PlaygroundRequestSchema, RequestMethod, RequestParamSchemas } from './request-schemas.ts';
import type { StudioErrorInfo } from './studio-error.ts';
import type {
  AdapterSummarySchema,
  PLAYGROUND_VARIANTS,
  PlaygroundEndedSchema,
  PlaygroundOutputSchema,
  PlaygroundStartedSchema,
  SchemaEventName,
  StudioEventSchemas,
} from './event-schemas.ts';
import type { AdapterImportResultSchema, BackendInfoSchema, QuantFormatInfoSchema, ReplySchemas, RunEventInfoSchema, RunStateChangeSchema, SchemaReplyMethod } from './reply-schemas.ts';

export * from './run-config.ts';
export { PlaygroundRequestSchema, QuantStartParamsSchema, REQUEST_PARAM_SCHEMAS, type RequestMethod, type StudioSettingsPatch } from './request-schemas.ts';

// ---------------------------------------------------------------------------------------------------------------
// Things the services know about
// ---------------------------------------------------------------------------------------------------------------

export { RUN_STATES } from './run-summary.ts';
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

/** A run as the services answer and push it (common/run-summary.ts RunSummarySchema). */
export type RunSummary = z.output<typeof RunSummarySchema>;

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

/** Bytes a run will need at its peak, by part ('runs.estimateMemory'; common/memory-estimate.ts MemoryEstimateInfoSchema). */
export type MemoryEstimateInfo = z.output<typeof MemoryEstimateInfoSchema>;

/** A compute backend as this machine has it ('backends.probe'; common/reply-schemas.ts BackendInfoSchema). */
export type BackendInfo = z.infer<typeof BackendInfoSchema>;

/** An adapter in the Adapters list (common/event-schemas.ts AdapterSummarySchema). */
export type AdapterSummary = z.infer<typeof AdapterSummarySchema>;

/** A model as the studio reads it (common/model-summary.ts ModelSummarySchema). */
export type ModelSummary = z.output<typeof ModelSummarySchema>;

/** Where models already on the machine are kept (engine/io/model-discovery.ts). */
export type ModelStoreKind = (typeof MODEL_STORE_KINDS)[number];

/** A model found in a store (common/model-summary.ts LocalModelSchema). */
export type LocalModel = z.output<typeof LocalModelSchema>;

export type LocalModelsInfo = z.output<typeof LocalModelsInfoSchema>;

/** A dataset as the studio reads it (common/dataset-summary.ts DatasetSummarySchema). */
export type DatasetSummary = z.output<typeof DatasetSummarySchema>;

export { StudioErrorInfoSchema, type StudioErrorInfo } from './studio-error.ts';

// ---------------------------------------------------------------------------------------------------------------
// Export for a cluster (an Accelerate + PEFT bundle), external runs, imported adapters
// ---------------------------------------------------------------------------------------------------------------

export { BUNDLE_INCLUDE_MODEL, type BundleIncludeModel } from './bundle-launch.ts';
import type { BundleIncludeModel } from './bundle-launch.ts';

/** A bundle written by 'runs.exportBundle' (common/bundle-summary.ts BundleSummarySchema). */
export type BundleSummary = z.output<typeof BundleSummarySchema>;

export type ExternalRunState = (typeof EXTERNAL_RUN_STATES)[number];

/** A run outside the studio that the studio follows (common/external-run.ts ExternalRunSummarySchema). */
export type ExternalRunSummary = z.output<typeof ExternalRunSummarySchema>;

/** An adapter folder brought into the Adapters list (common/reply-schemas.ts AdapterImportResultSchema). */
export type AdapterImportResult = z.output<typeof AdapterImportResultSchema>;

// ---------------------------------------------------------------------------------------------------------------
// Quantization lab
// ---------------------------------------------------------------------------------------------------------------

export { QUANT_ADAPTER_MODES, QUANT_FORMAT_NAMES, LORA_GGUF_DTYPES, type QuantAdapterMode } from './quant-formats.ts';

/** A format the lab can measure ('quant.formats'; common/reply-schemas.ts QuantFormatInfoSchema). */
export type QuantFormatInfo = z.infer<typeof QuantFormatInfoSchema>;

/** What one lab job measures (common/quant-job.ts QuantJobRequestSchema). */
export type QuantJobRequest = z.output<typeof QuantJobRequestSchema>;

export type QuantJobState = (typeof QUANT_JOB_STATES)[number];

/** Where a lab job is (common/quant-job.ts QuantProgressSchema). */
export type QuantProgress = z.infer<typeof QuantProgressSchema>;

/** A lab job (common/quant-job.ts QuantJobSummarySchema). */
export type QuantJobSummary = z.output<typeof QuantJobSummarySchema>;

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

/** What each request answers, by method: inferred from its reply schema (common/reply-schemas.ts REPLY_SCHEMAS). */
export type StudioResults = { [M in SchemaReplyMethod]: z.output<ReplySchemas[M]> };

export type StudioRequests = { [M in RequestMethod]: { params: z.input<RequestParamSchemas[M]>; result: StudioResults[M] } };

export type StudioMethod = keyof StudioRequests;
export type StudioParams<M extends StudioMethod> = StudioRequests[M]['params'];
export type StudioResult<M extends StudioMethod> = StudioRequests[M]['result'];

export { STUDIO_METHODS } from './request-schemas.ts';

// Compile-time proof that every method with a request schema has a reply schema, and the other way round.
type _NoResult = Exclude<RequestMethod, keyof StudioResults>;
type _NoSchema = Exclude<keyof StudioResults, RequestMethod>;
const _schemasAndResultsAgree: [_NoResult | _NoSchema] extends [never] ? true : _NoResult | _NoSchema = true;
void _schemasAndResultsAgree;

/** Reply envelope used by every transport. */
export type StudioReply<M extends StudioMethod> = { ok: true; result: StudioResult<M> } | { ok: false; error: StudioErrorInfo };

// ---------------------------------------------------------------------------------------------------------------
// Services → renderer
// ---------------------------------------------------------------------------------------------------------------

/** What each event carries: inferred from its schema (common/event-schemas.ts STUDIO_EVENT_SCHEMAS). */
export type StudioEvents = { [E in SchemaEventName]: z.output<StudioEventSchemas[E]> };
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
