/**
 * A run as the services answer it ('runs.get', 'runs.list', the run.* replies) and push it ('run.updated'): its
 * configuration as validated at the start, where it is, and the bookkeeping of its queue and checkpoints. The
 * TypeScript type RunSummary (common/protocol.ts) is inferred from this schema.
 *
 * Imports only zod and run-config.ts, so protocol.ts can re-export RUN_STATES from here without a cycle.
 */
import { z } from 'zod';
import { RunConfigSchema } from './run-config.ts';

export const RUN_STATES = ['pending', 'validating', 'queuing', 'executing', 'finalizing', 'completed', 'failed', 'cancelled', 'paused'] as const;

const count = z.number().int().min(0);
const when = z.string();

export const RunSummarySchema = z.object({
  id: z.string(),
  /** Given at the start (config.name) or generated; renamed with 'runs.update'. */
  name: z.string(),
  /** What the person wrote about the run ('runs.update'); '' when nothing. */
  notes: z.string().optional(),
  /** Short labels the Runs list filters by ('runs.update'). */
  tags: z.array(z.string()).optional(),
  state: z.enum(RUN_STATES),
  config: RunConfigSchema,
  createdAt: when,
  updatedAt: when,
  step: count,
  totalSteps: count,
  /** A step without target tokens has no loss: null (also before the first step). */
  lastLoss: z.number().nullable(),
  tokensPerSecond: z.number().min(0).nullable(),
  /** Milliseconds left, estimated from the recent step time. */
  etaMs: z.number().min(0).nullable(),
  error: z.string().nullable(),
  adapterId: z.string().nullable(),
  backend: z.string().nullable(),
  /** Higher starts first among waiting runs (default 0). */
  priority: z.number().int().optional(),
  /** What the run is queued on and counted against ('cpu', 'webgpu'). */
  device: z.string().optional(),
  /** 1-based place among the runs waiting for the same device; null when not waiting. */
  queuePosition: z.number().int().min(1).nullable().optional(),
  /** Times the run continued from a checkpoint (after a crash, a pause or a failure). */
  resumeCount: count.optional(),
  /** Step of the newest checkpoint, null before the first one. */
  checkpointStep: count.nullable().optional(),
  /** Folder of that checkpoint on the services' disk. */
  checkpointPath: z.string().nullable().optional(),
  startedAt: when.nullable().optional(),
  finishedAt: when.nullable().optional(),
});
