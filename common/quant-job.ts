/**
 * A quantization-lab job as the services answer it ('quant.start', 'quant.get', 'quant.list', 'quant.cancel') and
 * push it at its end ('quant.done', 'quant.failed'). The request is the one 'quant.start' accepted
 * (request-schemas.ts QuantStartParamsSchema checks what is sent); here it is read as stored, so a job an older studio
 * kept on disk with a format this one no longer lists still shows. Types in common/protocol.ts are inferred.
 */
import { z } from 'zod';
import { QUANT_ADAPTER_MODES } from './quant-formats.ts';
import { StudioErrorInfoSchema } from './studio-error.ts';

const count = z.number().int().min(0);

/** Where a lab job is ('quant.progress', and the job's last progress). */
export const QuantProgressSchema = z.object({
  jobId: z.string(),
  phase: z.enum(['loading', 'weights', 'calibration']),
  /** Steps of this phase. */
  done: count,
  total: count,
  /** Format (report key) being measured; '' while loading. */
  format: z.string(),
  /** Whole job, 0..1. */
  fraction: z.number().min(0).max(1),
});

export const QUANT_JOB_STATES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;

/** What one lab job measures (the fields are explained on QuantStartParamsSchema). */
export const QuantJobRequestSchema = z.object({
  modelPath: z.string(),
  adapterPath: z.string().optional(),
  formats: z.array(z.string()),
  adapterModes: z.array(z.enum(QUANT_ADAPTER_MODES)).optional(),
  calibPath: z.string().optional(),
  useSampleCalib: z.boolean().optional(),
  calibTokens: z.number().int().optional(),
  calibSeqLen: z.number().int().optional(),
  thresholds: z.object({ relErr: z.number().optional(), kl: z.number().optional(), multiplier: z.number().optional() }).optional(),
});

export const QuantJobSummarySchema = z.object({
  id: z.string(),
  state: z.enum(QUANT_JOB_STATES),
  request: QuantJobRequestSchema,
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  progress: QuantProgressSchema.nullable(),
  error: StudioErrorInfoSchema.nullable(),
});
