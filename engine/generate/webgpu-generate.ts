/**
 * Text generation on the webgpu backend. There is no KV cache on the device: each new token runs the whole sequence
 * forward (sequence lengths bucketed so only a few shapes get compiled) and the last position's final hidden state
 * goes through lm_head on the host. Quadratic in the length, which is fine for trying an adapter out; sampling is
 * generate.ts's own, so greedy output matches the cpu backend's token for token.
 */
import { matmulABt } from '../backend/cpu/matmul.ts';
import type { GpuContext } from '../backend/webgpu/device.ts';
import { WebgpuLlama } from '../backend/webgpu/llama-step.ts';
import { IGNORE_INDEX, type Batch, type LoraWeights, type ModelWeights } from '../model/types.ts';
import { padBatchTo, SEQ_BUCKET } from '../train/webgpu-trainer-backend.ts';
import { Rng } from '../util/rng.ts';
import { sampleToken, type GenerateOptions } from './generate.ts';

/** logits = lm_head · h for one hidden row (f64 accumulation; the cpu backend's order of magnitude of error). */
function lmHeadRow(model: ModelWeights, h: Float32Array, offset: number): Float32Array {
  const { vocabSize: V, hiddenSize: H } = model.config;
  const out = new Float32Array(V);
  // One f64 sum per logit in hidden order, rounded once; also decodes an f16 lm_head block by block.
  matmulABt(out, h.subarray(offset, offset + H), model.lmHead, null, 1, H, V);
  return out;
}

export interface WebgpuGenerateOptions extends GenerateOptions {
  precision?: 'fp32' | 'fp16';
  gpu?: GpuContext;
}

/** New token ids (the prompt excluded); stops at maxNewTokens or after an eos id. */
export async function generateWebgpu(model: ModelWeights, lora: LoraWeights | null, promptIds: number[], opts: WebgpuGenerateOptions): Promise<number[]> {
  const V = model.config.vocabSize;
  if (promptIds.length === 0) throw new Error('generate: the prompt is empty (needs at least one token, e.g. bos)');
  promptIds.forEach((id, i) => {
    if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new Error(`generate: prompt token ${i} = ${id} is outside the vocabulary [0, ${V})`);
  });
  if (!(Number.isInteger(opts.maxNewTokens) && opts.maxNewTokens >= 0)) throw new Error(`generate: maxNewTokens must be a non-negative integer, got ${opts.maxNewTokens}`);
  const out: number[] = [];
  if (opts.maxNewTokens === 0) return out;
  const maxLen = promptIds.length + opts.maxNewTokens;
  const session = await WebgpuLlama.create({ kind: 'host', model }, lora, {
    precision: opts.precision ?? 'fp32',
    checkpointing: false,
    maxBatchSize: 1,
    maxSeqLen: maxLen,
    training: false,
    ...(opts.gpu ? { gpu: opts.gpu } : {}),
  });
  try {
    const rng = new Rng(opts.seed);
    const eos = new Set(opts.eosTokenIds);
    const ids = [...promptIds];
    for (;;) {
      const T = ids.length;
      const batch: Batch = { batchSize: 1, seqLen: T, inputIds: Int32Array.from(ids), labels: new Int32Array(T).fill(IGNORE_INDEX) };
      const padded = padBatchTo(batch, 1, Math.min(maxLen, Math.ceil(T / SEQ_BUCKET) * SEQ_BUCKET), 0);
      const hidden = await session.finalHidden(padded);
      const id = sampleToken(lmHeadRow(model, hidden, (T - 1) * model.config.hiddenSize), opts.temperature, opts.topP, rng);
      out.push(id);
      ids.push(id);
      const goOn = opts.onToken?.(id);
      if (goOn === false || eos.has(id) || out.length >= opts.maxNewTokens) return out;
    }
  } finally {
    session.destroy();
  }
}
