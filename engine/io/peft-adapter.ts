/**
 * PEFT LoRA adapter folders: adapter_model.safetensors + adapter_config.json, readable by
 * `PeftModel.from_pretrained` and written the way PEFT 0.21 writes them (keys without the adapter name).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FloatArray, LoraConfig, LoraPair, LoraTargetName, LoraWeights, ModelConfig } from '../model/types.ts';
import { loraModulePath, loraScaling } from '../model/types.ts';
import { writeFileAtomic } from './atomic.ts';
import { SafetensorsFile, writeSafetensors, type WriteTensor } from './safetensors.ts';
import { LORA_TARGETS } from '../../common/lora-targets.ts';

export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';

const TARGET_ORDER: readonly LoraTargetName[] = LORA_TARGETS;

export class AdapterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdapterError';
  }
}

/** [out, in] of the base Linear a target adapts. */
export function targetShape(c: ModelConfig, target: LoraTargetName): { out: number; in: number } {
  const H = c.hiddenSize;
  switch (target) {
    case 'q_proj':
      return { out: c.numHeads * c.headDim, in: H };
    case 'k_proj':
    case 'v_proj':
      return { out: c.numKvHeads * c.headDim, in: H };
    case 'o_proj':
      return { out: H, in: c.numHeads * c.headDim };
    case 'gate_proj':
    case 'up_proj':
      return { out: c.intermediateSize, in: H };
    case 'down_proj':
      return { out: H, in: c.intermediateSize };
  }
}

/** PEFT's state-dict key of lora_A / lora_B of a target in layer i. */
export function adapterKey(layer: number, target: LoraTargetName, which: 'A' | 'B'): string {
  return `base_model.model.model.layers.${layer}.${loraModulePath(target)}.lora_${which}.weight`;
}

/** adapter_config.json content PEFT reads back into an equivalent LoraConfig. */
export function adapterConfigJson(cfg: LoraConfig, baseModelNameOrPath: string): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    auto_mapping: null,
    base_model_name_or_path: baseModelNameOrPath,
    revision: null,
    inference_mode: true,
    r: cfg.r,
    lora_alpha: cfg.alpha,
    lora_dropout: cfg.dropout,
    target_modules: TARGET_ORDER.filter((t) => cfg.targets.includes(t)),
    exclude_modules: null,
    bias: 'none',
    fan_in_fan_out: false,
    use_rslora: cfg.rslora,
    use_dora: false,
    init_lora_weights: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
  };
}

export interface SaveAdapterOptions {
  /** Written as base_model_name_or_path (a hub id or the base model's folder). */
  baseModelNameOrPath: string;
}

/** Writes the adapter into `dir` (created if needed); each file is replaced atomically, weights first. */
export function saveAdapter(dir: string, lora: LoraWeights, opts: SaveAdapterOptions): void {
  mkdirSync(dir, { recursive: true });
  const tensors: WriteTensor[] = [];
  lora.layers.forEach((layer, i) => {
    for (const target of TARGET_ORDER) {
      const pair = layer[target];
      if (!pair) continue;
      const r = lora.config.r;
      const inF = pair.A.length / r;
      const outF = pair.B.length / r;
      if (!Number.isInteger(inF) || !Number.isInteger(outF)) {
        throw new AdapterError(`saveAdapter: layer ${i} ${target}: A has ${pair.A.length} values and B ${pair.B.length}, not multiples of r = ${r}`);
      }
      tensors.push({ name: adapterKey(i, target, 'A'), dtype: 'F32', shape: [r, inF], data: pair.A });
      tensors.push({ name: adapterKey(i, target, 'B'), dtype: 'F32', shape: [outF, r], data: pair.B });
    }
  });
  if (tensors.length === 0) throw new AdapterError('saveAdapter: the adapter has no LoRA weights');
  writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
  writeFileAtomic(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(adapterConfigJson(lora.config, opts.baseModelNameOrPath), null, 2) + '\n');
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * PEFT key → (layer, target, A|B). Accepts PEFT's saved form and variants other tools write: with an adapter name
 * (`lora_A.default.weight`), or without the `base_model.model.` prefix.
 */
const KEY_RE = /^(?:base_model\.model\.)?(?:model\.)?layers\.(\d+)\.(self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.lora_(A|B)(?:\.[A-Za-z0-9_-]+)?\.weight$/;

export function parseAdapterKey(key: string): { layer: number; target: LoraTargetName; which: 'A' | 'B' } | null {
  const m = KEY_RE.exec(key);
  if (!m) return null;
  const target = m[3] as LoraTargetName;
  const expectedModule = loraModulePath(target).split('.')[0];
  if (m[2] !== expectedModule) return null;
  return { layer: Number(m[1]), target, which: m[4] as 'A' | 'B' };
}

interface ParsedAdapterConfig {
  r: number;
  alpha: number;
  dropout: number;
  rslora: boolean;
  baseModelNameOrPath: string | null;
  targetModules: string[] | string | null;
}

/** Reads and validates adapter_config.json (the fields the engine honours, refusing the ones it cannot). */
export function readAdapterConfig(dir: string): ParsedAdapterConfig {
  const file = join(dir, ADAPTER_CONFIG_FILE);
  if (!existsSync(file)) throw new AdapterError(`${dir} is not a LoRA adapter folder: ${ADAPTER_CONFIG_FILE} not found`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new AdapterError(`${file}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isObject(json)) throw new AdapterError(`${file}: must be a JSON object`);
  function fail(field: string, msg: string): never {
    throw new AdapterError(`${file}: \`${field}\` ${msg}`);
  }
  const peftType = json.peft_type ?? 'LORA';
  if (peftType !== 'LORA') fail('peft_type', `${JSON.stringify(peftType)} is not supported (only "LORA")`);
  const r = json.r ?? 8;
  if (typeof r !== 'number' || !Number.isSafeInteger(r) || r <= 0) fail('r', `must be a positive integer, got ${JSON.stringify(r)}`);
  const alpha = json.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) fail('lora_alpha', `must be a positive number, got ${JSON.stringify(alpha)}`);
  const dropout = json.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) fail('lora_dropout', `must be a number in [0, 1), got ${JSON.stringify(dropout)}`);
  const rslora = json.use_rslora ?? false;
  if (typeof rslora !== 'boolean') fail('use_rslora', `must be true or false, got ${JSON.stringify(rslora)}`);
  if (json.use_dora === true) fail('use_dora', 'is true: DoRA adapters are not supported');
  if (json.fan_in_fan_out === true) fail('fan_in_fan_out', 'is true, which only applies to GPT-2-style Conv1D layers, not these models');
  const bias = json.bias ?? 'none';
  if (bias !== 'none') fail('bias', `${JSON.stringify(bias)} is not supported (only "none")`);
  if (json.lora_bias === true) fail('lora_bias', 'is true: LoRA-B biases are not supported');
  const mts = json.modules_to_save;
  if (Array.isArray(mts) && mts.length > 0) fail('modules_to_save', `${JSON.stringify(mts)} is not supported (fully trained extra modules)`);
  for (const f of ['rank_pattern', 'alpha_pattern'] as const) {
    const v = json[f];
    if (isObject(v) && Object.keys(v).length > 0) fail(f, 'gives per-module ranks or alphas, which are not supported');
  }
  for (const f of ['alora_invocation_tokens', 'layer_replication', 'target_parameters'] as const) {
    const v = json[f];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)) fail(f, `${JSON.stringify(v)} is not supported`);
  }
  const tm = json.target_modules ?? null;
  if (tm !== null && typeof tm !== 'string' && !(Array.isArray(tm) && tm.every((x) => typeof x === 'string'))) {
    fail('target_modules', `must be a list of module names or a regular expression string, got ${JSON.stringify(tm)}`);
  }
  const base = json.base_model_name_or_path;
  return {
    r,
    alpha,
    dropout,
    rslora,
    baseModelNameOrPath: typeof base === 'string' ? base : null,
    targetModules: tm as string[] | string | null,
  };
}

export interface LoadAdapterOptions {
  /** Element type of A and B: Float32Array (default) or Float64Array. */
  dtype?: Float32ArrayConstructor | Float64ArrayConstructor;
}

/**
 * Reads an adapter folder for a base model with config `model`: every LoRA tensor must belong to a known target in
 * an existing layer, come in A/B pairs, and have shapes A = [r, in], B = [out, r] of the base Linear.
 */
export function loadAdapter(dir: string, model: ModelConfig, opts: LoadAdapterOptions = {}): LoraWeights {
  const root = resolve(dir);
  const cfg = readAdapterConfig(root);
  const weightsPath = join(root, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(weightsPath)) {
    const bin = existsSync(join(root, 'adapter_model.bin'));
    throw new AdapterError(
      `${root} is not a LoRA adapter folder: ${ADAPTER_WEIGHTS_FILE} not found${bin ? ' (only adapter_model.bin is there; save the adapter with safe_serialization=True)' : ''}`,
    );
  }
  const ctor = opts.dtype ?? Float32Array;
  const layers: Partial<Record<LoraTargetName, Partial<LoraPair>>>[] = Array.from({ length: model.numLayers }, () => ({}));
  const f = SafetensorsFile.open(weightsPath);
  try {
    for (const key of f.names()) {
      const parsed = parseAdapterKey(key);
      if (!parsed) {
        throw new AdapterError(
          `${weightsPath}: tensor '${key}' is not a LoRA weight of a supported target (expected keys like '${adapterKey(0, 'q_proj', 'A')}')`,
        );
      }
      const { layer, target, which } = parsed;
      if (layer >= model.numLayers) throw new AdapterError(`${weightsPath}: tensor '${key}' is for layer ${layer}, but the base model has ${model.numLayers} layers`);
      const { out, in: inF } = targetShape(model, target);
      const expected = which === 'A' ? [cfg.r, inF] : [out, cfg.r];
      const info = f.info(key);
      if (info.shape.length !== 2 || info.shape[0] !== expected[0] || info.shape[1] !== expected[1]) {
        throw new AdapterError(
          `${weightsPath}: tensor '${key}' has shape [${info.shape.join(', ')}], expected [${expected.join(', ')}] (r = ${cfg.r}, base ${target} is [${out}, ${inF}])`,
        );
      }
      const slot = layers[layer][target] ?? (layers[layer][target] = {});
      if (slot[which]) throw new AdapterError(`${weightsPath}: tensor '${key}' duplicates another lora_${which} of layer ${layer} ${target}`);
      slot[which] = f.readFloat(key, ctor);
    }
  } finally {
    f.close();
  }
  const present = new Set<LoraTargetName>();
  const out: Partial<Record<LoraTargetName, LoraPair>>[] = layers.map((layer, i) => {
    const done: Partial<Record<LoraTargetName, LoraPair>> = {};
    for (const target of TARGET_ORDER) {
      const slot = layer[target];
      if (!slot) continue;
      const A: FloatArray | undefined = slot.A;
      const B: FloatArray | undefined = slot.B;
      if (!A || !B) {
        const missing = adapterKey(i, target, A ? 'B' : 'A');
        throw new AdapterError(`${weightsPath}: tensor '${missing}' is missing (layer ${i} ${target} has only lora_${A ? 'A' : 'B'})`);
      }
      done[target] = { A, B };
      present.add(target);
    }
    return done;
  });
  if (present.size === 0) throw new AdapterError(`${weightsPath}: no LoRA tensors found`);
  const config: LoraConfig = {
    r: cfg.r,
    alpha: cfg.alpha,
    dropout: cfg.dropout,
    targets: TARGET_ORDER.filter((t) => present.has(t)),
    rslora: cfg.rslora,
  };
  return { config, scaling: loraScaling(config), layers: out };
}
