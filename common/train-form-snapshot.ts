/**
 * The Train form as the renderer keeps it across reloads and restarts (localStorage), and as a saved-settings file
 * is read back. Stored data outlives the code that wrote it: every part is checked on load and a part that no longer
 * fits (a removed target module, a renamed choice, a hand-edited value) falls back to its default on its own, so a
 * stale value can never break the page or throw away the rest of the form.
 */
import { z } from 'zod';
import { BASE_WEIGHTS, DATASET_FORMATS, KEEP_AS, EVAL_PROMPT_MAX_CHARS, EVAL_PROMPTS_MAX, LORA_TARGETS, TRAIN_ON } from './protocol.ts';

/** Bump when the shape changes; migrateTrainFormSnapshot turns older versions into this one. */
export const TRAIN_FORM_SNAPSHOT_VERSION = 1;

const path = z.string().max(4096);
/** Number fields are kept as typed (strings, so "1e-" survives); the form validates them as usual. */
const typed = z.string().max(64);

export const TrainFormSnapshotSchema = z.object({
  version: z.literal(TRAIN_FORM_SNAPSHOT_VERSION),
  modelPath: path.catch(''),
  datasetPath: path.catch(''),
  /** The run name typed for the next run ('' or absent: generated). */
  name: z.string().max(200).optional().catch(undefined),
  numbers: z.record(z.string(), typed).catch({}),
  targets: z.array(z.enum(LORA_TARGETS)).min(1).max(LORA_TARGETS.length).optional().catch(undefined),
  data: z
    .object({
      format: z.enum(DATASET_FORMATS).optional().catch(undefined),
      trainOn: z.enum(TRAIN_ON).optional().catch(undefined),
      badRecords: z.enum(['fail', 'skip']).optional().catch(undefined),
      packing: z.boolean().optional().catch(undefined),
      validationPath: path.optional().catch(undefined),
    })
    .catch({}),
  compute: z
    .object({
      backend: z.enum(['auto', 'cpu', 'webgpu']).optional().catch(undefined),
      precision: z.enum(['fp32', 'fp16']).optional().catch(undefined),
      gradientCheckpointing: z.boolean().optional().catch(undefined),
      /** Forms kept before baseWeights: true reads as baseWeights 'f16' (form-storage.ts keptFromSnapshot). */
      frozenWeightsF16: z.boolean().optional().catch(undefined),
      baseWeights: z.enum(BASE_WEIGHTS).optional().catch(undefined),
      /** The mixed plan's layers as typed (absent in forms kept before it existed: none). */
      keepLayers: z.string().max(2000).optional().catch(undefined),
      keepAs: z.enum(KEEP_AS).optional().catch(undefined),
    })
    .catch({}),
  advanced: z
    .object({
      schedule: z.enum(['constant', 'linear', 'cosine']).optional().catch(undefined),
      rslora: z.boolean().optional().catch(undefined),
    })
    .catch({}),
  /** The evaluation prompts section as typed (absent in forms kept before it existed: off). */
  evalPrompts: z
    .object({
      enabled: z.boolean(),
      prompts: z.array(z.string().max(EVAL_PROMPT_MAX_CHARS)).min(1).max(EVAL_PROMPTS_MAX),
      everySteps: typed,
      maxNewTokens: typed,
    })
    .optional()
    .catch(undefined),
});
export type TrainFormSnapshot = z.infer<typeof TrainFormSnapshotSchema>;

/**
 * Any stored value → a snapshot of this version, or null when nothing usable is there (not an object, an unknown
 * or future version). Older versions are migrated here, one step per version, as they come to exist.
 */
export function migrateTrainFormSnapshot(raw: unknown): TrainFormSnapshot | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const parsed = TrainFormSnapshotSchema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}

/** A named preset of the Train form's settings as the user saved it (the model and dataset paths are left empty). */
export const TrainPresetSchema = z.object({
  name: z.string().trim().min(1, 'a preset needs a name').max(80, 'a preset name must be at most 80 characters'),
  savedAt: z.string().max(64).catch(''),
  snapshot: TrainFormSnapshotSchema,
});
export type TrainPreset = z.infer<typeof TrainPresetSchema>;

/**
 * The user's presets as stored: each entry is checked on its own, so one broken or future-version entry is dropped
 * and the others stay; names are kept once (the newest entry of a name wins).
 */
export function readTrainPresets(raw: unknown): TrainPreset[] {
  if (!Array.isArray(raw)) return [];
  const byName = new Map<string, TrainPreset>();
  for (const entry of raw) {
    const parsed = TrainPresetSchema.safeParse(entry);
    if (parsed.success) byName.set(parsed.data.name.toLowerCase(), parsed.data);
  }
  return [...byName.values()];
}
