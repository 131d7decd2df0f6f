/**
 * Loads a Hugging Face model folder (config.json + model.safetensors, or shards listed in
 * model.safetensors.index.json) into ModelWeights, reading one tensor at a time so peak memory is about one copy of
 * the weights plus the largest tensor. Every expected tensor is checked against the config before any data is read.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { ModelSummary } from '../../common/protocol.ts';
import { sharedCtor, toShared, toSharedPacked } from '../backend/cpu/shared-arrays.ts';
import { F16Array, type FloatArray, type LayerWeights, type Linear, type LinearWeight, type ModelConfig, type ModelWeights } from '../model/types.ts';
import type { BaseWeights, BaseWeightsKeep } from '../../common/protocol.ts';
import { PackedWeight } from '../quant/packed-weight.ts';
import { heldAsOf, planBaseWeights } from './base-weights.ts';
import { decodeBf16, decodeF16, encodeF16 } from './f16.ts';
import { readHfConfig } from './hf-config.ts';
import { SafetensorsFile, type SafetensorsDtype, type TensorInfo } from './safetensors.ts';

/** A model folder problem (missing file, missing tensor, wrong shape); the message names the folder and tensor. */
export class ModelLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelLoadError';
  }
}

export interface ExpectedTensor {
  name: string;
  shape: number[];
}

/** Every tensor the engine reads for this config, with its shape (PyTorch layout: Linear weight is [out, in]). */
export function expectedTensors(c: ModelConfig): ExpectedTensor[] {
  const H = c.hiddenSize;
  const qOut = c.numHeads * c.headDim;
  const kvOut = c.numKvHeads * c.headDim;
  const out: ExpectedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, H] }];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    out.push({ name: `${p}.input_layernorm.weight`, shape: [H] });
    out.push({ name: `${p}.post_attention_layernorm.weight`, shape: [H] });
    for (const [proj, rows, cols] of [
      ['q_proj', qOut, H],
      ['k_proj', kvOut, H],
      ['v_proj', kvOut, H],
      ['o_proj', H, qOut],
    ] as const) {
      out.push({ name: `${p}.self_attn.${proj}.weight`, shape: [rows, cols] });
      const bias = proj === 'o_proj' ? c.oBias : c.qkvBias;
      if (bias) out.push({ name: `${p}.self_attn.${proj}.bias`, shape: [rows] });
    }
    if (c.qkNorm) {
      out.push({ name: `${p}.self_attn.q_norm.weight`, shape: [c.headDim] });
      out.push({ name: `${p}.self_attn.k_norm.weight`, shape: [c.headDim] });
    }
    for (const [proj, rows, cols] of [
      ['gate_proj', c.intermediateSize, H],
      ['up_proj', c.intermediateSize, H],
      ['down_proj', H, c.intermediateSize],
    ] as const) {
      out.push({ name: `${p}.mlp.${proj}.weight`, shape: [rows, cols] });
      if (c.mlpBias) out.push({ name: `${p}.mlp.${proj}.bias`, shape: [rows] });
    }
  }
  out.push({ name: 'model.norm.weight', shape: [H] });
  if (!c.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [c.vocabSize, H] });
  return out;
}

function notAModelFolder(dir: string, what: string): ModelLoadError {
  return new ModelLoadError(`${dir} is not a model folder: ${what}`);
}

/** The safetensors files of a model folder and which file holds each tensor name. */
export interface WeightFiles {
  files: string[];
  /** tensor name → file path */
  where: Map<string, string>;
  /** tensor name → header entry */
  infos: Map<string, TensorInfo>;
}

function checkFolder(dir: string): void {
  if (!existsSync(dir)) throw notAModelFolder(dir, 'folder not found');
  if (!statSync(dir).isDirectory()) throw notAModelFolder(dir, 'it is a file, not a folder');
  if (!existsSync(join(dir, 'config.json'))) throw notAModelFolder(dir, 'config.json not found');
}

/** Finds model.safetensors or the shards of model.safetensors.index.json and reads every header. */
export function locateWeights(dir: string): WeightFiles {
  const single = join(dir, 'model.safetensors');
  const indexPath = join(dir, 'model.safetensors.index.json');
  let files: string[];
  let indexMap: Map<string, string> | null = null;
  if (existsSync(indexPath)) {
    let index: unknown;
    try {
      index = JSON.parse(readFileSync(indexPath, 'utf8'));
    } catch (e) {
      throw new ModelLoadError(`${indexPath}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    const wm = typeof index === 'object' && index !== null ? (index as Record<string, unknown>).weight_map : undefined;
    if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) throw new ModelLoadError(`${indexPath}: \`weight_map\` is missing or not an object`);
    indexMap = new Map();
    for (const [name, file] of Object.entries(wm)) {
      if (typeof file !== 'string' || file.includes('/') || file.includes('\\') || file.startsWith('.')) {
        throw new ModelLoadError(`${indexPath}: \`weight_map.${name}\` must be a file name in the same folder, got ${JSON.stringify(file)}`);
      }
      indexMap.set(name, join(dir, file));
    }
    files = [...new Set(indexMap.values())];
    for (const f of files) if (!existsSync(f)) throw new ModelLoadError(`${indexPath} lists ${basename(f)}, which is not in ${dir}`);
  } else if (existsSync(single)) {
    files = [single];
  } else {
    const hasBin = existsSync(join(dir, 'pytorch_model.bin')) || existsSync(join(dir, 'pytorch_model.bin.index.json'));
    throw notAModelFolder(
      dir,
      hasBin
        ? 'only PyTorch .bin weights found; convert them to model.safetensors (e.g. save_pretrained(..., safe_serialization=True))'
        : 'model.safetensors (or model.safetensors.index.json) not found',
    );
  }
  const where = new Map<string, string>();
  const infos = new Map<string, TensorInfo>();
  for (const f of files) {
    const sf = SafetensorsFile.open(f);
    sf.close();
    for (const [name, info] of sf.header.tensors) {
      // With an index, the index decides which shard a name belongs to; a stray duplicate elsewhere is ignored.
      if (indexMap && indexMap.get(name) !== f) continue;
      if (where.has(name)) throw new ModelLoadError(`${dir}: tensor '${name}' is in both ${basename(where.get(name) ?? '')} and ${basename(f)}`);
      where.set(name, f);
      infos.set(name, info);
    }
  }
  if (indexMap) {
    for (const [name, f] of indexMap) {
      if (!where.has(name)) throw new ModelLoadError(`${indexPath} maps tensor '${name}' to ${basename(f)}, but that file has no such tensor`);
    }
  }
  return { files, where, infos };
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Checks that every tensor the config needs is present with the right shape; returns the located weights. */
export function checkWeights(dir: string, config: ModelConfig, weights: WeightFiles): void {
  // The layer count first, from the names present: a config claiming more layers than the weights hold fails here,
  // before the expected-tensor list (nine or more entries a layer) is built.
  let layersPresent = 0;
  for (const name of weights.infos.keys()) {
    const m = /^model\.layers\.(\d+)\./.exec(name);
    if (m) layersPresent = Math.max(layersPresent, Number(m[1]) + 1);
  }
  if (config.numLayers > layersPresent) {
    throw new ModelLoadError(
      `${dir}: config.json has num_hidden_layers ${config.numLayers}, but the weights hold ${layersPresent === 0 ? 'no layers' : `layers 0–${layersPresent - 1}`} (tensor 'model.layers.${layersPresent}.…' is missing)`,
    );
  }
  for (const t of expectedTensors(config)) {
    const info = weights.infos.get(t.name);
    if (!info) {
      const hint = t.name === 'lm_head.weight' ? ' (config.json has tie_word_embeddings false; set it to true if lm_head shares the embedding)' : '';
      throw new ModelLoadError(`${dir}: tensor '${t.name}' is missing from the weights${hint}`);
    }
    if (!sameShape(info.shape, t.shape)) {
      throw new ModelLoadError(
        `${dir}: tensor '${t.name}' has shape [${info.shape.join(', ')}] but config.json implies [${t.shape.join(', ')}]`,
      );
    }
    if (info.dtype === 'BOOL' || info.dtype === 'F8_E4M3' || info.dtype === 'F8_E5M2') {
      throw new ModelLoadError(`${dir}: tensor '${t.name}' has dtype ${info.dtype}; only float weights (F32, F16, BF16, F64) can be loaded`);
    }
  }
}

export interface LoadModelOptions {
  /** Element type of every weight array: Float32Array (default) or Float64Array (gradient checks). */
  dtype?: Float32ArrayConstructor | Float64ArrayConstructor;
  /**
   * Keep the frozen matrices (q/k/v/o/gate/up/down weights, embed_tokens, lm_head) as f16 bits (F16Array): half the
   * memory of f32. Values are the f16 rounding of the stored weights; norms and biases stay in `dtype`.
   */
  frozenF16?: boolean;
  /**
   * How the frozen matrices are held (RunConfig train.baseWeights; engine/io/base-weights.ts): overrides frozenF16
   * when given. Packed settings quantize (or keep) each layer linear as a PackedWeight, one tensor at a time.
   */
  baseWeights?: BaseWeights;
  /** A mixed plan: these layers' linears held as `keep.as` (train.baseWeightsKeep); needs a quantize-at-load baseWeights. */
  baseWeightsKeep?: BaseWeightsKeep | null;
  /** Called after each tensor is read (for progress reporting). */
  onTensor?: (name: string, index: number, total: number) => void;
  /**
   * Every tensor in shared memory, so the cpu backend's thread pool can work on it (and the cpu model then allocates
   * its activations there too). Only for the cpu backend: WebGPU cannot upload from shared memory.
   */
  shared?: boolean;
}

/**
 * The model from its tensors by their Hugging Face names, whatever file holds them (safetensors here, GGUF in
 * gguf-model.ts): `read` gives a tensor as f32, `readFrozen` a frozen matrix (f32, f16, or packed as the base-weights
 * plan says: the linears, embed_tokens and lm_head may be packed).
 */
export function assembleWeights(config: ModelConfig, read: (name: string) => FloatArray, readFrozen: (name: string) => LinearWeight): ModelWeights {
  const linear = (prefix: string, bias: boolean, outFeatures: number, inFeatures: number): Linear => ({
    weight: readFrozen(`${prefix}.weight`),
    bias: bias ? read(`${prefix}.bias`) : null,
    outFeatures,
    inFeatures,
  });
  const c = config;
  const H = c.hiddenSize;
  const qOut = c.numHeads * c.headDim;
  const kvOut = c.numKvHeads * c.headDim;
  const embedTokens = readFrozen('model.embed_tokens.weight');
  const layers: LayerWeights[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    layers.push({
      inputNorm: read(`${p}.input_layernorm.weight`),
      postAttentionNorm: read(`${p}.post_attention_layernorm.weight`),
      q: linear(`${p}.self_attn.q_proj`, c.qkvBias, qOut, H),
      k: linear(`${p}.self_attn.k_proj`, c.qkvBias, kvOut, H),
      v: linear(`${p}.self_attn.v_proj`, c.qkvBias, kvOut, H),
      o: linear(`${p}.self_attn.o_proj`, c.oBias, H, qOut),
      qNorm: c.qkNorm ? read(`${p}.self_attn.q_norm.weight`) : null,
      kNorm: c.qkNorm ? read(`${p}.self_attn.k_norm.weight`) : null,
      gate: linear(`${p}.mlp.gate_proj`, c.mlpBias, c.intermediateSize, H),
      up: linear(`${p}.mlp.up_proj`, c.mlpBias, c.intermediateSize, H),
      down: linear(`${p}.mlp.down_proj`, c.mlpBias, H, c.intermediateSize),
    });
  }
  const norm = read('model.norm.weight');
  const lmHead = c.tieWordEmbeddings ? embedTokens : readFrozen('lm_head.weight');
  return { config, embedTokens, layers, norm, lmHead };
}

/** Reads a model folder into memory (synchronously; call it from the engine worker). */
export function loadModel(dir: string, opts: LoadModelOptions = {}): ModelWeights {
  const root = resolve(dir);
  checkFolder(root);
  const config = readHfConfig(root);
  const weights = locateWeights(root);
  checkWeights(root, config, weights);
  const ctor = opts.dtype ?? Float32Array;
  const expected = expectedTensors(config);
  const open = new Map<string, SafetensorsFile>();
  let count = 0;
  const file = (name: string): SafetensorsFile => {
    const path = weights.where.get(name);
    if (!path) throw new ModelLoadError(`${root}: tensor '${name}' is missing from the weights`);
    let f = open.get(path);
    if (!f) {
      f = SafetensorsFile.open(path);
      open.set(path, f);
    }
    return f;
  };
  const sharedArray = opts.shared === true ? sharedCtor(ctor) : null;
  const read = (name: string): FloatArray => {
    const f = file(name);
    const data = sharedArray ? f.readFloat(name, ctor, new sharedArray(f.info(name).numel)) : f.readFloat(name, ctor);
    opts.onTensor?.(name, count++, expected.length);
    return data;
  };
  const plan = planBaseWeights(config, opts.baseWeights ?? (opts.frozenF16 === true ? 'f16' : 'f32'), { kind: 'hf', dtypeOf: (name) => weights.infos.get(name)?.dtype ?? 'F32' }, opts.baseWeightsKeep ?? null);
  // A frozen matrix as the plan holds it: f16 bits (stored F16 is taken as is; anything else is read as f32 and
  // rounded), or packed (quantized from this tensor's f32 values alone, which are then dropped).
  const readFrozen = (name: string): LinearWeight => {
    const held = heldAsOf(plan, name);
    if (held === 'f32') return read(name);
    const f = file(name);
    if (held !== 'f16') {
      const packed = quantizeTensor(f, name, held);
      opts.onTensor?.(name, count++, expected.length);
      // Shared so the portable kernels' worker threads read the same bytes (the native kernels take any bytes).
      return opts.shared === true ? toSharedPacked(packed) : packed;
    }
    const info = f.info(name);
    const bits = info.dtype === 'F16' ? new Uint16Array(f.readBytes(name).buffer, 0, info.numel) : encodeF16(f.readFloat(name, Float32Array));
    opts.onTensor?.(name, count++, expected.length);
    return new F16Array(opts.shared === true ? toShared(bits) : bits);
  };
  try {
    return assembleWeights(config, read, readFrozen);
  } finally {
    for (const f of open.values()) f.close();
  }
}

const TORCH_DTYPE_NAMES: Partial<Record<SafetensorsDtype, string>> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64' };

/**
 * Describes a model folder without reading any weights: config, parameter count (from the safetensors headers) and
 * tokenizer presence. Throws the same errors loadModel would for a missing or mis-shaped tensor.
 */
export function inspectModel(dir: string): ModelSummary {
  const root = resolve(dir);
  checkFolder(root);
  const config = readHfConfig(root);
  const weights = locateWeights(root);
  checkWeights(root, config, weights);
  let parameters = 0;
  const bytesByDtype = new Map<SafetensorsDtype, number>();
  for (const info of weights.infos.values()) {
    parameters += info.numel;
    bytesByDtype.set(info.dtype, (bytesByDtype.get(info.dtype) ?? 0) + (info.end - info.begin));
  }
  // A tied checkpoint that still stores lm_head counts it once, as transformers' num_parameters() does.
  if (config.tieWordEmbeddings && weights.infos.has('lm_head.weight')) parameters -= weights.infos.get('lm_head.weight')?.numel ?? 0;
  const stored = [...bytesByDtype.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  const dtype = stored ? (TORCH_DTYPE_NAMES[stored] ?? stored) : config.torchDtype;
  const tokenizerJson = join(root, 'tokenizer.json');
  return {
    path: root,
    name: basename(root),
    architecture: config.architecture,
    modelType: config.family,
    hiddenSize: config.hiddenSize,
    layers: config.numLayers,
    heads: config.numHeads,
    kvHeads: config.numKvHeads,
    vocabSize: config.vocabSize,
    parameters,
    dtype,
    hasTokenizer: existsSync(tokenizerJson),
    hasChatTemplate: hasChatTemplate(root),
  };
}

function hasChatTemplate(dir: string): boolean {
  if (existsSync(join(dir, 'chat_template.jinja'))) return true;
  const p = join(dir, 'tokenizer_config.json');
  if (!existsSync(p)) return false;
  try {
    const cfg: unknown = JSON.parse(readFileSync(p, 'utf8'));
    const t = typeof cfg === 'object' && cfg !== null ? (cfg as Record<string, unknown>).chat_template : undefined;
    return (typeof t === 'string' && t.length > 0) || (Array.isArray(t) && t.length > 0);
  } catch {
    return false;
  }
}

/** Rows of an f16/bf16/f32 tensor quantized at a time to a ggml format (a few MiB of f32 in flight). */
const QUANTIZE_ROWS = 1024;

/**
 * A tensor quantized at load. For q8_0/q4_0/q4_1 (blocks along rows, each row's bytes contiguous) a 16/32-bit tensor
 * is decoded and quantized QUANTIZE_ROWS rows at a time — the same bytes as quantizing it whole — so a large one (the
 * [vocab, hidden] embedding: 108 MiB as f32 for SmolLM) never exists in f32 beside its stored bytes.
 */
function quantizeTensor(f: SafetensorsFile, name: string, format: PackedWeight['format']): PackedWeight {
  const info = f.info(name);
  const [rows, cols] = info.shape;
  const chunked = (format === 'q8_0' || format === 'q4_0' || format === 'q4_1') && (info.dtype === 'F16' || info.dtype === 'BF16' || info.dtype === 'F32') && rows > QUANTIZE_ROWS;
  if (!chunked) return PackedWeight.quantize(format, f.readFloat(name, Float32Array) as Float32Array, rows, cols);
  const raw = f.readBytes(name);
  const halfBits = info.dtype === 'F32' ? null : new Uint16Array(raw.buffer, 0, rows * cols);
  const floats = info.dtype === 'F32' ? new Float32Array(raw.buffer, 0, rows * cols) : null;
  const tmp = new Float32Array(QUANTIZE_ROWS * cols);
  const parts: Uint8Array[] = [];
  for (let r0 = 0; r0 < rows; r0 += QUANTIZE_ROWS) {
    const nr = Math.min(QUANTIZE_ROWS, rows - r0);
    const dst = tmp.subarray(0, nr * cols);
    if (floats) dst.set(floats.subarray(r0 * cols, (r0 + nr) * cols));
    else if (halfBits) (info.dtype === 'F16' ? decodeF16 : decodeBf16)(halfBits.subarray(r0 * cols, (r0 + nr) * cols), dst);
    parts.push(PackedWeight.quantize(format, dst, nr, cols).bytes);
  }
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    bytes.set(p, o);
    o += p.length;
  }
  return new PackedWeight(format, rows, cols, bytes);
}
