/**
 * What the studio reads about a model before training it ('models.inspect', 'models.sample') and what it finds of
 * the models already on the machine ('models.discover': the Hugging Face cache, Ollama's store, LM Studio's models
 * folder; engine/io/model-discovery.ts). The TypeScript types in common/protocol.ts are inferred from these schemas.
 */
import { z } from 'zod';

const count = z.number().int().min(0);

export const ModelSummarySchema = z.object({
  path: z.string(),
  name: z.string(),
  architecture: z.string(),
  modelType: z.string(),
  hiddenSize: count,
  layers: count,
  heads: count,
  kvHeads: count,
  vocabSize: count,
  parameters: count,
  dtype: z.string(),
  hasTokenizer: z.boolean(),
  hasChatTemplate: z.boolean(),
  /** 'gguf' for a GGUF file (llama.cpp, Ollama, LM Studio), 'hf' (or absent) for a Hugging Face folder. */
  format: z.enum(['hf', 'gguf']).optional(),
  /** Bytes on disk (the GGUF file, or the folder's weights). */
  sizeBytes: count.optional(),
});

/** Where models already on the machine are kept. */
export const MODEL_STORE_KINDS = ['hf-cache', 'ollama', 'lmstudio'] as const;

/** A model found in a store: `path` is what the model field takes (a snapshot folder, a GGUF file or Ollama blob). */
export const LocalModelSchema = z.object({
  store: z.enum(MODEL_STORE_KINDS),
  /** As the store names it: "org/name" (HF cache), "llama3.2:latest" (Ollama), "publisher/repo/file.gguf" (LM Studio). */
  name: z.string(),
  path: z.string(),
  format: z.enum(['hf', 'gguf']),
  /** Bytes on disk (the GGUF file, or every file of the snapshot). */
  sizeBytes: count,
  /** Hugging Face class name (LlamaForCausalLM…) when the model could be read, else null. */
  architecture: z.string().nullable(),
  /** GGUF: the type most bytes are stored in (Q4_K, Q8_0…); HF: the stored dtype (bfloat16…). */
  quantization: z.string().nullable(),
  parameters: count.nullable(),
  /** Why the studio cannot train it (naming the file and what is wrong); absent when it can. */
  problem: z.string().optional(),
  /** HF cache: the snapshot's commit. */
  revision: z.string().optional(),
});

export const LocalModelsInfoSchema = z.object({
  models: z.array(LocalModelSchema),
  /** Every folder that was looked in, and whether it exists. */
  searched: z.array(z.object({ store: z.enum(MODEL_STORE_KINDS), dir: z.string(), exists: z.boolean() })),
});
