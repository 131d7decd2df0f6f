/**
 * One zod schema per small reply: the results of the requests whose answer is plain and short (ids, flags, paths,
 * lists of small records). StudioResults in common/protocol.ts infers these methods' result types from them.
 *
 * Not here (they stay TypeScript interfaces in protocol.ts, built and checked by the code that makes them): the
 * summaries — RunSummary (the runs.* replies that answer with a run; it carries the whole RunConfig), DatasetSummary,
 * ModelSummary, LocalModelsInfo, BundleSummary, ExternalRunSummary, AdapterImportResult, QuantJobSummary and
 * QuantReport (megabytes of matrices) — and MemoryEstimateInfo, RunDeleteResult, AdapterDeleteResult,
 * OllamaExportInfo and MergedExportResult, which their own modules define next to the code that fills them.
 *
 * protocol.ts imports only types from here; this module imports protocol.ts at runtime, so there is no cycle.
 */
import { z } from 'zod';
import { AdapterSummarySchema } from './event-schemas.ts';
import { MetricPointSchema, RUN_STATES, StudioSettingsSchema } from './protocol.ts';
import { EvalSampleSchema } from './run-config.ts';

/** One line of a run's event log (engine logs, state changes, checkpoints), kept in the studio database. */
export const RunEventInfoSchema = z.object({
  id: z.number().int(),
  runId: z.string(),
  at: z.string(),
  level: z.enum(['info', 'warn', 'error']),
  /** The training step the event belongs to, when it belongs to one. */
  step: z.number().nullable(),
  message: z.string(),
});

/** A run's move from one state to another, with why. */
export const RunStateChangeSchema = z.object({ from: z.enum(RUN_STATES).nullable(), to: z.enum(RUN_STATES), at: z.string(), reason: z.string().nullable() });

/** A compute backend as this machine has it ('backends.probe'). */
export const BackendInfoSchema = z.object({
  id: z.enum(['cpu', 'webgpu']),
  available: z.boolean(),
  /** What it runs on: the WebGPU adapter's name, or 'CPU'; null when unavailable. */
  name: z.string().nullable(),
  /** Why it is unavailable, or why `auto` passes it over (a software adapter); null otherwise. */
  reason: z.string().nullable(),
  /** A CPU rasteriser (llvmpipe, SwiftShader…): usable when chosen explicitly, never picked by `auto`. */
  software: z.boolean().optional(),
});

export const QuantFormatInfoSchema = z.object({
  /** Registry key: f16, int8, int4-g128, nf4, q8_0, q4_0, q4_1. */
  name: z.string(),
  label: z.string(),
  bitsPerWeight: z.number().positive(),
  /** The format can be written to a GGUF file (`lora-studio quantize`). */
  gguf: z.boolean(),
});

const jobStarted = z.object({ jobId: z.string() });
const cancelled = z.object({ cancelled: z.boolean() });
const path = z.object({ path: z.string() });
const picked = z.object({ path: z.string().nullable() });
const points = z.array(MetricPointSchema);

export const REPLY_SCHEMAS = {
  'app.info': z.object({ version: z.string(), home: z.string(), host: z.enum(['electron', 'web']), backends: z.array(z.string()) }),
  /** Starts a Hugging Face download into the HF cache (common/models-pull.ts); progress as 'models.pullProgress', the end as 'models.pullEnded'. */
  'models.pull': jobStarted,
  /** Stops a download; its part stays as .incomplete for the next pull to resume. False when it had already ended. */
  'models.pullCancel': cancelled,
  'runs.metrics': points,
  /** The run's event log after event id `afterId` (0: from the start), oldest first. */
  'runs.events': z.array(RunEventInfoSchema),
  'runs.history': z.array(RunStateChangeSchema),
  /** The run's evaluation answers (config.evalPrompts), by step then prompt; after `afterStep` when given. */
  'runs.evalSamples': z.array(EvalSampleSchema),
  'external.metrics': points,
  /** Stops following (nothing on disk is touched). */
  'external.unfollow': z.object({ id: z.string() }),
  'settings.get': StudioSettingsSchema,
  /** Changes some settings (some of the alert thresholds too: the others stay); the answer is all of them. */
  'settings.set': StudioSettingsSchema,
  'adapters.list': z.array(AdapterSummarySchema),
  /** A new display name for an adapter (common/run-info.ts AdaptersRenameParamsSchema); others see 'adapters.changed'. */
  'adapters.rename': AdapterSummarySchema,
  /** Copy an adapter folder to a destination folder the user chose (Save as…). */
  'adapters.saveAs': path,
  /** Electron only: start a native drag of the adapter folder. */
  'adapters.startDrag': path,
  /**
   * Writes the adapter as a GGUF LoRA file (llama.cpp --lora, Ollama ADAPTER) into its folder, so dragging or saving
   * the folder carries it; the base model's folder must still be where the adapter says.
   */
  'adapters.exportGguf': z.object({ path: z.string(), bytes: z.number().int().min(0) }),
  /** Electron only: native pickers. */
  'dialog.pickFolder': picked,
  'dialog.pickFile': picked,
  'quant.formats': z.array(QuantFormatInfoSchema),
  /** The backends of this machine and what `auto` resolves to (probed once, in a worker; `refresh` probes again). */
  'backends.probe': z.object({ auto: z.enum(['cpu', 'webgpu']), backends: z.array(BackendInfoSchema) }),
  /**
   * Generate from a prompt in a worker. A new job stops the one running. Text streams as 'generate.output', the end
   * is 'generate.ended'; problems the request shows at once (paths, fields) are refused here.
   */
  'generate.start': jobStarted,
  /** Stops a job at its next token; false when it had already ended. */
  'generate.cancel': cancelled,
} as const satisfies Record<string, z.ZodType>;

export type ReplySchemas = typeof REPLY_SCHEMAS;
export type SchemaReplyMethod = keyof ReplySchemas;
