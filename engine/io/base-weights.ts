/**
 * What the run's base-weights setting (RunConfig train.baseWeights, common/protocol.ts BASE_WEIGHTS) makes of each
 * frozen tensor of a model, decided from the file's headers alone: the loaders follow this plan tensor by tensor, and
 * the memory estimate counts the same plan, so "needs X GiB" and what is loaded cannot drift apart.
 *
 * - 'f32' / 'f16': every frozen matrix (linears, embed_tokens, lm_head) as floats of that width.
 * - 'as-stored': a GGUF's linears of type q8_0/q4_0/q4_1/q4_k/q6_k stay in their ggml blocks; other quantized types
 *   and F16 become f16; F32/BF16 stay f32. A Hugging Face folder keeps its dtype: F16 stays f16, anything else f32.
 * - a quantize-at-load format: every layer linear is quantized to it as it is read (the f32 copy of the whole model
 *   never exists; one tensor at a time).
 * embed_tokens and an untied lm_head (each planned on its own):
 * - quantize-at-load (any packed format): q8_0 (f16 when the row is not a whole number of 32-value blocks). They are
 *   the most sensitive matrices (every token's input, every logit), so not 4-bit: llama.cpp's Q4 files keep them at
 *   q8_0/q6_k too. Packed, they are decoded a row / a panel at a time (the lookup, the cross-entropy's products).
 * - as-stored GGUF: the file's own type when it is a packed format (q8_0/q4_0/q4_1/q4_k/q6_k), else f16 — f32 when
 *   the file holds them as F32/BF16. A Hugging Face folder: as its linears (F16 stays f16, anything else f32).
 * - f32 / f16: that.
 * A mixed plan (train.baseWeightsKeep, the quantization lab's suggestion) holds the seven linears of the layers it
 * names as its `as` (f16, or q8_0 under a 4-bit base) instead — only under a quantize-at-load setting, where the
 * source still has the precision to keep (a GGUF stored as Q4 has none left to give back).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { baseWeightsOf, isPackedBase, QUANTIZE_AT_LOAD_FORMATS, TrainSettingsSchema, type BaseWeights, type BaseWeightsKeep, type LoraTarget } from '../../common/protocol.ts';
import type { ModelConfig } from '../model/types.ts';
import { checkPackedShape, isPackedFormat, PACKED_GGML_TYPES, type PackedFormat } from '../quant/packed-weight.ts';
import { GGML_TYPE } from '../quant/gguf-types.ts';
import type { GgufFile } from '../quant/gguf-reader.ts';
import { LORA_TARGETS } from '../../common/lora-targets.ts';

export { baseWeightsOf, isPackedBase };
export type { BaseWeights, BaseWeightsKeep };

/** How one frozen matrix is held. */
export type HeldAs = 'f32' | 'f16' | PackedFormat;

export const LINEAR_TARGETS: readonly LoraTarget[] = LORA_TARGETS;

/** The Hugging Face name of a layer's linear weight. */
export function linearName(layer: number, t: LoraTarget): string {
  const mod = t === 'gate_proj' || t === 'up_proj' || t === 'down_proj' ? `mlp.${t}` : `self_attn.${t}`;
  return `model.layers.${layer}.${mod}.weight`;
}

/** A base-weights setting that cannot be applied to a tensor (a row that is not a whole number of blocks…). */
export class BaseWeightsError extends Error {
  constructor(
    message: string,
    readonly field: 'train.baseWeights' | 'train.baseWeightsKeep' = 'train.baseWeights',
  ) {
    super(message);
    this.name = 'BaseWeightsError';
  }
}

export interface BasePlan {
  setting: BaseWeights;
  /** The layers held otherwise (a mixed plan), as given; null when none. */
  keep: BaseWeightsKeep | null;
  /** Each layer linear's holding. */
  linear: (layer: number, t: LoraTarget) => HeldAs;
  /** embed_tokens (and a tied lm_head). */
  embedding: HeldAs;
  /** An untied lm_head.weight; the same as embedding when tied. */
  lmHead: HeldAs;
  /** Whether any linear is packed (the QLoRA path). */
  packed: boolean;
}

/** Where the stored types come from: a GGUF file's tensor types, or a folder's safetensors dtypes (by HF name). */
export type StoredTypes = { kind: 'gguf'; typeOf: (hfName: string) => number } | { kind: 'hf'; dtypeOf: (hfName: string) => string };

const GGML_TO_PACKED = new Map<number, PackedFormat>(Object.entries(PACKED_GGML_TYPES).map(([f, t]) => [t as number, f as PackedFormat]));

function storedHolding(stored: StoredTypes, name: string): HeldAs {
  if (stored.kind === 'hf') return stored.dtypeOf(name) === 'F16' ? 'f16' : 'f32';
  const type = stored.typeOf(name);
  const packed = GGML_TO_PACKED.get(type);
  if (packed) return packed;
  if (type === GGML_TYPE.F32 || type === GGML_TYPE.BF16) return 'f32';
  return 'f16';
}

/** Refuses a mixed plan the setting or the model cannot take, naming the layer (field train.baseWeightsKeep). */
function checkKeep(config: ModelConfig, setting: BaseWeights, keep: BaseWeightsKeep): void {
  if (!(QUANTIZE_AT_LOAD_FORMATS as readonly string[]).includes(setting)) {
    throw new BaseWeightsError(
      `keeping layers at higher precision needs a base quantized at load (${QUANTIZE_AT_LOAD_FORMATS.join(', ')}); with base weights ${setting} ${setting === 'as-stored' ? "a GGUF's layers are already quantized and have no precision left to keep" : 'every layer is already held as floats'}`,
      'train.baseWeightsKeep',
    );
  }
  const beyond = keep.layers.find((l) => l >= config.numLayers);
  if (beyond !== undefined) throw new BaseWeightsError(`layer ${beyond} cannot be kept: the model has ${config.numLayers} layers (0 to ${config.numLayers - 1})`, 'train.baseWeightsKeep');
}

/**
 * The plan for a model; throws BaseWeightsError naming the tensor and its shape when a format cannot hold it, or the
 * layer a mixed plan (`keep`) cannot keep.
 */
export function planBaseWeights(config: ModelConfig, setting: BaseWeights, stored: StoredTypes | null, keep: BaseWeightsKeep | null = null): BasePlan {
  if (keep) checkKeep(config, setting, keep);
  const kept = new Set(keep?.layers ?? []);
  const targets = new Map<string, HeldAs>();
  const shapes: Record<LoraTarget, [number, number]> = {
    q_proj: [config.numHeads * config.headDim, config.hiddenSize],
    k_proj: [config.numKvHeads * config.headDim, config.hiddenSize],
    v_proj: [config.numKvHeads * config.headDim, config.hiddenSize],
    o_proj: [config.hiddenSize, config.numHeads * config.headDim],
    gate_proj: [config.intermediateSize, config.hiddenSize],
    up_proj: [config.intermediateSize, config.hiddenSize],
    down_proj: [config.hiddenSize, config.intermediateSize],
  };
  let packed = false;
  for (let l = 0; l < config.numLayers; l++) {
    for (const t of LINEAR_TARGETS) {
      const name = linearName(l, t);
      let held: HeldAs;
      if (setting === 'f32' || setting === 'f16') held = setting;
      else if (setting === 'as-stored') held = stored ? storedHolding(stored, name) : 'f32';
      else held = keep && kept.has(l) ? keep.as : setting;
      if (isPackedFormat(held)) {
        const [rows, cols] = shapes[t];
        try {
          checkPackedShape(held, rows, cols);
        } catch (e) {
          throw new BaseWeightsError(
            `base weights ${setting}${held !== setting ? ` (layer ${l} kept as ${held})` : ''}: tensor '${name}' [${rows}, ${cols}] cannot be held as ${held}: ${e instanceof Error ? e.message : String(e)}; choose another format or f16`,
            held !== setting ? 'train.baseWeightsKeep' : 'train.baseWeights',
          );
        }
        packed = true;
      }
      targets.set(`${l}.${t}`, held);
    }
  }
  const embedding = embeddingHolding(config, setting, stored, 'model.embed_tokens.weight');
  const lmHead = config.tieWordEmbeddings ? embedding : embeddingHolding(config, setting, stored, 'lm_head.weight');
  return { setting, keep, linear: (l, t) => targets.get(`${l}.${t}`) ?? 'f32', embedding, lmHead, packed };
}

/** How embed_tokens / an untied lm_head ([vocab, hidden]) is held under the setting (see the header). */
function embeddingHolding(config: ModelConfig, setting: BaseWeights, stored: StoredTypes | null, name: string): HeldAs {
  if (setting === 'f32' || setting === 'f16') return setting;
  let held: HeldAs;
  if (setting === 'as-stored') {
    if (!stored) return 'f32';
    held = storedHolding(stored, name);
    if (stored.kind === 'hf') return held;
  } else held = 'q8_0';
  if (!isPackedFormat(held)) return held;
  try {
    checkPackedShape(held, config.vocabSize, config.hiddenSize);
    return held;
  } catch {
    // A hidden size the blocks do not divide: 16 bits, as before packed embeddings.
    return 'f16';
  }
}

/** Stored types of an opened GGUF (names mapped by the caller's Hugging Face → GGUF mapping). */
export function ggufStoredTypes(file: GgufFile, ggufName: (hfName: string) => string): StoredTypes {
  return {
    kind: 'gguf',
    typeOf: (hfName) => {
      const t = file.byName.get(ggufName(hfName));
      if (!t) throw new BaseWeightsError(`${file.path}: tensor '${ggufName(hfName)}' is missing`);
      return t.type;
    },
  };
}

/** Which held-as a frozen tensor of the given HF name gets under the plan. */
export function heldAsOf(plan: BasePlan, hfName: string): HeldAs {
  const m = /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+_proj)\.weight$/.exec(hfName);
  if (m) return plan.linear(Number(m[1]), m[2] as LoraTarget);
  return hfName === 'lm_head.weight' ? plan.lmHead : plan.embedding;
}

function readJson(path: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** How a run held its base: the setting and its mixed plan. */
export interface TrainedBase {
  baseWeights: BaseWeights;
  keep: BaseWeightsKeep | null;
}

/** A run's held base in words: "q4_0", "q4_0 with layers 0, 29 kept as q8_0". */
export function describeBase(b: TrainedBase): string {
  if (!b.keep) return b.baseWeights;
  const l = b.keep.layers;
  return `${b.baseWeights} with layer${l.length === 1 ? '' : 's'} ${l.join(', ')} kept as ${b.keep.as}`;
}

/**
 * The base weights the adapter was trained on, from its run's run.json (config.train): an adapter trained on a
 * quantized base is tried on that same base, not on a float one it never saw. The run's own adapter folder sits in
 * runs/<id>/adapter (or <out>/adapter of `lora-studio train`); a studio adapter in adapters/<id> names its run in
 * adapters/<id>.json (runs/ is its sibling).
 * Null when no run.json is found or it was trained on another model.
 */
export function trainingBaseWeights(adapterPath: string, modelPath: string): TrainedBase | null {
  const dir = resolve(adapterPath);
  const candidates = [join(dir, '..', 'run.json')];
  const runId = readJson(`${dir}.json`)?.runId;
  if (typeof runId === 'string' && /^[\w.-]+$/.test(runId)) candidates.push(join(dirname(dir), '..', 'runs', runId, 'run.json'));
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    // The studio writes the run record ({ config, … }); `lora-studio train` writes the RunConfig itself.
    const json = readJson(file);
    const config = json && typeof json.config === 'object' && json.config !== null ? json.config : json;
    if (typeof config !== 'object' || config === null) continue;
    const { modelPath: trainedOn, train } = config as { modelPath?: unknown; train?: unknown };
    if (typeof trainedOn !== 'string' || resolve(trainedOn) !== resolve(modelPath)) continue;
    const parsed = TrainSettingsSchema.pick({ baseWeights: true, frozenWeightsF16: true, baseWeightsKeep: true }).safeParse(train);
    if (parsed.success) return { baseWeights: baseWeightsOf(parsed.data), keep: parsed.data.baseWeightsKeep ?? null };
  }
  return null;
}
