/**
 * "Download from Hugging Face" (engine/io/hf-hub-download.ts, host/services/model-pull.ts): the request, its
 * progress and its end, shared by the services, the CLI and the renderer.
 */
import { z } from 'zod';
import type { StudioErrorInfo } from './protocol.ts';

export const ModelsPullParamsSchema = z.object({
  repo: z.string({ message: 'type a Hugging Face model id (org/name)' }).trim().min(1, 'type a Hugging Face model id (org/name)'),
  revision: z.string().trim().min(1, 'a revision is a branch, tag or commit').optional(),
  /** One .gguf file of the repo instead of the safetensors model. */
  file: z.string().trim().min(1).optional(),
  /** For a gated or private repo; not stored (HF_TOKEN or huggingface-cli login's token file are read when absent). */
  token: z.string().trim().min(1).optional(),
});
export type ModelsPullParams = z.input<typeof ModelsPullParamsSchema>;

export interface ModelPullProgress {
  jobId: string;
  repo: string;
  /** The file being fetched (its name in the repo), its place among the files and its bytes. */
  file: string;
  fileIndex: number;
  files: number;
  fileBytes: number;
  fileTotal: number | null;
  /** All files together (what the file list or the HEAD answers said; null when a size is unknown). */
  bytes: number;
  total: number | null;
}

export interface ModelPullDone {
  repo: string;
  revision: string;
  commit: string;
  snapshotDir: string;
  /** What the model field takes: the snapshot folder, or the .gguf file in it. */
  path: string;
  files: string[];
  /** Bytes fetched over the network by this pull (0 when everything was already in the cache). */
  downloadedBytes: number;
}

export interface ModelPullEnded {
  jobId: string;
  repo: string;
  cancelled: boolean;
  result: ModelPullDone | null;
  error: StudioErrorInfo | null;
}
