import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { expectedTensors, inspectModel, loadModel } from '../../engine/io/hf-model.ts';
import { tinyHfConfig, writeRandomModel } from '../../engine/io/make-model.ts';
import { writeSafetensors } from '../../engine/io/safetensors.ts';
import type { FloatArray, ModelConfig, ModelWeights } from '../../engine/model/types.ts';
import { runPython } from '../helpers/python.ts';
import { floatWeight } from '../../engine/model/weight-array.ts';

const root = mkdtempSync(join(tmpdir(), 'hf-model-'));
after(() => rmSync(root, { recursive: true, force: true }));

function sha256F32(a: FloatArray): string {
  const f = a instanceof Float32Array ? a : Float32Array.from(a);
  return createHash('sha256').update(new Uint8Array(f.buffer, f.byteOffset, f.byteLength)).digest('hex');
}

/** Every named tensor of loaded weights, as the checkpoint names it. */
function named(w: ModelWeights): Map<string, FloatArray> {
  const m = new Map<string, FloatArray>([['model.embed_tokens.weight', floatWeight(w.embedTokens)], ['model.norm.weight', w.norm]]);
  if (!w.config.tieWordEmbeddings) m.set('lm_head.weight', floatWeight(w.lmHead));
  w.layers.forEach((l, i) => {
    const p = `model.layers.${i}`;
    m.set(`${p}.input_layernorm.weight`, l.inputNorm);
    m.set(`${p}.post_attention_layernorm.weight`, l.postAttentionNorm);
    for (const [k, lin] of [['self_attn.q_proj', l.q], ['self_attn.k_proj', l.k], ['self_attn.v_proj', l.v], ['self_attn.o_proj', l.o], ['mlp.gate_proj', l.gate], ['mlp.up_proj', l.up], ['mlp.down_proj', l.down]] as const) {
      m.set(`${p}.${k}.weight`, floatWeight(lin.weight));
      if (lin.bias) m.set(`${p}.${k}.bias`, lin.bias);
    }
    if (l.qNorm) m.set(`${p}.self_attn.q_norm.weight`, l.qNorm);
    if (l.kNorm) m.set(`${p}.self_attn.k_norm.weight`, l.kNorm);
  });
  return m;
}

/** Parameter count from the architecture alone (closed form). */
function closedFormParams(c: ModelConfig): number {
  const H = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const attn = H * q + 2 * H * kv + q * H + (c.qkvBias ? q + 2 * kv : 0) + (c.oBias ? H : 0) + (c.qkNorm ? 2 * c.headDim : 0);
  const mlp = 3 * H * c.intermediateSize + (c.mlpBias ? 2 * c.intermediateSize + H : 0);
  return c.vocabSize * H * (c.tieWordEmbeddings ? 1 : 2) + c.numLayers * (2 * H + attn + mlp) + H;
}

const CASES = [
  { name: 'llama F32 single file', family: 'llama', dtype: 'F32', over: {} },
  { name: 'llama F16 sharded', family: 'llama', dtype: 'F16', over: { attention_bias: true, mlp_bias: true }, shardBytes: 6000 },
  { name: 'mistral BF16 single file', family: 'mistral', dtype: 'BF16', over: {} },
  { name: 'qwen2 BF16 sharded (q/k/v bias)', family: 'qwen2', dtype: 'BF16', over: {}, shardBytes: 10000 },
  { name: 'qwen3 F32 tied embeddings (q/k norms)', family: 'qwen3', dtype: 'F32', over: { tie_word_embeddings: true } },
] as const;

describe('loadModel reads what the Python safetensors library reads', () => {
  const dirs = CASES.map((c, i) => {
    const d = join(root, `m${i}`);
    writeRandomModel(d, tinyHfConfig(c.family, c.over), { seed: 7 + i, dtype: c.dtype, shardBytes: 'shardBytes' in c ? c.shardBytes : undefined, normStd: 0.1 });
    return d;
  });
  const files = dirs.flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.safetensors')).map((f) => join(d, f)));
  const ref = JSON.parse(runPython('safetensors_digest.py', files)) as Record<string, Record<string, { shape: number[]; sha256_f32: string }>>;

  CASES.forEach((c, i) => {
    test(c.name, () => {
      const d = dirs[i];
      if ('shardBytes' in c) {
        assert.ok(existsSync(join(d, 'model.safetensors.index.json')));
        assert.ok(readdirSync(d).filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length >= 2, 'several shards');
      }
      const pyTensors = new Map<string, { shape: number[]; sha256_f32: string }>();
      for (const [file, tensors] of Object.entries(ref)) if (file.startsWith(d + '/')) for (const [k, v] of Object.entries(tensors)) pyTensors.set(k, v);
      const w = loadModel(d);
      const ours = named(w);
      assert.deepEqual([...ours.keys()].sort(), [...pyTensors.keys()].sort(), 'same tensor names');
      for (const [k, arr] of ours) {
        assert.ok(arr instanceof Float32Array, k);
        assert.equal(arr.length, pyTensors.get(k)?.shape.reduce((a, b) => a * b, 1), k);
        assert.equal(sha256F32(arr), pyTensors.get(k)?.sha256_f32, `values of ${k}`);
      }
      if (w.config.tieWordEmbeddings) assert.equal(w.lmHead, w.embedTokens, 'tied lm_head is the embedding array');
      const l = w.layers[0];
      assert.equal(l.q.outFeatures, w.config.numHeads * w.config.headDim);
      assert.equal(l.k.outFeatures, w.config.numKvHeads * w.config.headDim);
      assert.equal(l.o.inFeatures, w.config.numHeads * w.config.headDim);
      assert.equal(l.down.inFeatures, w.config.intermediateSize);
      assert.equal(l.q.bias !== null, c.family === 'qwen2' || 'attention_bias' in c.over);
      assert.equal(l.qNorm !== null, c.family === 'qwen3');

      const w64 = loadModel(d, { dtype: Float64Array });
      assert.ok(w64.embedTokens instanceof Float64Array);
      assert.deepEqual([...floatWeight(w64.layers[1].down.weight)], [...floatWeight(w.layers[1].down.weight)]);

      const s = inspectModel(d);
      assert.equal(s.parameters, closedFormParams(w.config));
      assert.equal(s.dtype, { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[c.dtype]);
      assert.equal(s.layers, 2);
      assert.equal(s.modelType, c.family);
      assert.equal(s.hasTokenizer, false);
    });
  });

  test('transformers loads every written model with no missing, unexpected or mismatched tensor', () => {
    const res = JSON.parse(runPython('hf_load_check.py', dirs)) as Record<string, { missing: string[]; unexpected: string[]; mismatched: string[]; architecture: string }>;
    CASES.forEach((c, i) => {
      const r = res[dirs[i]];
      assert.deepEqual([r.missing, r.unexpected, r.mismatched], [[], [], []], c.name);
      assert.equal(r.architecture, { llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' }[c.family]);
    });
  });

  test('onTensor reports each tensor once', () => {
    const seen: string[] = [];
    const w = loadModel(dirs[0], {
      onTensor: (name, i) => {
        assert.equal(i, seen.length);
        seen.push(name);
      },
    });
    assert.deepEqual(seen, expectedTensors(w.config).map((t) => t.name));
  });
});

describe('model folder errors say what is wrong and where', () => {
  test('not a model folder', () => {
    assert.throws(() => loadModel(join(root, 'does-not-exist')), /does-not-exist is not a model folder: folder not found/);
    const empty = join(root, 'empty');
    mkdirSync(empty);
    assert.throws(() => loadModel(empty), new RegExp(`${empty} is not a model folder: config\\.json not found`));
    assert.throws(() => inspectModel(empty), /config\.json not found/);
    writeFileSync(join(empty, 'config.json'), JSON.stringify(tinyHfConfig('llama')));
    assert.throws(() => loadModel(empty), /is not a model folder: model\.safetensors \(or model\.safetensors\.index\.json\) not found/);
    writeFileSync(join(empty, 'pytorch_model.bin'), '');
    assert.throws(() => loadModel(empty), /only PyTorch \.bin weights found/);
    const file = join(root, 'afile');
    writeFileSync(file, '');
    assert.throws(() => loadModel(file), /afile is not a model folder: it is a file/);
  });

  test('missing tensor is named', () => {
    const d = join(root, 'missing-lm-head');
    writeRandomModel(d, tinyHfConfig('llama', { tie_word_embeddings: true }), { seed: 1 });
    writeFileSync(join(d, 'config.json'), JSON.stringify(tinyHfConfig('llama', { tie_word_embeddings: false })));
    assert.throws(() => loadModel(d), /tensor 'lm_head\.weight' is missing from the weights \(config\.json has tie_word_embeddings false/);
  });

  test('wrong shape names tensor, actual and expected shape', () => {
    const d = join(root, 'wrong-shape');
    writeRandomModel(d, tinyHfConfig('llama', { intermediate_size: 64 }), { seed: 1 });
    writeFileSync(join(d, 'config.json'), JSON.stringify(tinyHfConfig('llama', { intermediate_size: 80 })));
    assert.throws(() => loadModel(d), /tensor 'model\.layers\.0\.mlp\.gate_proj\.weight' has shape \[64, 32\] but config\.json implies \[80, 32\]/);
    assert.throws(() => inspectModel(d), /gate_proj\.weight' has shape \[64, 32\]/);
  });

  test('bad shard index', () => {
    const d = join(root, 'bad-index');
    writeRandomModel(d, tinyHfConfig('llama'), { seed: 1, shardBytes: 20000 });
    const first = readdirSync(d).find((f) => f.startsWith('model-00001'));
    assert.ok(first);
    rmSync(join(d, first));
    assert.throws(() => loadModel(d), new RegExp(`model\\.safetensors\\.index\\.json lists ${first}, which is not in`));
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'model.norm.weight': '../x.safetensors' } }));
    assert.throws(() => loadModel(d), /`weight_map\.model\.norm\.weight` must be a file name in the same folder/);
  });

  test('a tensor the index maps to the wrong shard', () => {
    const d = join(root, 'wrong-shard');
    mkdirSync(d);
    writeFileSync(join(d, 'config.json'), JSON.stringify(tinyHfConfig('llama')));
    writeSafetensors(join(d, 'a.safetensors'), [{ name: 'model.norm.weight', dtype: 'F32', shape: [32], data: new Float32Array(32) }]);
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'model.norm.weight': 'a.safetensors', 'model.embed_tokens.weight': 'a.safetensors' } }));
    assert.throws(() => loadModel(d), /maps tensor 'model\.embed_tokens\.weight' to a\.safetensors, but that file has no such tensor/);
  });

  test('unsupported config reaches the user with the field name', () => {
    const d = join(root, 'gelu');
    writeRandomModel(d, tinyHfConfig('llama'), { seed: 1 });
    writeFileSync(join(d, 'config.json'), JSON.stringify(tinyHfConfig('llama', { hidden_act: 'gelu' })));
    assert.throws(() => loadModel(d), /config\.json: `hidden_act` "gelu" is not supported/);
  });
});
