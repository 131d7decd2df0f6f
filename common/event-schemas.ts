/**
 * One zod schema per pushed event: the services emit them, the web host sends them as JSON over its event socket, the
 * renderer receives them. StudioEvents in common/protocol.ts infers each event's data type from here (z.output: what
 * the services hold; over JSON a NaN loss travels as null, which MetricPointSchema reads back as NaN).
 *
 * protocol.ts imports only types from here; this module imports protocol.ts at runtime (MetricPointSchema,
 * StudioSettingsSchema), so there is no cycle.
 */
import { z } from 'zod';
import { MetricPointSchema, StudioSettingsSchema } from './protocol.ts';
import { ModelPullEndedSchema, ModelPullProgressSchema } from './models-pull.ts';
import { RunAlertSchema } from './run-health.ts';
import { EvalSampleSchema } from './run-config.ts';
import { StudioErrorInfoSchema } from './studio-error.ts';
import { ExternalRunSummarySchema } from './external-run.ts';
import { QuantJobSummarySchema, QuantProgressSchema } from './quant-job.ts';
import { RunSummarySchema } from './run-summary.ts';

const count = z.number().int().min(0);
const LOG_LEVELS = ['info', 'warn', 'error'] as const;

export const AdapterSummarySchema = z.object({
  id: z.string(),
  name: z.string(),
  runId: z.string().nullable(),
  createdAt: z.string(),
  baseModel: z.string(),
  r: z.number(),
  alpha: z.number(),
  targets: z.array(z.string()),
  /** Folder on the services' disk holding adapter_config.json + adapter_model.safetensors. */
  path: z.string(),
  sizeBytes: z.number().min(0),
  /** Imported adapters ('adapters.import', an external run): where the folder came from. */
  importedFrom: z.string().optional(),
});

/** 'adapter': adapterPath's answer; 'compare': compareAdapterPath's; 'base': the base model alone. */
export const PLAYGROUND_VARIANTS = ['adapter', 'compare', 'base'] as const;

/** A job has started generating: the prompt as the model reads it, and where it runs. */
export const PlaygroundStartedSchema = z.object({
  jobId: z.string(),
  /** Backend that runs it ('cpu', or 'webgpu' with the adapter's name). */
  backend: z.string(),
  /** The formatted prompt, special tokens included, decoded back from its ids. */
  promptText: z.string(),
  promptTokens: count,
  variants: z.array(z.enum(PLAYGROUND_VARIANTS)),
});

export const PlaygroundOutputSchema = z.object({
  jobId: z.string(),
  variant: z.enum(PLAYGROUND_VARIANTS),
  /** Everything generated so far (prompt excluded, special tokens skipped). */
  text: z.string(),
  tokens: count,
  /**
   * Decode speed: tokens after the first per second since the first came (the first token comes out of the prompt's
   * prefill, whose time is prefillMs); null until a second token exists.
   */
  tokensPerSecond: z.number().min(0).nullable(),
  /** Milliseconds from the start to the first token: the prompt's prefill (and that token's sampling); null before it. */
  prefillMs: z.number().min(0).nullable(),
  /** Set on the variant's last update: why it stopped. */
  stop: z.enum(['eos', 'length', 'cancelled']).nullable(),
});

export const PlaygroundEndedSchema = z.object({ jobId: z.string(), cancelled: z.boolean(), error: StudioErrorInfoSchema.nullable() });

const points = z.array(MetricPointSchema);

export const STUDIO_EVENT_SCHEMAS = {
  /** A run changed: its state, step, loss, queue place or details (the whole summary, as 'runs.get' answers). */
  'run.updated': RunSummarySchema,
  /** A run was deleted ('runs.delete', `lora-studio runs delete`): forget it and its metrics. */
  'run.removed': z.object({ id: z.string() }),
  /**
   * New metric points of a run, in step order. A step can come again after the run went back to a checkpoint
   * (resume after a crash or failure): keep the newest point per step. With `truncatedAfter`, drop the points after
   * that step first (common/run-metrics.ts mergeMetricPoints does both).
   */
  'run.metrics': z.object({ runId: z.string(), points, truncatedAfter: z.number().optional() }),
  /** A line of the run's event log; `id`/`at`/`step` are set for lines kept in the database ('runs.events'). */
  'run.log': z.object({ runId: z.string(), level: z.enum(LOG_LEVELS), message: z.string(), id: z.number().optional(), at: z.string().optional(), step: z.number().nullable().optional() }),
  /** A training-health alert (common/run-health.ts); it is also a 'warn' line of the run's event log. */
  'run.alert': RunAlertSchema,
  /** An evaluation answer stored for the run (a step trained again after a resume replaces its answers). */
  'run.eval': EvalSampleSchema,
  'settings.changed': StudioSettingsSchema,
  'adapters.changed': z.array(AdapterSummarySchema),
  'quant.progress': QuantProgressSchema,
  /** The report is fetched with 'quant.get' (it can be megabytes). */
  'quant.done': z.object({ job: QuantJobSummarySchema }),
  /** Failed or cancelled (job.state says which; job.error says why). */
  'quant.failed': z.object({ job: QuantJobSummarySchema }),
  'external.updated': ExternalRunSummarySchema,
  'generate.started': PlaygroundStartedSchema,
  'generate.output': PlaygroundOutputSchema,
  'generate.ended': PlaygroundEndedSchema,
  /** New points of an external run, in step order; with `truncatedAfter`, drop the points after that step first (a relaunch starts again at 0). */
  'external.metrics': z.object({ id: z.string(), points, truncatedAfter: z.number().optional() }),
  'external.removed': z.object({ id: z.string() }),
  'models.pullProgress': ModelPullProgressSchema,
  'models.pullEnded': ModelPullEndedSchema,
} as const satisfies Record<string, z.ZodType>;

export type StudioEventSchemas = typeof STUDIO_EVENT_SCHEMAS;
export type SchemaEventName = keyof StudioEventSchemas;
