/**
 * A run outside the studio that the studio follows ('external.follow', 'external.list', 'external.updated'): an
 * exported bundle's output folder, read from the metrics.jsonl and status.json its train.py writes
 * (host/services/external-runs.ts). The TypeScript types in common/protocol.ts are inferred from these schemas.
 */
import { z } from 'zod';
import { StudioErrorInfoSchema } from './studio-error.ts';

/** waiting: nothing written yet; running; completed (the adapter is there); failed (status.json says why). */
export const EXTERNAL_RUN_STATES = ['waiting', 'running', 'completed', 'failed'] as const;

const count = z.number().int().min(0);

export const ExternalRunSummarySchema = z.object({
  id: z.string(),
  name: z.string(),
  /** The followed output folder (metrics.jsonl, status.json, adapter/). */
  path: z.string(),
  /** The bundle the folder belongs to, when its bundle.json is next to it. */
  bundlePath: z.string().nullable(),
  /** The studio run the bundle was exported from. */
  sourceRunId: z.string().nullable(),
  state: z.enum(EXTERNAL_RUN_STATES),
  step: count,
  totalSteps: count.nullable(),
  lastLoss: z.number().nullable(),
  validationLoss: z.number().nullable(),
  tokensPerSecond: z.number().min(0).nullable(),
  /** Processes, how accelerate ran them (MULTI_GPU, DEEPSPEED, FSDP, MULTI_CPU, NO), precision, dropout masks. */
  worldSize: count.nullable(),
  distributedType: z.string().nullable(),
  mixedPrecision: z.string().nullable(),
  dropoutMasks: z.string().nullable(),
  zeroStage: count.nullable(),
  error: z.string().nullable(),
  startedAt: z.string().nullable(),
  /** The run's last sign of life (status.json or metrics.jsonl). */
  updatedAt: z.string().nullable(),
  followedAt: z.string(),
  /** The run completed and output/adapter is a PEFT adapter folder. */
  adapterReady: z.boolean(),
  /** The Adapters entry it was imported as. */
  adapterId: z.string().nullable(),
  /** Import the adapter by itself when the run completes. */
  autoImport: z.boolean(),
  importError: StudioErrorInfoSchema.nullable(),
  /** Lines of metrics.jsonl that could not be read (first few). */
  problems: z.array(z.string()),
});
