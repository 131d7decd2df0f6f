/**
 * The FLOP count behind every MFU figure the benchmarks print. bench/peft_reference.py carries the same formula,
 * line for line (`training_flops`); change both or neither.
 *
 * Per training step of B sequences of T tokens (N = B·T), LoRA rank r:
 *
 *   P_mm   = L · (H·(nH·d) + 2·H·(nKV·d) + (nH·d)·H + 3·H·I) + V·H
 *            every frozen matmul weight a token passes through: q, k, v, o, gate, up, down and the lm_head
 *            (counted even when tied to the embedding; the embedding lookup itself is no matmul)
 *   P_lora = Σ over adapted linears of r·(in + out)
 *   A_fwd  = B · L · nH · 2·d · T·(T+1)
 *            causal attention: QKᵀ and P·V each cost 2·d per (query, key) pair, and a causal row t sees t+1 keys
 *
 *   FLOPs  = N · (2·P_mm + 2·P_mm) + N · 6·P_lora + 3·A_fwd
 *            frozen weights: forward 2·P per token plus 2·P for the input gradient (no weight gradient);
 *            LoRA weights: forward 2·P, input gradient 2·P, weight gradient 2·P;
 *            attention: forward once, backward twice (gradients for both operands of both products).
 *
 * Model FLOPs, not hardware FLOPs: the forward that gradient checkpointing recomputes, the score recomputation of a
 * flash-style backward, norms, RoPE, softmax, SwiGLU and the optimizer are not counted, so a run with checkpointing
 * shows a lower MFU for the same work, as it should. MFU = FLOPs / (step seconds · peak FLOP/s).
 *
 * Checked against torch.utils.flop_counter (`peft_reference.py --count-flops --attn eager`, no checkpointing): the
 * counter's matmul FLOPs equal this count less layer 0's q/k/v input gradients, which autograd skips because the
 * frozen embedding needs none (2·N·(P_q+P_k+P_v) + 2·N·r·3·H for one layer; under 1% on the tiny shape, 0.04% at 7B).
 */
import { LORA_TARGETS } from '../common/lora-targets.ts';

/** The dimensions the count needs; an engine ModelConfig fits as is. */
export interface FlopShape {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
}

export const ALL_TARGETS = LORA_TARGETS;
export type FlopTarget = (typeof ALL_TARGETS)[number];

export interface FlopCount {
  /** Frozen matmul weights a token passes through (P_mm). */
  matmulParams: number;
  /** Trainable LoRA parameters (P_lora). */
  loraParams: number;
  /** Forward attention FLOPs over the whole batch (A_fwd). */
  attentionForward: number;
  /** FLOPs of one training step. */
  total: number;
}

/** [in, out] of one linear layer. */
export function linearDims(s: FlopShape, t: FlopTarget): [number, number] {
  const q = s.numHeads * s.headDim;
  const kv = s.numKvHeads * s.headDim;
  switch (t) {
    case 'q_proj':
      return [s.hiddenSize, q];
    case 'k_proj':
    case 'v_proj':
      return [s.hiddenSize, kv];
    case 'o_proj':
      return [q, s.hiddenSize];
    case 'gate_proj':
    case 'up_proj':
      return [s.hiddenSize, s.intermediateSize];
    case 'down_proj':
      return [s.intermediateSize, s.hiddenSize];
  }
}

export function trainingFlops(s: FlopShape, lora: { r: number; targets: readonly FlopTarget[] }, batch: number, seq: number): FlopCount {
  let perLayer = 0;
  for (const t of ALL_TARGETS) {
    const [i, o] = linearDims(s, t);
    perLayer += i * o;
  }
  const matmulParams = s.numLayers * perLayer + s.vocabSize * s.hiddenSize;
  let loraPerLayer = 0;
  for (const t of new Set(lora.targets)) {
    const [i, o] = linearDims(s, t);
    loraPerLayer += lora.r * (i + o);
  }
  const loraParams = s.numLayers * loraPerLayer;
  const attentionForward = batch * s.numLayers * s.numHeads * 2 * s.headDim * seq * (seq + 1);
  const tokens = batch * seq;
  const total = tokens * 4 * matmulParams + tokens * 6 * loraParams + 3 * attentionForward;
  return { matmulParams, loraParams, attentionForward, total };
}

/** The fields of a Hugging Face LLaMA-family config.json the count reads. */
export function flopShapeFromHf(hf: Record<string, unknown>): FlopShape {
  const num = (k: string): number => {
    const v = hf[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error(`config.json: ${k} must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const hidden = num('hidden_size');
  const heads = num('num_attention_heads');
  return {
    hiddenSize: hidden,
    numLayers: num('num_hidden_layers'),
    numHeads: heads,
    numKvHeads: hf.num_key_value_heads === undefined ? heads : num('num_key_value_heads'),
    headDim: hf.head_dim === undefined || hf.head_dim === null ? hidden / heads : num('head_dim'),
    intermediateSize: num('intermediate_size'),
    vocabSize: num('vocab_size'),
  };
}

/**
 * Dense peak TFLOP/s by device name and precision, as the vendors' data sheets give them (no sparsity). fp32 is the
 * plain FP32 rate: PyTorch does not use TF32 for matmuls by default, and WGSL has no TF32.
 */
export const PEAK_TFLOPS: readonly { match: RegExp; name: string; fp16: number; bf16: number; fp32: number }[] = [
  { match: /H100.*PCIe/i, name: 'H100 PCIe', fp16: 756.5, bf16: 756.5, fp32: 51.2 },
  { match: /H100/i, name: 'H100 SXM', fp16: 989.4, bf16: 989.4, fp32: 66.9 },
  { match: /H200/i, name: 'H200', fp16: 989.4, bf16: 989.4, fp32: 66.9 },
  { match: /A100/i, name: 'A100', fp16: 312, bf16: 312, fp32: 19.5 },
  // GeForce: the fp16 rate with fp32 accumulation (what our kernels and autocast use), half the fp16-accumulate one.
  { match: /RTX 4090/i, name: 'RTX 4090', fp16: 165.2, bf16: 165.2, fp32: 82.6 },
  { match: /\bL4\b/i, name: 'L4', fp16: 121, bf16: 121, fp32: 30.3 },
];

/** The table's peak for a device name, or null when the device is not in it. */
export function peakTflopsFor(deviceName: string, precision: 'fp16' | 'bf16' | 'fp32'): number | null {
  const row = PEAK_TFLOPS.find((r) => r.match.test(deviceName));
  return row ? row[precision] : null;
}

/** Model FLOPs utilisation, or null without a peak to compare with. */
export function mfu(flopsPerStep: number, stepMs: number, peakFlopsPerSecond: number | null): number | null {
  if (peakFlopsPerSecond === null || !(peakFlopsPerSecond > 0) || !(stepMs > 0)) return null;
  return flopsPerStep / (stepMs / 1000) / peakFlopsPerSecond;
}
