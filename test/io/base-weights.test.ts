/**
 * The base-weights setting at load (QLoRA): GGUF linears kept in their ggml blocks ('as-stored') dequantize exactly
 * to what the f32 loader reads; quantize-at-load equals PackedWeight.quantize of the f32 weights, tensor by tensor;
 * a format that cannot hold a tensor is refused naming it; embed_tokens / lm_head are q8_0 at load and keep a GGUF's
 * packed type as stored (f16 when a row is not whole blocks); the real Q4_1 SmolLM2 held as stored takes far fewer
 * bytes than in f32.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { BaseWeightsError, heldAsOf, LINEAR_TARGETS, linearName, planBaseWeights, type BaseWeights } from '../../engine/io/base-weights.ts';
import { GGML_TYPE } from '../../engine/quant/gguf-types.ts';
import { tinyHfConfig, writeRandomModel } from '../../engine/io/make-model.ts';
import { basePlanOf, loadModel } from '../../engine/io/model-source.ts';
import { SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import type { Linear, LinearWeight, ModelWeights } from '../../engine/model/types.ts';
import { F16Array } from '../../engine/model/types.ts';
import { floatWeight } from '../../engine/model/weight-array.ts';
import { writeLlamaGguf } from '../../engine/quant/gguf-llama.ts';
import { PackedWeight, type PackedFormat } from '../../engine/quant/packed-weight.ts';
import { realModelPath } from '../helpers/real-model.ts';

const root = mkdtempSync(join(tmpdir(), 'base-weights-'));
after(() => rmSync(root, { recursive: true, force: true }));

const linearOf = (m: ModelWeights, l: number, t: (typeof LINEAR_TARGETS)[number]): Linear => {
  const L = m.layers[l];
  return { q_proj: L.q, k_proj: L.k, v_proj: L.v, o_proj: L.o, gate_proj: L.gate, up_proj: L.up, down_proj: L.down }[t];
};
/** The weight as it was loaded, whatever it is (floats, f16 bits or packed blocks). */
const held = (w: LinearWeight): unknown => w;

function bitsEqual(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, what);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) assert.fail(`${what}: element ${i} differs (${a[i]} vs ${b[i]})`);
}

/** Bytes a loaded model holds for its weights, as held (packed bytes, f16 bits, floats). */
function heldBytes(m: ModelWeights): number {
  const size = (w: unknown): number => (w instanceof PackedWeight ? w.bytes.byteLength : w instanceof F16Array ? w.bits.byteLength : (w as Float32Array).byteLength);
  let n = size(m.embedTokens) + size(m.norm) + (m.lmHead === m.embedTokens ? 0 : size(m.lmHead));
  for (const L of m.layers) {
    n += size(L.inputNorm) + size(L.postAttentionNorm);
    for (const lin of [L.q, L.k, L.v, L.o, L.gate, L.up, L.down]) n += size(held(lin.weight)) + (lin.bias ? size(lin.bias) : 0);
  }
  return n;
}

// Rows of 128: every format's block divides them (int4-g128's group is 128).
const hfDir = join(root, 'hf');
writeRandomModel(hfDir, tinyHfConfig('llama', { hidden_size: 128, intermediate_size: 256, head_dim: 32, num_attention_heads: 4, num_key_value_heads: 2 }), { seed: 7 });
const hfF32 = loadModel(hfDir, { dtype: Float32Array });

describe('GGUF as stored', () => {
  for (const format of ['q4_0', 'q4_1', 'q8_0'] as const) {
    test(`${format} linears stay packed and dequantize exactly to the f32 loader's values`, () => {
      const path = join(root, `m-${format}.gguf`);
      writeLlamaGguf(path, hfF32, { format });
      const f32 = loadModel(path, { dtype: Float32Array });
      const packed = loadModel(path, { dtype: Float32Array, baseWeights: 'as-stored' });
      for (let l = 0; l < f32.config.numLayers; l++) {
        for (const t of LINEAR_TARGETS) {
          const w = held(linearOf(packed, l, t).weight);
          assert.ok(w instanceof PackedWeight, `${linearName(l, t)} is packed`);
          assert.equal(w.format, format);
          // q_proj/k_proj: the stored rows are in llama.cpp's RoPE order; both paths must give Hugging Face's.
          bitsEqual(w.dequantize(), floatWeight(linearOf(f32, l, t).weight) as Float32Array, `${linearName(l, t)} (${format})`);
        }
      }
      // The F16 embedding (not a packed type in the file) is kept as its f16 bits; norms stay f32.
      assert.ok(packed.embedTokens instanceof F16Array);
      bitsEqual(floatWeight(packed.embedTokens) as Float32Array, floatWeight(f32.embedTokens) as Float32Array, 'embed_tokens');
      bitsEqual(packed.norm as Float32Array, f32.norm as Float32Array, 'norm');
      const plan = basePlanOf(path, 'as-stored');
      assert.equal(plan.linear(1, 'down_proj'), format);
      assert.equal(plan.embedding, 'f16');
    });
  }

  test('quantize at load from a GGUF re-quantizes the dequantized values of each tensor', () => {
    const path = join(root, 'm-q8_0.gguf');
    const f32 = loadModel(path, { dtype: Float32Array });
    const q4 = loadModel(path, { dtype: Float32Array, baseWeights: 'q4_0' });
    const w = held(q4.layers[0].gate.weight);
    assert.ok(w instanceof PackedWeight && w.format === 'q4_0');
    assert.deepEqual(w.bytes, PackedWeight.quantize('q4_0', floatWeight(f32.layers[0].gate.weight) as Float32Array, 256, 128).bytes);
    // embed_tokens (and an untied lm_head) at q8_0, the sensitive matrices kept at 8 bits, from the file's values.
    const V = f32.config.vocabSize;
    for (const [name, got, want] of [['embed_tokens', q4.embedTokens, f32.embedTokens], ['lm_head', q4.lmHead, f32.lmHead]] as const) {
      assert.ok(got instanceof PackedWeight && got.format === 'q8_0', `${name} held q8_0`);
      assert.deepEqual(got.bytes, PackedWeight.quantize('q8_0', floatWeight(want) as Float32Array, V, 128).bytes, name);
    }
    assert.equal(q4.lmHead === q4.embedTokens, f32.lmHead === f32.embedTokens, 'tied stays tied');
  });

  test('a GGUF whose token_embd is not a whole number of blocks per row keeps it f16; a packed token_embd / output stays in its type', () => {
    const c = { ...hfF32.config, hiddenSize: 48, tieWordEmbeddings: false };
    const typeOf = (embed: number, out: number) => (n: string): number => (n.includes('embed_tokens') ? embed : n === 'lm_head.weight' ? out : GGML_TYPE.F16);
    const odd = planBaseWeights(c, 'as-stored', { kind: 'gguf', typeOf: typeOf(GGML_TYPE.Q8_0, GGML_TYPE.Q4_0) });
    assert.equal(odd.embedding, 'f16');
    assert.equal(odd.lmHead, 'f16');
    assert.equal(planBaseWeights(c, 'nf4' as BaseWeights, null).embedding, 'f16', 'quantize at load (nf4 takes any row): rows of 48 are not q8_0 blocks');
    const ok = planBaseWeights({ ...c, hiddenSize: 256 }, 'as-stored', { kind: 'gguf', typeOf: typeOf(GGML_TYPE.Q8_0, GGML_TYPE.Q6_K) });
    assert.equal(ok.embedding, 'q8_0');
    assert.equal(ok.lmHead, 'q6_k');
    assert.equal(heldAsOf(ok, 'lm_head.weight'), 'q6_k');
    assert.equal(heldAsOf(ok, 'model.embed_tokens.weight'), 'q8_0');
    const f32Plan = planBaseWeights({ ...c, hiddenSize: 256 }, 'as-stored', { kind: 'gguf', typeOf: typeOf(GGML_TYPE.F32, GGML_TYPE.BF16) });
    assert.equal(f32Plan.embedding, 'f32');
    assert.equal(f32Plan.lmHead, 'f32');
  });
});

describe('quantize at load (Hugging Face folder)', () => {
  for (const format of ['q8_0', 'q4_0', 'q4_1', 'nf4', 'int4-g128'] as const satisfies readonly PackedFormat[]) {
    test(`${format}: every linear equals PackedWeight.quantize of its f32 weights`, () => {
      const m = loadModel(hfDir, { dtype: Float32Array, baseWeights: format });
      for (let l = 0; l < m.config.numLayers; l++) {
        for (const t of LINEAR_TARGETS) {
          const w = held(linearOf(m, l, t).weight);
          const ref = linearOf(hfF32, l, t);
          assert.ok(w instanceof PackedWeight, `${linearName(l, t)} is packed`);
          assert.deepEqual(w.bytes, PackedWeight.quantize(format, ref.weight as Float32Array, ref.outFeatures, ref.inFeatures).bytes, linearName(l, t));
        }
      }
      // embed_tokens at q8_0 whatever the linears' format (base-weights.ts: the most sensitive matrices).
      assert.ok(m.embedTokens instanceof PackedWeight && m.embedTokens.format === 'q8_0', 'embed_tokens held as q8_0');
      assert.deepEqual(m.embedTokens.bytes, PackedWeight.quantize('q8_0', hfF32.embedTokens as Float32Array, m.config.vocabSize, m.config.hiddenSize).bytes);
      if (!m.config.tieWordEmbeddings) {
        assert.ok(m.lmHead instanceof PackedWeight && m.lmHead.format === 'q8_0');
        assert.deepEqual(m.lmHead.bytes, PackedWeight.quantize('q8_0', hfF32.lmHead as Float32Array, m.config.vocabSize, m.config.hiddenSize).bytes);
      } else assert.equal(m.lmHead, m.embedTokens);
      bitsEqual(m.norm as Float32Array, hfF32.norm as Float32Array, 'norm');
    });
  }

  test('a large embedding (more rows than one quantize chunk), F16 and F32 files, gets the bytes of quantizing it whole', () => {
    for (const dtype of ['F16', 'F32'] as const) {
      const dir = join(root, `big-${dtype}`);
      writeRandomModel(dir, tinyHfConfig('llama', { vocab_size: 2600, hidden_size: 64, intermediate_size: 128, head_dim: 16, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 1, tie_word_embeddings: false }), { seed: 9, dtype });
      const f32 = loadModel(dir, { dtype: Float32Array });
      for (const format of ['q4_0', 'q4_1'] as const) {
        const m = loadModel(dir, { dtype: Float32Array, baseWeights: format });
        for (const [name, got, want] of [['embed_tokens', m.embedTokens, f32.embedTokens], ['lm_head', m.lmHead, f32.lmHead]] as const) {
          assert.ok(got instanceof PackedWeight && got.format === 'q8_0', `${dtype} ${name}`);
          assert.deepEqual(got.bytes, PackedWeight.quantize('q8_0', want as Float32Array, 2600, 64).bytes, `${dtype} ${format} ${name}`);
        }
        const w = m.layers[0].up.weight;
        assert.ok(w instanceof PackedWeight);
        assert.deepEqual(w.bytes, PackedWeight.quantize(format, f32.layers[0].up.weight as Float32Array, 128, 64).bytes);
      }
    }
  });

  test('the sample model quantized to nf4 at load equals PackedWeight.quantize of its f32 weights', () => {
    const f32 = loadModel(SAMPLE_MODEL_DIR, { dtype: Float32Array });
    const m = loadModel(SAMPLE_MODEL_DIR, { dtype: Float32Array, baseWeights: 'nf4' });
    for (let l = 0; l < m.config.numLayers; l++) {
      for (const t of LINEAR_TARGETS) {
        const w = held(linearOf(m, l, t).weight);
        const ref = linearOf(f32, l, t);
        assert.ok(w instanceof PackedWeight);
        assert.deepEqual(w.bytes, PackedWeight.quantize('nf4', ref.weight as Float32Array, ref.outFeatures, ref.inFeatures).bytes, linearName(l, t));
      }
    }
  });

  test('a format whose block does not divide a row is refused, naming the tensor and its shape', () => {
    // The sample's down_proj rows are 176 long: not a whole number of q4_0's 32-value blocks.
    const check = (e: unknown): boolean => {
      assert.ok(e instanceof BaseWeightsError);
      assert.equal(e.field, 'train.baseWeights');
      assert.match(e.message, /model\.layers\.0\.mlp\.down_proj\.weight/);
      assert.match(e.message, /\[64, 176\]/);
      assert.match(e.message, /q4_0/);
      return true;
    };
    assert.throws(() => loadModel(SAMPLE_MODEL_DIR, { dtype: Float32Array, baseWeights: 'q4_0' }), check);
    assert.throws(() => basePlanOf(SAMPLE_MODEL_DIR, 'q4_0'), check);
  });

  test('as stored on a folder keeps its dtype: F32 stays f32, F16 stays its f16 bits', () => {
    const m = loadModel(hfDir, { dtype: Float32Array, baseWeights: 'as-stored' });
    assert.ok(m.layers[0].q.weight instanceof Float32Array);
    const f16Dir = join(root, 'hf16');
    writeRandomModel(f16Dir, tinyHfConfig('llama'), { seed: 3, dtype: 'F16' });
    const h = loadModel(f16Dir, { dtype: Float32Array, baseWeights: 'as-stored' });
    assert.ok(h.layers[0].q.weight instanceof F16Array);
    assert.ok(h.embedTokens instanceof F16Array);
    assert.equal(basePlanOf(f16Dir, 'as-stored').linear(0, 'q_proj'), 'f16');
  });

  test('frozenF16 (the older option) is baseWeights f16', () => {
    const a = loadModel(hfDir, { dtype: Float32Array, frozenF16: true });
    const b = loadModel(hfDir, { dtype: Float32Array, baseWeights: 'f16' });
    assert.ok(a.layers[1].up.weight instanceof F16Array && b.layers[1].up.weight instanceof F16Array);
    assert.deepEqual(a.layers[1].up.weight.bits, b.layers[1].up.weight.bits);
  });
});

describe('the real SmolLM2 Q4_1 GGUF as stored', () => {
  test('holds its linears packed, in far fewer bytes than f32', () => {
    const path = realModelPath();
    const m = loadModel(path, { dtype: Float32Array, baseWeights: 'as-stored' });
    let packedLinears = 0;
    let linears = 0;
    let params = m.embedTokens.length + m.norm.length + (m.lmHead === m.embedTokens ? 0 : m.lmHead.length);
    for (const L of m.layers) {
      params += L.inputNorm.length + L.postAttentionNorm.length;
      for (const lin of [L.q, L.k, L.v, L.o, L.gate, L.up, L.down]) {
        linears++;
        const w = held(lin.weight);
        if (w instanceof PackedWeight) packedLinears++;
        params += lin.outFeatures * lin.inFeatures;
      }
    }
    assert.equal(packedLinears, linears, 'every linear of a Q4_1 file (q4_1, or q4_k/q6_k/q8_0 where the file mixes types) stays packed');
    // The file's token_embd is q8_0 (the tied lm_head too): kept in its blocks.
    assert.ok(m.embedTokens instanceof PackedWeight && m.embedTokens.format === 'q8_0', 'token_embd stays q8_0');
    assert.equal(m.lmHead, m.embedTokens, 'tied');
    const bytes = heldBytes(m);
    // f32 would be 4 bytes a parameter; packed linears (~5 bits) + a q8_0 embedding come to well under a quarter.
    assert.ok(bytes < 0.25 * params * 4, `held ${bytes} bytes for ${params} parameters (f32: ${params * 4})`);
    const plan = basePlanOf(path, 'as-stored');
    assert.ok(plan.packed);
    assert.equal(plan.embedding, 'q8_0');
  });
});
