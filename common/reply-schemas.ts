/**
 * One zod schema per reply: what every request of the protocol answers. StudioResults in common/protocol.ts infers
 * each method's result type from here, so a reply's shape is written once. The big summaries have their own modules
 * (run-summary.ts, model-summary.ts, dataset-summary.ts, bundle-summary.ts, external-run.ts, quant-job.ts,
 * quant-report.ts, memory-estimate.ts); the small records are here.
 *
 * The services do not parse their own replies at run time (a lab report is megabytes; the code that builds each one
 * is typed by these schemas' types); test/services/event-schemas.test.ts parses every reply a real studio gives over
 * HTTP against its schema.
 *
 * protocol.ts imports only types from here; this module imports protocol.ts at runtime, so there is no cycle.
 */
import { z } from 'zod';
import { AdapterSummarySchema } from './event-schemas.ts';
import { MetricPointSchema, RUN_STATES, StudioSettingsSchema } from './protocol.ts';
import { EvalSampleSchema } from './run-config.ts';
import { BundleSummarySchema } from './bundle-summary.ts';
import { DatasetSummarySchema } from './dataset-summary.ts';
import { ExternalRunSummarySchema } from './external-run.ts';
import { MemoryEstimateReplySchema } from './memory-estimate.ts';
import { MergedExportResultSchema } from './merged-export.ts';
import { LocalModelsInfoSchema, ModelSummarySchema } from './model-summary.ts';
import { OllamaExportInfoSchema } from './ollama-export.ts';
import { QuantJobSummarySchema } from './quant-job.ts';
import { QuantReportSchema } from './quant-report.ts';
import { AdapterDeleteResultSchema, RunDeleteResultSchema } from './run-info.ts';
import { RunSummarySchema } from './run-summary.ts';

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

/** An adapter folder brought into the Adapters list ('adapters.import', 'external.importAdapter'). */
export const AdapterImportResultSchema = z.object({
  adapter: AdapterSummarySchema,
  /** Things the user should know that did not stop the import (e.g. the base model is not on this machine). */
  warnings: z.array(z.string()),
});

const jobStarted = z.object({ jobId: z.string() });
const run = RunSummarySchema;
const cancelled = z.object({ cancelled: z.boolean() });
const path = z.object({ path: z.string() });
const picked = z.object({ path: z.string().nullable() });
const points = z.array(MetricPointSchema);

export const REPLY_SCHEMAS = {
  'models.sample': ModelSummarySchema,
  'models.inspect': ModelSummarySchema,
  /** Models already on this machine: the Hugging Face cache, Ollama's store, LM Studio's models folder. */
  'models.discover': LocalModelsInfoSchema,
  'datasets.sample': DatasetSummarySchema,
  'datasets.inspect': DatasetSummarySchema,
  /** Browser only: the file's content travels in the request and is stored under the studio home. */
  'datasets.upload': DatasetSummarySchema,
  'runs.start': run,
  'runs.list': z.array(run),
  'runs.get': run,
  'runs.cancel': run,
  /** A waiting run is held; an executing one writes a checkpoint and stops. 'runs.resume' continues it. */
  'runs.pause': run,
  /** A paused or failed run waits for its turn again and continues from its last checkpoint. */
  'runs.resume': run,
  /** An executing run stops at the next step and its adapter is kept as it is then (the run completes early). */
  'runs.stopAndSave': run,
  'runs.setPriority': run,
  /** Renames a run, or changes its notes or tags (common/run-info.ts RunsUpdateParamsSchema); any state. */
  'runs.update': run,
  /**
   * Removes a run that is not going (completed, failed, cancelled, paused): its folder and its database rows; the
   * others are refused with their state. With dryRun, only says what would be freed. Others see 'run.removed'.
   */
  'runs.delete': RunDeleteResultSchema,
  /** Peak memory of a run with these settings, before it starts; plus what this machine has. */
  'runs.estimateMemory': MemoryEstimateReplySchema,
  /**
   * "Export for a cluster": the run as a folder Accelerate + PEFT train exactly as the studio would (train.py, the
   * prepared data and step plan, the initial adapter, launch configurations). Written into `destination` (a folder
   * on the services' disk) under a new sub-folder, else under the studio home's bundles/.
   */
  'runs.exportBundle': BundleSummarySchema,
  /** Follows an external run: a bundle's output folder (or the bundle folder itself); its points come as 'external.metrics'. */
  'external.follow': ExternalRunSummarySchema,
  'external.list': z.array(ExternalRunSummarySchema),
  /** Imports a completed external run's adapter into the Adapters list, checked against the bundle's base model. */
  'external.importAdapter': AdapterImportResultSchema,
  /** "Export for Ollama": adapter.gguf + a Modelfile (FROM the base, ADAPTER, TEMPLATE/stop) in the adapter's ollama/ folder or `destination`. */
  'adapters.exportOllama': OllamaExportInfoSchema,
  /** "Export merged…": the adapter merged into its base, written as a Hugging Face folder or a GGUF into a new folder. */
  'adapters.exportMerged': MergedExportResultSchema,
  /**
   * Brings a PEFT LoRA adapter folder (a path, a Hugging Face hub cache folder, or a hub id found in the local cache)
   * into the Adapters list. It is checked against its base model (modelPath, else its base_model_name_or_path when
   * that is on this machine): layers, shapes and target modules must fit, else the refusal says what does not.
   */
  'adapters.import': AdapterImportResultSchema,
  /** Removes an adapter's folder and its database row (dryRun: only measures it); the list comes as 'adapters.changed'. */
  'adapters.delete': AdapterDeleteResultSchema,
  /** Queue a lab job (one runs at a time); progress arrives as 'quant.progress', the end as 'quant.done' / 'quant.failed'. */
  'quant.start': z.object({ jobId: z.string(), job: QuantJobSummarySchema }),
  'quant.cancel': QuantJobSummarySchema,
  /** The job and, once done, its report. */
  'quant.get': z.object({ job: QuantJobSummarySchema, report: QuantReportSchema.nullable() }),
  /** Every lab job this studio knows, newest first: this session's, and the finished ones stored on disk. */
  'quant.list': z.array(QuantJobSummarySchema),
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
