/**
 * LoRA state: creation with PEFT's initialisation, zero copies (gradients, optimizer moments), shapes, and merging
 * into the base weights.
 */
import { matmulAB } from './matmul.ts';
import type { Rng } from '../util/rng.ts';
import { decodeF16 } from '../io/f16.ts';
import { PackedWeight } from '../quant/packed-weight.ts';
import { F16Array, loraScaling, type FloatArray, type FloatArrayConstructor, type LayerWeights, type Linear, type LoraConfig, type LoraPair, type LoraTargetName, type LoraWeights, type ModelConfig, type ModelWeights } from './types.ts';
import { LORA_TARGETS } from '../../common/lora-targets.ts';
import { LoraSettingsSchema } from '../../common/protocol.ts';

/** Targets in module order inside a decoder layer (self_attn q, k, v, o; mlp gate, up, down). */
export const LORA_TARGET_ORDER: readonly LoraTargetName[] = LORA_TARGETS;

/** Re-exported from types.ts, where it lives. */
export type { FloatArrayConstructor };

/** [out, in] of the Linear a target adapts. */
export function targetShape(config: ModelConfig, target: LoraTargetName): { outFeatures: number; inFeatures: number } {
  const H = config.hiddenSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  switch (target) {
    case 'q_proj':
      return { outFeatures: qDim, inFeatures: H };
    case 'k_proj':
    case 'v_proj':
      return { outFeatures: kvDim, inFeatures: H };
    case 'o_proj':
      return { outFeatures: H, inFeatures: qDim };
    case 'gate_proj':
    case 'up_proj':
      return { outFeatures: config.intermediateSize, inFeatures: H };
    case 'down_proj':
      return { outFeatures: H, inFeatures: config.intermediateSize };
    default:
      throw new Error(`lora: unknown target module ${JSON.stringify(target)} (expected one of ${LORA_TARGET_ORDER.join(', ')})`);
  }
}

/** The frozen Linear of a decoder layer that a target adapts. */
export function linearOf(layer: LayerWeights, target: LoraTargetName): Linear {
  switch (target) {
    case 'q_proj':
      return layer.q;
    case 'k_proj':
      return layer.k;
    case 'v_proj':
      return layer.v;
    case 'o_proj':
      return layer.o;
    case 'gate_proj':
      return layer.gate;
    case 'up_proj':
      return layer.up;
    case 'down_proj':
      return layer.down;
    default:
      throw new Error(`lora: unknown target module ${JSON.stringify(target)}`);
  }
}

/**
 * Throws a message naming the field when a LoRA config cannot be used: the run config's own LoraSettingsSchema
 * (common/protocol.ts), so the engine and the form refuse the same values with the same words.
 */
export function validateLoraConfig(cfg: LoraConfig): void {
  const parsed = LoraSettingsSchema.safeParse(cfg);
  if (parsed.success) return;
  const issue = parsed.error.issues[0];
  let got: unknown = cfg;
  for (const k of issue.path) got = typeof got === 'object' && got !== null ? (got as Record<PropertyKey, unknown>)[k as PropertyKey] : undefined;
  throw new Error(`lora.${issue.path.join('.')}: ${issue.message} (got ${JSON.stringify(got)})`);
}

/**
 * New adapter as PEFT initialises it: A ~ U(−1/√in, 1/√in) (kaiming_uniform, a = √5), B = 0. Draws from `rng` layer
 * by layer, targets in module order, A row-major.
 */
export function newLora(modelConfig: ModelConfig, loraConfig: LoraConfig, rng: Rng, ArrayCtor: FloatArrayConstructor = Float32Array): LoraWeights {
  validateLoraConfig(loraConfig);
  const r = loraConfig.r;
  const layers: Partial<Record<LoraTargetName, LoraPair>>[] = [];
  for (let l = 0; l < modelConfig.numLayers; l++) {
    const layer: Partial<Record<LoraTargetName, LoraPair>> = {};
    for (const target of LORA_TARGET_ORDER) {
      if (!loraConfig.targets.includes(target)) continue;
      const { outFeatures, inFeatures } = targetShape(modelConfig, target);
      const bound = 1 / Math.sqrt(inFeatures);
      const A = new ArrayCtor(r * inFeatures);
      for (let i = 0; i < A.length; i++) A[i] = (2 * rng.uniform() - 1) * bound;
      layer[target] = { A, B: new ArrayCtor(outFeatures * r) };
    }
    layers.push(layer);
  }
  return { config: { ...loraConfig, targets: [...loraConfig.targets] }, scaling: loraScaling(loraConfig), layers };
}

function zerosOf(a: FloatArray): FloatArray {
  return a instanceof Float32Array ? new Float32Array(a.length) : new Float64Array(a.length);
}

/** Same shapes and array types, all zeros (gradients, optimizer moments). */
export function zerosLike(lora: LoraWeights): LoraWeights {
  return {
    config: { ...lora.config, targets: [...lora.config.targets] },
    scaling: lora.scaling,
    layers: lora.layers.map((layer) => {
      const out: Partial<Record<LoraTargetName, LoraPair>> = {};
      for (const target of LORA_TARGET_ORDER) {
        const p = layer[target];
        if (p !== undefined) out[target] = { A: zerosOf(p.A), B: zerosOf(p.B) };
      }
      return out;
    }),
  };
}

/** Deep copy. */
export function cloneLora(lora: LoraWeights): LoraWeights {
  const z = zerosLike(lora);
  forEachPair(lora, (target, l, p) => {
    const q = z.layers[l][target] as LoraPair;
    q.A.set(p.A);
    q.B.set(p.B);
  });
  return z;
}

/** Visits every adapted module in layer order, then module order. */
export function forEachPair(lora: LoraWeights, fn: (target: LoraTargetName, layer: number, pair: LoraPair) => void): void {
  for (let l = 0; l < lora.layers.length; l++) {
    for (const target of LORA_TARGET_ORDER) {
      const p = lora.layers[l][target];
      if (p !== undefined) fn(target, l, p);
    }
  }
}

/** Trainable parameters (all A and B entries). */
export function loraParameterCount(lora: LoraWeights): number {
  let n = 0;
  forEachPair(lora, (_t, _l, p) => {
    n += p.A.length + p.B.length;
  });
  return n;
}

/**
 * Throws naming the tensor (PEFT module path) when the adapter does not fit the model: layer count, A/B sizes.
 */
export function validateLoraForModel(model: ModelWeights, lora: LoraWeights): void {
  const cfg = model.config;
  validateLoraConfig(lora.config);
  if (lora.layers.length !== cfg.numLayers) throw new Error(`lora: adapter has ${lora.layers.length} layers, the model has num_hidden_layers = ${cfg.numLayers}`);
  const r = lora.config.r;
  forEachPair(lora, (target, l, p) => {
    const { outFeatures, inFeatures } = targetShape(cfg, target);
    const path = `layers.${l}.${target}`;
    if (p.A.length !== r * inFeatures) throw new Error(`lora: ${path}.lora_A has ${p.A.length} values, expected r ${r} × in ${inFeatures}`);
    if (p.B.length !== outFeatures * r) throw new Error(`lora: ${path}.lora_B has ${p.B.length} values, expected out ${outFeatures} × r ${r}`);
  });
}

/** New weights with W' = W + scaling·B·A on every adapted Linear; the inputs are not modified, untouched arrays are shared. */
export function mergeLora(model: ModelWeights, lora: LoraWeights): ModelWeights {
  validateLoraForModel(model, lora);
  const r = lora.config.r;
  const layers = model.layers.map((layer, l) => {
    const merged: LayerWeights = { ...layer };
    for (const target of LORA_TARGET_ORDER) {
      const p = lora.layers[l][target];
      if (p === undefined) continue;
      const lin = linearOf(layer, target);
      // An f16 or packed frozen weight merges into f32: adding the LoRA delta needs more precision than they keep.
      const weight = lin.weight instanceof F16Array ? decodeF16(lin.weight.bits) : lin.weight instanceof PackedWeight ? lin.weight.dequantize() : lin.weight instanceof Float32Array ? new Float32Array(lin.weight) : new Float64Array(lin.weight);
      matmulAB(weight, p.B, p.A, lin.outFeatures, r, lin.inFeatures, true, lora.scaling);
      const next: Linear = { ...lin, weight };
      switch (target) {
        case 'q_proj':
          merged.q = next;
          break;
        case 'k_proj':
          merged.k = next;
          break;
        case 'v_proj':
          merged.v = next;
          break;
        case 'o_proj':
          merged.o = next;
          break;
        case 'gate_proj':
          merged.gate = next;
          break;
        case 'up_proj':
          merged.up = next;
          break;
        case 'down_proj':
          merged.down = next;
          break;
      }
    }
    return merged;
  });
  return { ...model, layers };
}
