/**
 * The frozen tensors a webgpu session uploads, listed by name, size and packing before anything is allocated, and
 * the bytes they take on the device. No GPU import: the Train form's estimate (engine/train/memory-estimate.ts) counts
 * the same list the upload (llama-weights.ts createWeights) allocates from.
 */
import { LORA_TARGETS } from '../../../common/lora-targets.ts';
import { targetShape } from '../../model/lora.ts';
import type { LoraTargetName, ModelConfig } from '../../model/types.ts';
import { packedSizeBytes, type PackedFormat } from '../../quant/packed-weight.ts';
import { allocationBytes, dtypeBytes, type GpuDtype } from './buffer-sizes.ts';

export const LINEARS: readonly LoraTargetName[] = LORA_TARGETS;

export interface WeightSpec {
  name: string;
  size: number;
  kind: 'norm' | 'weight' | 'bias';
  /** A linear weight kept in its quantized bytes on the device (QLoRA). */
  packed?: { format: PackedFormat; rows: number; cols: number };
}

/**
 * Which linear weights stay packed on the device and in which format (QLoRA); null for a weight in the activation
 * dtype. Embedding, norms and lm_head always are (as QLoRA keeps them in 16 bits).
 */
export type LinearPacking = (layer: number, target: LoraTargetName) => PackedFormat | null;

/** Device bytes of a weight spec in the activation dtype `dtype` (packed: its bytes, in whole u32 words). */
export function specBytes(s: WeightSpec, dtype: GpuDtype): number {
  if (s.packed) return Math.max(4, Math.ceil(packedSizeBytes(s.packed.format, s.packed.rows, s.packed.cols) / 4) * 4);
  return s.size * dtypeBytes(dtype);
}

export function hasBias(cfg: ModelConfig, t: LoraTargetName): boolean {
  if (t === 'q_proj' || t === 'k_proj' || t === 'v_proj') return cfg.qkvBias;
  if (t === 'o_proj') return cfg.oBias;
  return cfg.mlpBias;
}

/** Every frozen tensor (HF names), in upload order; a tied lm_head is not listed twice. */
export function weightSpecs(cfg: ModelConfig, packing: LinearPacking | null = null): WeightSpec[] {
  const H = cfg.hiddenSize;
  const out: WeightSpec[] = [{ name: 'model.embed_tokens.weight', size: cfg.vocabSize * H, kind: 'weight' }];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}`;
    out.push({ name: `${p}.input_layernorm.weight`, size: H, kind: 'norm' });
    out.push({ name: `${p}.post_attention_layernorm.weight`, size: H, kind: 'norm' });
    if (cfg.qkNorm) {
      out.push({ name: `${p}.self_attn.q_norm.weight`, size: cfg.headDim, kind: 'norm' });
      out.push({ name: `${p}.self_attn.k_norm.weight`, size: cfg.headDim, kind: 'norm' });
    }
    for (const t of LINEARS) {
      const { outFeatures, inFeatures } = targetShape(cfg, t);
      const mod = t === 'gate_proj' || t === 'up_proj' || t === 'down_proj' ? `mlp.${t}` : `self_attn.${t}`;
      const format = packing?.(l, t) ?? null;
      const spec: WeightSpec = { name: `${p}.${mod}.weight`, size: outFeatures * inFeatures, kind: 'weight' };
      if (format) spec.packed = { format, rows: outFeatures, cols: inFeatures };
      out.push(spec);
      if (hasBias(cfg, t)) out.push({ name: `${p}.${mod}.bias`, size: outFeatures, kind: 'bias' });
    }
  }
  out.push({ name: 'model.norm.weight', size: H, kind: 'norm' });
  if (!cfg.tieWordEmbeddings) out.push({ name: 'lm_head.weight', size: cfg.vocabSize * H, kind: 'weight' });
  return out;
}

/** Bytes the frozen weights take on the device (as the allocator rounds them). */
export function weightBytes(cfg: ModelConfig, dtype: GpuDtype, packing: LinearPacking | null = null): number {
  return weightSpecs(cfg, packing).reduce((s, w) => s + allocationBytes(specBytes(w, dtype)), 0);
}
