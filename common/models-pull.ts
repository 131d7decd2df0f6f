/**
 * "Download from Hugging Face" (engine/io/hf-hub-download.ts, host/services/model-pull.ts): the request, its
 * progress and its end, shared by the services, the CLI and the renderer.
 */
import { z } from 'zod';
import { StudioErrorInfoSchema } from './studio-error.ts';

export const ModelsPullParamsSchema = z.object({
  repo: z.string({ message: 'type a Hugging Face model id (org/name)' }).trim().min(1, 'type a Hugging Face model id (org/name)'),
  revision: z.string().trim().min(1, 'a revision is a branch, tag or commit').optional(),
  /** One .gguf file of the repo instead of the safetensors model. */
  file: z.string().trim().min(1).optional(),
  /** For a gated or private repo; not stored (HF_TOKEN or huggingface-cli login's token file are read when absent). */
  token: z.string().trim().min(1).optional(),
});
export type ModelsPullParams = z.input<typeof ModelsPullParamsSchema>;

/** 'models.pullProgress': where a download is. */
export const ModelPullProgressSchema = z.object({
  jobId: z.string(),
  repo: z.string(),
  /** The file being fetched (its name in the repo), its place among the files and its bytes. */
  file: z.string(),
  fileIndex: z.number().int().min(0),
  files: z.number().int().min(0),
  fileBytes: z.number().min(0),
  fileTotal: z.number().min(0).nullable(),
  /** All files together (what the file list or the HEAD answers said; null when a size is unknown). */
  bytes: z.number().min(0),
  total: z.number().min(0).nullable(),
});
export type ModelPullProgress = z.infer<typeof ModelPullProgressSchema>;

export const ModelPullDoneSchema = z.object({
  repo: z.string(),
  revision: z.string(),
  commit: z.string(),
  snapshotDir: z.string(),
  /** What the model field takes: the snapshot folder, or the .gguf file in it. */
  path: z.string(),
  files: z.array(z.string()),
  /** Bytes fetched over the network by this pull (0 when everything was already in the cache). */
  downloadedBytes: z.number().min(0),
});
export type ModelPullDone = z.infer<typeof ModelPullDoneSchema>;

/** 'models.pullEnded': the path to train, or why not. */
export const ModelPullEndedSchema = z.object({
  jobId: z.string(),
  repo: z.string(),
  cancelled: z.boolean(),
  result: ModelPullDoneSchema.nullable(),
  error: StudioErrorInfoSchema.nullable(),
});
export type ModelPullEnded = z.infer<typeof ModelPullEndedSchema>;
