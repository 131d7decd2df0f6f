/**
 * GGUF: our writer read back by our reader and by the PyPI `gguf` package's GGUFReader (which also re-derives every
 * tensor's bytes with llama.cpp's q/k permute + gguf.quants), and our reader on a file written by gguf's GGUFWriter.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPython } from '../helpers/python.ts';
import { GGUF_EXPORT_FORMATS, permuteQK, unpermuteQK, writeLlamaGguf } from '../../engine/quant/gguf-llama.ts';
import { readGguf, readTensorF32, readTensorBytes, ggufScalar } from '../../engine/quant/gguf-reader.ts';
import { writeGguf } from '../../engine/quant/gguf-writer.ts';
import { QUANT_FORMATS } from '../../engine/quant/format.ts';
import type { ModelWeights } from '../../engine/model/types.ts';
import { randomModel, tinyConfig } from './data.ts';
import { floatWeight } from '../../engine/model/weight-array.ts';

function withTmp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'gguf-test-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Raw f32 files of the model under Hugging Face names, for the Python check. */
function dumpHfWeights(model: ModelWeights, dir: string): void {
  const c = model.config;
  const tensors: Record<string, number[]> = {};
  const put = (name: string, w: ArrayLike<number>, shape: number[]): void => {
    writeFileSync(join(dir, `${name}.f32`), new Uint8Array(Float32Array.from(w).buffer));
    tensors[name] = shape;
  };
  put('model.embed_tokens.weight', floatWeight(model.embedTokens), [c.vocabSize, c.hiddenSize]);
  model.layers.forEach((L, i) => {
    const p = `model.layers.${i}`;
    put(`${p}.input_layernorm.weight`, L.inputNorm, [c.hiddenSize]);
    put(`${p}.post_attention_layernorm.weight`, L.postAttentionNorm, [c.hiddenSize]);
    for (const [m, lin] of [['self_attn.q_proj', L.q], ['self_attn.k_proj', L.k], ['self_attn.v_proj', L.v], ['self_attn.o_proj', L.o], ['mlp.gate_proj', L.gate], ['mlp.up_proj', L.up], ['mlp.down_proj', L.down]] as const) {
      put(`${p}.${m}.weight`, floatWeight(lin.weight), [lin.outFeatures, lin.inFeatures]);
    }
  });
  put('model.norm.weight', model.norm, [c.hiddenSize]);
  if (!c.tieWordEmbeddings) put('lm_head.weight', floatWeight(model.lmHead), [c.vocabSize, c.hiddenSize]);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ n_head: c.numHeads, n_head_kv: c.numKvHeads, tensors }));
}

interface PyCheck {
  kv: Record<string, { type?: string; value?: unknown; array?: string; len?: number }>;
  tensors: { name: string; type: string; shape: number[]; n_bytes: number; source?: string; bytes_match?: boolean }[];
}

test('permuteQK is llama.cpp permute: per head, rows (0..d/2) and (d/2..d) interleave', () => {
  // one head of dim 4, 1 column: rows [a0, a1, b0, b1] → [a0, b0, a1, b1]
  assert.deepEqual(Array.from(permuteQK(new Float32Array([10, 11, 20, 21]), 4, 1, 1)), [10, 20, 11, 21]);
  // two heads of dim 4, 2 columns
  const w = Float32Array.from({ length: 16 }, (_, i) => i);
  const p = permuteQK(w, 8, 2, 2);
  assert.deepEqual(Array.from(p), [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]);
  assert.deepEqual(Array.from(unpermuteQK(p, 8, 2, 2)), Array.from(w));
});

for (const format of GGUF_EXPORT_FORMATS) {
  test(`llama GGUF in ${format}: our reader and gguf.GGUFReader see the names, types, shapes, keys and exact bytes`, () => {
    withTmp((dir) => {
      const model = randomModel(tinyConfig({ numLayers: 2 }), 21);
      const c = model.config;
      const path = join(dir, 'model.gguf');
      writeLlamaGguf(path, model, { format, name: 'tiny' });

      const f = readGguf(path);
      assert.equal(f.version, 3);
      assert.equal(f.alignment, 32);
      assert.equal(ggufScalar(f, 'general.architecture'), 'llama');
      assert.equal(ggufScalar(f, 'general.name'), 'tiny');
      assert.equal(ggufScalar(f, 'llama.block_count'), 2);
      assert.equal(ggufScalar(f, 'llama.embedding_length'), 64);
      assert.equal(ggufScalar(f, 'llama.feed_forward_length'), 128);
      assert.equal(ggufScalar(f, 'llama.attention.head_count'), 4);
      assert.equal(ggufScalar(f, 'llama.attention.head_count_kv'), 2);
      assert.equal(ggufScalar(f, 'llama.context_length'), 256);
      assert.equal(ggufScalar(f, 'llama.rope.freq_base'), 10000);
      assert.equal(ggufScalar(f, 'llama.attention.layer_norm_rms_epsilon'), Math.fround(1e-5));
      const linType = { f16: 'F16', q8_0: 'Q8_0', q4_0: 'Q4_0', q4_1: 'Q4_1' }[format];
      const expectNames = ['token_embd.weight'];
      for (let i = 0; i < 2; i++) {
        for (const m of ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down']) expectNames.push(`blk.${i}.${m}.weight`);
      }
      expectNames.push('output_norm.weight', 'output.weight');
      assert.deepEqual(f.tensors.map((t) => t.name), expectNames);
      const byName = new Map(f.tensors.map((t) => [t.name, t]));
      assert.deepEqual(byName.get('blk.1.attn_k.weight')?.dims, [64, 32]);
      assert.equal(byName.get('blk.1.attn_k.weight')?.typeName, linType);
      assert.deepEqual(byName.get('blk.0.ffn_down.weight')?.dims, [128, 64]);
      assert.equal(byName.get('blk.0.attn_norm.weight')?.typeName, 'F32');
      assert.equal(byName.get('token_embd.weight')?.typeName, 'F16');
      assert.deepEqual(byName.get('token_embd.weight')?.dims, [64, 96]);

      // Values: norms exact, v dequantizes to the format's round trip, q unpermutes to the round trip of q.
      assert.deepEqual(readTensorF32(f, 'blk.1.ffn_norm.weight'), model.layers[1].postAttentionNorm);
      const fmt = QUANT_FORMATS[format];
      const v = model.layers[0].v;
      assert.deepEqual(readTensorF32(f, 'blk.0.attn_v.weight'), fmt.dequantize(fmt.quantize(v.weight as Float32Array, v.outFeatures, v.inFeatures), v.outFeatures, v.inFeatures));
      const q = model.layers[1].q;
      const qBack = unpermuteQK(readTensorF32(f, 'blk.1.attn_q.weight'), q.outFeatures, q.inFeatures, c.numHeads);
      const maxErr = qBack.reduce((m, x, i) => Math.max(m, Math.abs(x - floatWeight(q.weight)[i])), 0);
      assert.ok(maxErr < (format === 'f16' ? 1e-3 : format === 'q8_0' ? 2e-3 : 0.05), `q round trip error ${maxErr}`);

      // The independent check.
      const wdir = join(dir, 'hf');
      mkdirSync(wdir);
      dumpHfWeights(model, wdir);
      const py = JSON.parse(runPython('quant_gguf_check.py', [path, wdir])) as PyCheck;
      assert.deepEqual(py.tensors.map((t) => t.name), expectNames);
      for (const t of py.tensors) {
        const ours = byName.get(t.name);
        assert.ok(ours, t.name);
        assert.equal(t.type, ours.typeName, `${t.name}: type`);
        assert.deepEqual(t.shape, ours.dims, `${t.name}: shape`);
        assert.equal(t.n_bytes, ours.nbytes, `${t.name}: bytes`);
        assert.equal(t.bytes_match, true, `${t.name}: bytes differ from llama.cpp permute + gguf.quants of ${t.source}`);
      }
      assert.deepEqual(py.kv['general.architecture'], { type: 'STRING', value: 'llama' });
      assert.deepEqual(py.kv['general.alignment'], { type: 'UINT32', value: 32 });
      assert.deepEqual(py.kv['llama.attention.head_count_kv'], { type: 'UINT32', value: 2 });
      assert.deepEqual(py.kv['llama.rope.dimension_count'], { type: 'UINT32', value: 16 });
      assert.deepEqual(py.kv['general.file_type'], { type: 'UINT32', value: { f16: 1, q4_0: 2, q4_1: 3, q8_0: 7 }[format] });
    });
  });
}

test('tied embeddings write no output.weight; llama3 rope scaling writes rope_freqs', () => {
  withTmp((dir) => {
    const cfg = tinyConfig({
      tieWordEmbeddings: true,
      ropeScaling: { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 },
    });
    const path = join(dir, 't.gguf');
    writeLlamaGguf(path, randomModel(cfg, 3), { format: 'q8_0' });
    const f = readGguf(path);
    assert.ok(!f.tensors.some((t) => t.name === 'output.weight'));
    const rf = readTensorF32(f, 'rope_freqs.weight');
    // head_dim 16 → 8 frequencies θ^(−2i/16); wavelen 2π/f vs 64/4 = 16 and 64/1 = 64:
    // i = 0: f = 1, wavelen 6.28 < 16 → 1;  i = 7: f = 1e4^(−14/16) = 3.16e-4, wavelen 19869 > 64 → factor 8.
    assert.equal(rf[0], 1);
    assert.equal(rf[7], 8);
    // i = 2: f = 1e4^(−0.25) = 0.1, wavelen 62.83 ∈ [16, 64] → smooth = (64/62.83 − 1)/3 = 0.00620,
    // factor = 1/((1 − s)/8 + s) = 7.6117
    assert.ok(Math.abs(rf[2] - 1 / ((1 - (64 / ((2 * Math.PI) / 0.1) - 1) / 3) / 8 + (64 / ((2 * Math.PI) / 0.1) - 1) / 3)) < 1e-4);
  });
});

test('export refuses families llama.cpp would not load; rows the blocks do not divide fall back to F16', () => {
  assert.throws(() => writeLlamaGguf('/nonexistent/x.gguf', randomModel(tinyConfig({ family: 'qwen2', qkvBias: true }), 1), { format: 'q8_0' }), /model family 'qwen2' is not supported/);
  withTmp((dir) => {
    // intermediate 176 (the sample model's): down_proj rows are 176 long, not a multiple of 32.
    const odd = randomModel(tinyConfig({ intermediateSize: 176 }), 1);
    const path = join(dir, 'odd.gguf');
    const res = writeLlamaGguf(path, odd, { format: 'q4_0' });
    assert.deepEqual(res.fallbacks.map((f) => f.name), ['blk.0.ffn_down.weight', 'blk.1.ffn_down.weight']);
    assert.match(res.fallbacks[0].reason, /row length \(176\) must be a multiple of the block size 32/);
    const f = readGguf(path);
    assert.equal(f.tensors.find((t) => t.name === 'blk.1.ffn_down.weight')?.typeName, 'F16');
    assert.equal(f.tensors.find((t) => t.name === 'blk.1.ffn_up.weight')?.typeName, 'Q4_0');
  });
});

test('our reader reads a file written by gguf.GGUFWriter', () => {
  withTmp((dir) => {
    const path = join(dir, 'py.gguf');
    const py = JSON.parse(runPython('quant_gguf_write.py', [path])) as {
      kv: Record<string, { type: string; value?: unknown; itemType?: string; values?: unknown[] }>;
      tensors: { name: string; type: string; shape: number[]; values: number[] }[];
    };
    const f = readGguf(path);
    assert.deepEqual([...f.kv.keys()].sort(), Object.keys(py.kv).sort());
    for (const [key, want] of Object.entries(py.kv)) {
      const got = f.kv.get(key);
      assert.ok(got, key);
      assert.equal(got.type, want.type, `${key}: type`);
      if (got.type === 'array') {
        assert.equal(got.itemType, want.itemType, `${key}: item type`);
        assert.deepEqual(got.values.map((x) => (typeof x === 'bigint' ? Number(x) : x)), want.values, key);
      } else if (typeof got.value === 'bigint') {
        assert.equal(got.value.toString(), want.value, key);
      } else {
        assert.equal(got.value, want.value, key);
      }
    }
    assert.deepEqual(f.tensors.map((t) => [t.name, t.typeName, t.dims]), py.tensors.map((t) => [t.name, t.type, t.shape]));
    for (const t of py.tensors) assert.deepEqual(Array.from(readTensorF32(f, t.name)), t.values, t.name);
  });
});

test('reader errors name the file and what is wrong', () => {
  withTmp((dir) => {
    const path = join(dir, 'w.gguf');
    writeGguf(path, [{ key: 'general.alignment', value: { type: 'uint32', value: 32 } }], [
      { name: 'x', dims: [32, 2], type: 8, data: () => QUANT_FORMATS.q8_0.quantize(new Float32Array(64).fill(1), 2, 32) },
    ]);
    const good = readFileSync(path);
    assert.equal(readTensorBytes(readGguf(path), 'x').length, 68);
    const bad = join(dir, 'bad.gguf');
    writeFileSync(bad, good.subarray(0, good.length - 40));
    assert.throws(() => readGguf(bad), /tensor 'x' \(Q8_0 \[32, 2\], 68 bytes at \d+\) runs past the end of the file/);
    writeFileSync(bad, Buffer.concat([Buffer.from('GGUX'), good.subarray(4)]));
    assert.throws(() => readGguf(bad), /bad\.gguf: not a GGUF file/);
    writeFileSync(bad, good.subarray(0, 30));
    assert.throws(() => readGguf(bad), /the header claims 1 keys and 1 tensors, more than the 6 bytes left in the file can hold/);
    assert.throws(() => readTensorF32(readGguf(path), 'y'), /no tensor named 'y'/);
    assert.throws(
      () => writeGguf(join(dir, 'z.gguf'), [], [{ name: 'x', dims: [32], type: 8, data: () => new Uint8Array(3) }]),
      /GGUF tensor 'x': got 3 bytes, Q8_0 \[32\] takes 34/,
    );
  });
});
