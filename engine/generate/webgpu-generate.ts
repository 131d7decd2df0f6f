/**
 * Text generation on the webgpu backend with a KV cache on the device: the prompt is run once (prefill, in chunks of
 * PREFILL_CHUNK tokens when longer), then each new token is one decode step at the next position, attending over the
 * cached keys/values. lm_head runs on the device too, so a step reads back one hidden row and the logits. Sampling
 * is generate.ts's own, so greedy output matches the cpu backend's token for token (logits agree to fp32 rounding).
 */
import type { GpuContext } from '../backend/webgpu/device.ts';
import { WebgpuLlama } from '../backend/webgpu/llama-step.ts';
import type { LoraWeights, ModelWeights } from '../model/types.ts';
import { Rng } from '../util/rng.ts';
import { sampleToken, validateGenerate, type GenerateOptions } from './generate.ts';

/** Prompt tokens per prefill pass: activations are sized for this many rows, not for the whole prompt. */
export const PREFILL_CHUNK = 512;

export interface WebgpuGenerateOptions extends GenerateOptions {
  precision?: 'fp32' | 'fp16';
  gpu?: GpuContext;
}

/** New token ids (the prompt excluded); stops at maxNewTokens or after an eos id. */
export async function generateWebgpu(model: ModelWeights, lora: LoraWeights | null, promptIds: number[], opts: WebgpuGenerateOptions): Promise<number[]> {
  validateGenerate(model, promptIds, opts);
  const out: number[] = [];
  if (opts.maxNewTokens === 0) return out;
  const session = await WebgpuLlama.create({ kind: 'host', model }, lora, {
    precision: opts.precision ?? 'fp32',
    checkpointing: false,
    maxBatchSize: 1,
    maxSeqLen: Math.min(promptIds.length, PREFILL_CHUNK),
    training: false,
    // lm_head's scratch then holds one row of logits (the default sizes it for chunks of a training batch).
    ceChunkBytes: model.config.vocabSize * 4,
    // As the cpu cache: room for every token that is fed back (the last one never is, but the sizes then agree).
    kvCacheLen: promptIds.length + opts.maxNewTokens,
    ...(opts.gpu ? { gpu: opts.gpu } : {}),
  });
  try {
    const rng = new Rng(opts.seed);
    const eos = new Set(opts.eosTokenIds);
    let step = await session.prefill(promptIds);
    for (;;) {
      const id = sampleToken(step.logits, opts.temperature, opts.topP, rng);
      out.push(id);
      const goOn = opts.onToken?.(id);
      if (goOn === false || eos.has(id) || out.length >= opts.maxNewTokens) return out;
      step = await session.decode(id);
    }
  } finally {
    session.destroy();
  }
}
