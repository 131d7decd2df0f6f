/**
 * Rows of f32 logits per chunk of the native cross-entropy: about 16 MiB of logits (and their gradient, written in
 * place). Each chunk is one pass over lm_head, so fewer rows cost passes; more rows cost memory that the whole
 * frozen base must compete with — at 64 MiB a 1×256 run on SmolLM-135M's 49 152-token vocabulary held all 48 MiB of
 * logits, more than its q4_0 layers weigh. PyTorch keeps all the logits and their gradient. The memory estimate
 * (engine/train/memory-estimate.ts) counts the same chunk.
 */
export function nativeChunkRows(vocab: number): number {
  return Math.max(1, Math.floor((1 << 22) / Math.max(1, vocab)));
}
