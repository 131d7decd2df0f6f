/**
 * The memory a run will need at its peak, by part, before it starts ('runs.estimateMemory'; the engine computes it
 * in engine/train/memory-estimate.ts). Bytes throughout. The TypeScript types in common/protocol.ts are inferred.
 */
import { z } from 'zod';

const bytes = z.number().min(0);

export const MemoryEstimateInfoSchema = z.object({
  backend: z.enum(['cpu', 'webgpu']),
  tokensPerMicroBatch: z.number().int().min(0),
  parameters: z.object({ base: z.number().int().min(0), trainable: z.number().int().min(0) }),
  weights: bytes,
  lora: bytes,
  gradients: bytes,
  optimizer: bytes,
  data: bytes,
  /** With the run's own gradientCheckpointing setting; the two below are both ways, for the form's hint. */
  activations: bytes,
  activationsWithoutCheckpointing: bytes,
  activationsWithCheckpointing: bytes,
  logitsChunk: bytes,
  total: bytes,
  totalWithoutCheckpointing: bytes,
  totalWithCheckpointing: bytes,
});

/** 'runs.estimateMemory': the estimate and what this machine has. */
export const MemoryEstimateReplySchema = z.object({ estimate: MemoryEstimateInfoSchema, systemMemoryBytes: bytes, freeMemoryBytes: bytes });
