/**
 * 'adapters.exportMerged': an adapter merged into its base (W + scaling·B·A) and written as a model of its own into a
 * new folder: a Hugging Face folder (safetensors in f32, the base's tokenizer and chat template) or one GGUF file.
 * Runs anywhere: imports nothing but zod.
 */
import { z } from 'zod';

export const MERGED_EXPORT_FORMATS = ['hf-safetensors', 'hf-safetensors-f16', 'hf-safetensors-bf16', 'gguf-f16', 'gguf-q8_0', 'gguf-q4_0'] as const;
export type MergedExportFormat = (typeof MERGED_EXPORT_FORMATS)[number];

/** The Hugging Face folder formats and the safetensors dtype each writes (f16/bf16: half the bytes of f32). */
export const HF_MERGED_DTYPE = { 'hf-safetensors': 'F32', 'hf-safetensors-f16': 'F16', 'hf-safetensors-bf16': 'BF16' } as const;
export type HfMergedFormat = keyof typeof HF_MERGED_DTYPE;
export const isHfMergedFormat = (f: MergedExportFormat): f is HfMergedFormat => Object.hasOwn(HF_MERGED_DTYPE, f);

export const MERGED_FORMAT_LABELS: Record<MergedExportFormat, string> = {
  'hf-safetensors': 'Hugging Face folder (safetensors, f32)',
  'hf-safetensors-f16': 'Hugging Face folder (safetensors, f16)',
  'hf-safetensors-bf16': 'Hugging Face folder (safetensors, bf16)',
  'gguf-f16': 'GGUF F16',
  'gguf-q8_0': 'GGUF Q8_0',
  'gguf-q4_0': 'GGUF Q4_0',
};

/** An absolute path: the services may run on another machine, so "relative to what" has no answer. */
const absolute = (what: string) =>
  z
    .string({ message: `choose ${what}` })
    .min(1, `choose ${what}`)
    .refine((p) => p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\\\'), { message: `${what} must be an absolute path` });

export const MergedExportParamsSchema = z.object({
  id: z.string({ message: 'id is required' }).min(1, 'id is required'),
  format: z.enum(MERGED_EXPORT_FORMATS, { message: `format must be one of ${MERGED_EXPORT_FORMATS.join(', ')}` }),
  destination: absolute('a folder to write into'),
  modelPath: absolute('the base model').optional(),
});
export type MergedExportParams = z.input<typeof MergedExportParamsSchema>;

export const MergedExportResultSchema = z.object({
  /** The folder written. */
  dir: z.string(),
  format: z.enum(MERGED_EXPORT_FORMATS),
  /** Files written in it (names), and their total size. */
  files: z.array(z.string()),
  bytes: z.number().int().min(0),
  /** The base the adapter was merged into. */
  modelPath: z.string(),
  /** What general.description / the safetensors metadata say was merged. */
  note: z.string(),
  /** A warning (e.g. no tokenizer found for the GGUF metadata), or null. */
  warning: z.string().nullable(),
});
export type MergedExportResult = z.output<typeof MergedExportResultSchema>;

/** The merge itself, sent to its worker (engine/export/merged-worker.ts) once the request was checked. */
export interface MergedExportCommand {
  type: 'merged.export';
  modelPath: string;
  adapterDir: string;
  format: MergedExportFormat;
  /** The folder to write into (the HF folder itself, or the folder the GGUF goes in). */
  destination: string;
  /** GGUF: the file is `<stem>-merged-<format>.gguf` in `destination`, and `name` the model name in its metadata. */
  stem: string;
  name: string;
}

export type MergedExportEvent = { type: 'done'; result: MergedExportResult } | { type: 'error'; message: string; file?: string; line?: number; field?: string };
