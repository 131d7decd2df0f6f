/**
 * Frozen LLaMA-family weights on the GPU: uploaded from host arrays (converted to f16 on the device in mixed
 * precision), or generated on the device from a seed (benchmarks of 7B shapes never hold the weights in host memory).
 * Every tensor is listed by `weightSpecs` (weight-specs.ts) first, so the memory check knows the total before anything
 * is allocated.
 */
import { F16Array, type FloatArray, type LoraTargetName, type ModelConfig, type ModelWeights, type WeightArray } from '../../model/types.ts';
import { floatWeight } from '../../model/weight-array.ts';
import { linearOf, targetShape } from '../../model/lora.ts';
import { PackedWeight, type PackedFormat } from '../../quant/packed-weight.ts';
import { Rng } from '../../util/rng.ts';
import type { GpuContext } from './device.ts';
import { copy, grid, WG } from './elementwise.ts';
import { lmHeadParts, type LmHeadParts } from './cross-entropy.ts';
import type { GpuLinear } from './lora.ts';
import type { Program, Runner } from './runner.ts';
import { createTensor, dtypeBytes, packedTensor, upload, view, type GpuTensor } from './tensor.ts';
import { FLAT_WG, kernelModule, WG_BUILTINS } from './wgsl.ts';
import { hasBias, LINEARS, specBytes, weightSpecs, type LinearPacking } from './weight-specs.ts';

export interface GpuLayerWeights {
  inputNorm: GpuTensor;
  postNorm: GpuTensor;
  qNorm: GpuTensor | null;
  kNorm: GpuTensor | null;
  lin: Record<LoraTargetName, GpuLinear>;
}

export interface GpuModelWeights {
  config: ModelConfig;
  dtype: 'f32' | 'f16';
  /** The embedding table, bound in row blocks when it exceeds one binding. */
  embed: LmHeadParts;
  norm: GpuTensor;
  lmHead: LmHeadParts;
  layers: GpuLayerWeights[];
}

/** The packing of a host model: the linears whose weights are PackedWeight; null when none is. */
export function packingOf(model: ModelWeights): LinearPacking | null {
  const formats = new Map<string, PackedFormat>();
  model.layers.forEach((L, l) => {
    for (const t of LINEARS) {
      const w: unknown = linearOf(L, t).weight;
      if (w instanceof PackedWeight) formats.set(`${l}.${t}`, w.format);
    }
  });
  return formats.size === 0 ? null : (l, t) => formats.get(`${l}.${t}`) ?? null;
}

function hostTensor(model: ModelWeights, name: string): WeightArray | PackedWeight {
  if (name === 'model.embed_tokens.weight') return model.embedTokens;
  if (name === 'model.norm.weight') return model.norm;
  if (name === 'lm_head.weight') return model.lmHead;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  if (!m) throw new Error(`webgpu: no host tensor for ${name}`);
  const L = model.layers[Number(m[1])];
  const rest = m[2];
  const lin = (t: LoraTargetName): { weight: WeightArray | PackedWeight; bias: FloatArray | null } =>
    ({ q_proj: L.q, k_proj: L.k, v_proj: L.v, o_proj: L.o, gate_proj: L.gate, up_proj: L.up, down_proj: L.down })[t];
  if (rest === 'input_layernorm.weight') return L.inputNorm;
  if (rest === 'post_attention_layernorm.weight') return L.postAttentionNorm;
  if (rest === 'self_attn.q_norm.weight' && L.qNorm) return L.qNorm;
  if (rest === 'self_attn.k_norm.weight' && L.kNorm) return L.kNorm;
  const lm = /^(?:self_attn|mlp)\.(\w+_proj)\.(weight|bias)$/.exec(rest);
  if (lm) {
    const l = lin(lm[1] as LoraTargetName);
    const a = lm[2] === 'weight' ? l.weight : l.bias;
    if (a) return a;
  }
  throw new Error(`webgpu: model has no tensor ${name}`);
}

/** Elements per f32 staging upload when converting to f16 on the device (64 MiB; a multiple of 128). */
const STAGE_ELEMENTS = 16 * 1024 * 1024;

/** Writes host values into a device tensor of any float dtype; f16 is converted by a kernel, a slice at a time. */
export async function uploadFloat(ctx: GpuContext, runner: Runner, t: GpuTensor, values: FloatArray): Promise<void> {
  if (values.length !== t.size) throw new Error(`upload '${t.name}': ${values.length} values for ${t.size} elements`);
  if (t.dtype === 'f32') {
    for (let i = 0; i < values.length; i += STAGE_ELEMENTS) {
      const part = values.subarray(i, Math.min(values.length, i + STAGE_ELEMENTS));
      upload(ctx, t, part instanceof Float32Array ? part : Float32Array.from(part), i);
    }
    return;
  }
  if (values.length <= 65536) {
    upload(ctx, t, values);
    return;
  }
  const stage = createTensor(ctx, `${t.name}:stage`, Math.min(STAGE_ELEMENTS, values.length), 'f32');
  try {
    for (let i = 0; i < values.length; i += STAGE_ELEMENTS) {
      const n = Math.min(STAGE_ELEMENTS, values.length - i);
      const part = values.subarray(i, i + n);
      upload(ctx, stage, part instanceof Float32Array ? part : Float32Array.from(part));
      await runner.runOnce((p) => copy(p, view(stage, 'stage', 0, n), view(t, `${t.name}[${i}:]`, i, n), n), 'upload');
    }
  } finally {
    ctx.allocator.destroy(stage.buffer);
  }
}

/** Uploads a host weight; f16 bits go to an f16 tensor as they are, with no conversion pass. */
async function uploadWeight(ctx: GpuContext, runner: Runner, t: GpuTensor, w: WeightArray): Promise<void> {
  if (!(w instanceof F16Array && t.dtype === 'f16')) {
    await uploadFloat(ctx, runner, t, floatWeight(w));
    return;
  }
  if (w.length !== t.size) throw new Error(`upload '${t.name}': ${w.length} values for ${t.size} elements`);
  ctx.throwIfLost();
  // writeBuffer needs a multiple of 4 bytes: an odd count of f16 values gets one zero of padding.
  // Dawn crashes on views of shared memory (a model loaded for the cpu thread pool): such bits are copied first.
  const own = w.bits.buffer instanceof SharedArrayBuffer ? w.bits.slice() : w.bits;
  const bits = own.length % 2 === 0 ? own : Uint16Array.from({ length: own.length + 1 }, (_, i) => (i < own.length ? own[i] : 0));
  ctx.device.queue.writeBuffer(t.buffer, t.offset, new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength), 0, bits.byteLength);
}

/**
 * Fills `t` with mean + std·N(0,1) from a stateless hash of (seed, index) (Box–Muller), a binding-sized block at a
 * time (an embedding table can exceed one binding); the index is the element's in `t`, so blocks do not change values.
 */
function randomFill(prog: Program, t: GpuTensor, seed: number, mean: number, std: number): void {
  const spec = kernelModule({
    key: `init.normal:${t.dtype}`,
    params: [
      ['n', 'u32'],
      ['base', 'u32'],
      ['seed', 'u32'],
      ['mean', 'f32'],
      ['sd', 'f32'],
    ],
    bindings: [{ name: 'o', type: t.dtype, access: 'read_write' }],
    body: `
fn hash(x: u32) -> u32 {
  let s = x * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}
@compute @workgroup_size(${WG}) fn main(${WG_BUILTINS}) {
  let j = (${FLAT_WG}) * ${WG}u + lid;
  if (j >= p.n) { return; }
  let i = p.base + j;
  let h1 = hash((i * 2u) ^ hash(p.seed));
  let h2 = hash((i * 2u + 1u) ^ hash(p.seed + 0x9e3779b9u));
  let u1 = (f32(h1 >> 8u) + 0.5) / 16777216.0;
  let u2 = f32(h2 >> 8u) / 16777216.0;
  let z = sqrt(-2.0 * log(u1)) * cos(6.283185307 * u2);
  o[j] = ${t.dtype}(p.mean + p.sd * z);
}`,
  });
  // Blocks of a multiple of 1024 elements keep every view's byte offset aligned for binding.
  const block = Math.max(1024, Math.floor(prog.runner.ctx.limits.maxStorageBufferBindingSize / dtypeBytes(t.dtype) / 1024) * 1024);
  for (let b = 0; b < t.size; b += block) {
    const n = Math.min(block, t.size - b);
    prog.dispatch(spec, [b === 0 && n === t.size ? t : view(t, `${t.name}[${b}:]`, b, n)], { n, base: b, seed: seed >>> 0, mean, sd: std }, grid(prog, n));
  }
}

export type WeightSource =
  | { kind: 'host'; model: ModelWeights }
  /** Device-generated weights for benchmarks; with `packing`, each packed shape is one host-quantized random matrix reused by every layer. */
  | { kind: 'random'; config: ModelConfig; seed: number; std?: number; packing?: LinearPacking | null };

export function sourcePacking(src: WeightSource): LinearPacking | null {
  return src.kind === 'host' ? packingOf(src.model) : (src.packing ?? null);
}

/** Allocates and fills every frozen tensor. `maxBindingBytes` decides how embed/lm_head are bound. */
export async function createWeights(ctx: GpuContext, runner: Runner, src: WeightSource, dtype: 'f32' | 'f16', maxBindingBytes: number): Promise<GpuModelWeights> {
  const cfg = src.kind === 'host' ? src.model.config : src.config;
  const specs = weightSpecs(cfg, sourcePacking(src));
  const tensors = new Map<string, GpuTensor>();
  for (const s of specs) {
    if (specBytes(s, dtype) > ctx.limits.maxBufferSize) {
      throw new Error(`webgpu: tensor ${s.name} (${s.size} values) is larger than the adapter's maxBufferSize ${ctx.limits.maxBufferSize}`);
    }
  }
  if (src.kind === 'host') {
    for (const s of specs) {
      const w = hostTensor(src.model, s.name);
      if (s.packed) {
        if (!(w instanceof PackedWeight)) throw new Error(`webgpu: ${s.name} was planned packed but the model holds it unpacked`);
        tensors.set(s.name, packedTensor(ctx, s.name, w));
        continue;
      }
      // A packed embedding / lm_head (a cpu QLoRA base) is uploaded dequantized: the webgpu shaders read those two in
      // the activation dtype, and a tied one is read per row by the lookup and in full by the logits.
      const held = w instanceof PackedWeight ? (s.name === 'model.embed_tokens.weight' || s.name === 'lm_head.weight' ? w.dequantize() : null) : w;
      if (held === null) throw new Error(`webgpu: ${s.name} is packed (${(w as PackedWeight).format}); only linear weights, embed_tokens and lm_head can be packed`);
      const t = createTensor(ctx, s.name, s.size, dtype);
      tensors.set(s.name, t);
      await uploadWeight(ctx, runner, t, held);
    }
  } else {
    const std = src.std ?? 0.02;
    const floats = specs.filter((s) => !s.packed);
    for (const s of floats) tensors.set(s.name, createTensor(ctx, s.name, s.size, dtype));
    await runner.runOnce((p) => {
      floats.forEach((s, i) => randomFill(p, tensors.get(s.name) as GpuTensor, src.seed * 7919 + i, s.kind === 'norm' ? 1 : 0, s.kind === 'norm' ? 0 : std));
    }, 'init');
    const made = new Map<string, PackedWeight>();
    for (const s of specs) {
      if (!s.packed) continue;
      const { format, rows, cols } = s.packed;
      const key = `${format}:${rows}x${cols}`;
      let w = made.get(key);
      if (!w) {
        const rng = new Rng(src.seed + made.size);
        w = PackedWeight.quantize(format, Float32Array.from({ length: rows * cols }, () => rng.normal() * std), rows, cols);
        made.set(key, w);
      }
      tensors.set(s.name, packedTensor(ctx, s.name, w));
    }
  }
  const get = (n: string): GpuTensor => {
    const t = tensors.get(n);
    if (!t) throw new Error(`webgpu: weight ${n} was not created`);
    return t;
  };
  const H = cfg.hiddenSize;
  const layers: GpuLayerWeights[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}`;
    const lin = {} as Record<LoraTargetName, GpuLinear>;
    for (const t of LINEARS) {
      const { outFeatures, inFeatures } = targetShape(cfg, t);
      const mod = t === 'gate_proj' || t === 'up_proj' || t === 'down_proj' ? `mlp.${t}` : `self_attn.${t}`;
      lin[t] = { weight: get(`${p}.${mod}.weight`), bias: hasBias(cfg, t) ? get(`${p}.${mod}.bias`) : null, outFeatures, inFeatures };
    }
    layers.push({
      inputNorm: get(`${p}.input_layernorm.weight`),
      postNorm: get(`${p}.post_attention_layernorm.weight`),
      qNorm: cfg.qkNorm ? get(`${p}.self_attn.q_norm.weight`) : null,
      kNorm: cfg.qkNorm ? get(`${p}.self_attn.k_norm.weight`) : null,
      lin,
    });
  }
  const embed = get('model.embed_tokens.weight');
  const head = cfg.tieWordEmbeddings ? embed : get('lm_head.weight');
  return {
    config: cfg,
    dtype,
    embed: lmHeadParts(embed, cfg.vocabSize, H, maxBindingBytes),
    norm: get('model.norm.weight'),
    lmHead: lmHeadParts(head, cfg.vocabSize, H, maxBindingBytes),
    layers,
  };
}
