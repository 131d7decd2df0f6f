/**
 * `bench/decode.ts --base-weights as-stored`: a GGUF model whose Linears, and lm_head, stay in the ggml blocks the file
 * stores (q8_0, q4_0, q4_1, q4_k, q6_k), so decoding on the cpu reads them through the native fused matrix-vector
 * products as llama.cpp reads them — not an f16 copy. A bench-local loader (the general loader option belongs to
 * engine/io); test/engine/packed-matvec.test.ts checks it against the dequantized load of the same file.
 */
import { toShared, toSharedPacked } from '../engine/backend/cpu/shared-arrays.ts';
import { encodeF16 } from '../engine/io/f16.ts';
import { GgufModelSource } from '../engine/io/gguf-model.ts';
import { assembleWeights } from '../engine/io/hf-model.ts';
import { F16Array, type LinearWeight, type ModelWeights } from '../engine/model/types.ts';
import { PACKED_GGML_TYPES, PackedWeight, type PackedFormat } from '../engine/quant/packed-weight.ts';

const FORMAT_OF_GGML = new Map<number, PackedFormat>(Object.entries(PACKED_GGML_TYPES).map(([f, t]) => [t, f as PackedFormat]));

/**
 * A GGUF model with its Linears and lm_head packed as stored (rows in Hugging Face order: q/k unpermuted by
 * rawTensor), norms in f32, the embedding table (and any Linear of a type the kernels do not read packed) in f16.
 * `stored` counts the matrices per form, for the report.
 */
export function loadAsStored(path: string, shared: boolean): { model: ModelWeights; lmHead: LinearWeight | undefined; stored: Record<string, number> } {
  const src = GgufModelSource.open(path);
  const stored: Record<string, number> = {};
  const count = (form: string): void => {
    stored[form] = (stored[form] ?? 0) + 1;
  };
  const packedOf = (name: string): PackedWeight | null => {
    const format = FORMAT_OF_GGML.get(src.info(name).type);
    if (format === undefined) return null;
    const raw = src.rawTensor(name, { hfRowOrder: true });
    const w = new PackedWeight(format, raw.shape[0], raw.shape[1], raw.bytes);
    return shared ? toSharedPacked(w) : w;
  };
  const packed = new Map<string, PackedWeight>();
  const unread = new F16Array(new Uint16Array(0));
  const model = assembleWeights(
    src.config,
    (name) => (shared ? toShared(src.readFloat(name)) : src.readFloat(name)),
    (name) => {
      const w = /\.(self_attn|mlp)\.[a-z]+_proj\.weight$/.test(name) ? packedOf(name) : null;
      if (w !== null) {
        packed.set(name, w);
        count(w.format);
        return unread; // replaced below: assembleWeights builds Linears from WeightArrays only
      }
      count('f16');
      const bits = encodeF16(src.readFloat(name));
      return new F16Array(shared ? toShared(bits) : bits);
    },
  );
  model.layers.forEach((L, i) => {
    const p = `model.layers.${i}`;
    const names = { q: 'self_attn.q_proj', k: 'self_attn.k_proj', v: 'self_attn.v_proj', o: 'self_attn.o_proj', gate: 'mlp.gate_proj', up: 'mlp.up_proj', down: 'mlp.down_proj' } as const;
    for (const [key, name] of Object.entries(names) as [keyof typeof names, string][]) {
      const w = packed.get(`${p}.${name}.weight`);
      if (w) L[key].weight = w;
    }
  });
  const lmHead = packedOf(src.config.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight') ?? undefined;
  count(lmHead ? `lm_head ${lmHead.format}` : 'lm_head f16');
  return { model, lmHead, stored };
}
