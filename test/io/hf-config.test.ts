import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HfConfigError, parseHfConfig, readHfConfig } from '../../engine/io/hf-config.ts';
import type { ModelConfig } from '../../engine/model/types.ts';
import { runPython } from '../helpers/python.ts';

const dir = mkdtempSync(join(tmpdir(), 'hf-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// config.json files as published on the Hub (trimmed of fields nobody reads), plus edge cases of missing fields.
const CONFIGS: Record<string, Record<string, unknown>> = {
  'Llama-3.1-8B-Instruct': {
    architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 128000, eos_token_id: [128001, 128008, 128009],
    hidden_act: 'silu', hidden_size: 4096, initializer_range: 0.02, intermediate_size: 14336, max_position_embeddings: 131072, mlp_bias: false,
    model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 8, pretraining_tp: 1, rms_norm_eps: 1e-5,
    rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
    rope_theta: 500000.0, tie_word_embeddings: false, torch_dtype: 'bfloat16', use_cache: true, vocab_size: 128256,
  },
  'TinyLlama-1.1B-Chat': {
    architectures: ['LlamaForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 2048, initializer_range: 0.02,
    intermediate_size: 5632, max_position_embeddings: 2048, model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 22,
    num_key_value_heads: 4, pretraining_tp: 1, rms_norm_eps: 1e-5, rope_scaling: null, rope_theta: 10000.0, tie_word_embeddings: false,
    torch_dtype: 'bfloat16', use_cache: true, vocab_size: 32000,
  },
  'SmolLM2-135M': {
    architectures: ['LlamaForCausalLM'], attention_bias: false, bos_token_id: 0, eos_token_id: 0, hidden_act: 'silu', hidden_size: 576,
    intermediate_size: 1536, max_position_embeddings: 8192, mlp_bias: false, model_type: 'llama', num_attention_heads: 9, num_hidden_layers: 30,
    num_key_value_heads: 3, rms_norm_eps: 1e-5, rope_scaling: null, rope_theta: 100000, tie_word_embeddings: true, torch_dtype: 'bfloat16', vocab_size: 49152,
  },
  'Llama-3.2-1B (transformers 5 rope_parameters, dtype)': {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 2048, intermediate_size: 8192, num_attention_heads: 32, num_hidden_layers: 16,
    num_key_value_heads: 8, head_dim: 64, vocab_size: 128256, max_position_embeddings: 131072, rms_norm_eps: 1e-5, tie_word_embeddings: true, dtype: 'bfloat16',
    rope_parameters: { rope_type: 'llama3', rope_theta: 500000.0, factor: 32.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192 },
  },
  'llama3 rope without original_max_position_embeddings, legacy "type" key': {
    model_type: 'llama', vocab_size: 100, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 4, max_position_embeddings: 4096,
    rope_scaling: { type: 'llama3', factor: 4.0, low_freq_factor: 2.0, high_freq_factor: 8.0 },
  },
  'llama minimal with attention_bias and mlp_bias': {
    model_type: 'llama', vocab_size: 100, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 4, attention_bias: true, mlp_bias: true,
  },
  'llama with head_dim null and num_key_value_heads null': {
    model_type: 'llama', vocab_size: 100, hidden_size: 48, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 6, head_dim: null, num_key_value_heads: null,
  },
  'Mistral-7B-v0.1': {
    architectures: ['MistralForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 4096, intermediate_size: 14336,
    max_position_embeddings: 32768, model_type: 'mistral', num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 8, rms_norm_eps: 1e-5,
    rope_theta: 10000.0, sliding_window: 4096, tie_word_embeddings: false, torch_dtype: 'bfloat16', vocab_size: 32000,
  },
  'Mistral-7B-Instruct-v0.3': {
    architectures: ['MistralForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 4096, intermediate_size: 14336,
    max_position_embeddings: 32768, model_type: 'mistral', num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 8, rms_norm_eps: 1e-5,
    rope_theta: 1000000.0, sliding_window: null, tie_word_embeddings: false, torch_dtype: 'bfloat16', vocab_size: 32768,
  },
  'mistral minimal (default kv heads and window; attention_bias ignored)': {
    model_type: 'mistral', vocab_size: 100, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 1, num_attention_heads: 16, attention_bias: true,
  },
  'Qwen2.5-0.5B-Instruct': {
    architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645, hidden_act: 'silu', hidden_size: 896,
    intermediate_size: 4864, max_position_embeddings: 32768, max_window_layers: 21, model_type: 'qwen2', num_attention_heads: 14, num_hidden_layers: 24,
    num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 1000000.0, sliding_window: 32768, tie_word_embeddings: true, torch_dtype: 'bfloat16',
    use_sliding_window: false, vocab_size: 151936,
  },
  'qwen2 with every layer sliding': {
    model_type: 'qwen2', vocab_size: 100, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2,
    use_sliding_window: true, max_window_layers: 0, sliding_window: 256,
  },
  'qwen2 minimal (kv heads default 32)': {
    model_type: 'qwen2', vocab_size: 100, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 1, num_attention_heads: 32,
  },
  'Qwen3-0.6B': {
    architectures: ['Qwen3ForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645, head_dim: 128,
    hidden_act: 'silu', hidden_size: 1024, intermediate_size: 3072, max_position_embeddings: 40960, max_window_layers: 28, model_type: 'qwen3',
    num_attention_heads: 16, num_hidden_layers: 28, num_key_value_heads: 8, rms_norm_eps: 1e-6, rope_scaling: null, rope_theta: 1000000,
    sliding_window: null, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_sliding_window: false, vocab_size: 151936,
  },
  'qwen3 minimal with attention_bias (head_dim default 128)': {
    model_type: 'qwen3', vocab_size: 100, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, attention_bias: true,
  },
};

const MIXED_SLIDING = {
  model_type: 'qwen2', vocab_size: 100, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2,
  use_sliding_window: true, max_window_layers: 2,
};

interface PyRef {
  error?: string;
  architecture: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_layers: number;
  num_heads: number;
  num_kv_heads: number;
  head_dim: number;
  q_out: number;
  k_out: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_type: string;
  rope_factor: number | null;
  rope_low_freq_factor: number | null;
  rope_high_freq_factor: number | null;
  rope_original_max_position_embeddings: number | null;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  q_bias: boolean;
  k_bias: boolean;
  v_bias: boolean;
  o_bias: boolean;
  mlp_bias: boolean;
  qk_norm: boolean;
  sliding_window: number | null | 'mixed';
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
  pad_token_id: number | null;
}

describe('config.json → ModelConfig matches what transformers builds', () => {
  const names = Object.keys(CONFIGS);
  const input = join(dir, 'configs.json');
  writeFileSync(input, JSON.stringify([...names.map((n) => CONFIGS[n]), MIXED_SLIDING]));
  const refs = JSON.parse(runPython('hf_config_reference.py', [input])) as PyRef[];

  names.forEach((name, i) => {
    test(name, () => {
      const py = refs[i];
      assert.equal(py.error, undefined, `transformers refused the config: ${py.error}`);
      const c: ModelConfig = parseHfConfig(CONFIGS[name]);
      assert.equal(c.architecture, py.architecture);
      assert.equal(c.family, CONFIGS[name].model_type);
      assert.equal(c.vocabSize, py.vocab_size);
      assert.equal(c.hiddenSize, py.hidden_size);
      assert.equal(c.intermediateSize, py.intermediate_size);
      assert.equal(c.numLayers, py.num_layers);
      assert.equal(c.numHeads, py.num_heads);
      assert.equal(c.numKvHeads, py.num_kv_heads);
      assert.equal(c.headDim, py.head_dim);
      assert.equal(c.numHeads * c.headDim, py.q_out);
      assert.equal(c.numKvHeads * c.headDim, py.k_out);
      assert.equal(c.rmsNormEps, py.rms_norm_eps);
      assert.equal(c.ropeTheta, py.rope_theta);
      if (py.rope_type === 'default') assert.equal(c.ropeScaling, null);
      else {
        assert.equal(py.rope_type, 'llama3');
        assert.deepEqual(c.ropeScaling, {
          ropeType: 'llama3',
          factor: py.rope_factor,
          lowFreqFactor: py.rope_low_freq_factor,
          highFreqFactor: py.rope_high_freq_factor,
          originalMaxPositionEmbeddings: py.rope_original_max_position_embeddings,
        });
      }
      assert.equal(c.maxPositionEmbeddings, py.max_position_embeddings);
      assert.equal(c.tieWordEmbeddings, py.tie_word_embeddings);
      assert.equal(c.qkvBias, py.q_bias);
      assert.equal(c.qkvBias, py.k_bias);
      assert.equal(c.qkvBias, py.v_bias);
      assert.equal(c.oBias, py.o_bias);
      assert.equal(c.mlpBias, py.mlp_bias);
      assert.equal(c.qkNorm, py.qk_norm);
      assert.equal(c.slidingWindow, py.sliding_window);
      assert.equal(c.bosTokenId, py.bos_token_id);
      assert.deepEqual(c.eosTokenId, py.eos_token_id);
      assert.equal(c.padTokenId, py.pad_token_id);
    });
  });

  test('a qwen2 config mixing sliding and full layers (transformers builds it) is refused by name', () => {
    assert.equal(refs[names.length].sliding_window, 'mixed');
    assert.throws(() => parseHfConfig(MIXED_SLIDING), /config\.json: `max_window_layers` mixes sliding-window and full-attention layers/);
  });

  test('torch dtype comes from dtype (transformers 5) or torch_dtype, else float32', () => {
    assert.equal(parseHfConfig(CONFIGS['Llama-3.2-1B (transformers 5 rope_parameters, dtype)']).torchDtype, 'bfloat16');
    assert.equal(parseHfConfig(CONFIGS['TinyLlama-1.1B-Chat']).torchDtype, 'bfloat16');
    assert.equal(parseHfConfig(CONFIGS['llama minimal with attention_bias and mlp_bias']).torchDtype, 'float32');
  });
});

describe('config.json errors name the file and the field', () => {
  const base = CONFIGS['llama minimal with attention_bias and mlp_bias'];
  const bad = (patch: Record<string, unknown>, re: RegExp): void => {
    assert.throws(
      () => parseHfConfig({ ...base, ...patch }, '/m/config.json'),
      (e: unknown) => e instanceof HfConfigError && re.test(e.message) && e.message.startsWith('/m/config.json: '),
    );
  };
  test('unsupported model_type', () => bad({ model_type: 'gpt2' }, /`model_type` "gpt2" is not supported \(supported: llama, mistral, qwen2, qwen3\)/));
  test('missing model_type', () => {
    const { model_type: _omit, ...rest } = base;
    void _omit;
    assert.throws(() => parseHfConfig(rest), /config\.json: `model_type` is missing/);
  });
  test('unsupported rope type (rope_scaling, legacy type, rope_parameters)', () => {
    bad({ rope_scaling: { rope_type: 'yarn', factor: 4 } }, /`rope_scaling\.rope_type` "yarn" is not supported/);
    bad({ rope_scaling: { type: 'linear', factor: 2 } }, /`rope_scaling\.type` "linear" is not supported/);
    bad({ rope_parameters: { rope_type: 'dynamic', rope_theta: 1e4, factor: 2 } }, /`rope_parameters\.rope_type` "dynamic" is not supported/);
  });
  test('llama3 rope without its factors', () => bad({ rope_scaling: { rope_type: 'llama3', factor: 8 } }, /`rope_scaling\.low_freq_factor` is missing/));
  test('partial rotary embeddings', () => bad({ partial_rotary_factor: 0.5 }, /`rope_scaling\.partial_rotary_factor` 0\.5 is not supported/));
  test('hidden_act other than silu', () => bad({ hidden_act: 'gelu' }, /`hidden_act` "gelu" is not supported \(only "silu"\)/));
  test('missing or mistyped sizes', () => {
    bad({ hidden_size: undefined }, /`hidden_size` is missing/);
    bad({ hidden_size: '32' }, /`hidden_size` must be a positive integer, got "32"/);
    bad({ num_hidden_layers: 0 }, /`num_hidden_layers` must be a positive integer, got 0/);
    bad({ rms_norm_eps: -1 }, /`rms_norm_eps` must be a positive number/);
  });
  test('inconsistent heads', () => {
    bad({ num_key_value_heads: 3 }, /`num_key_value_heads` \(3\) must divide num_attention_heads \(4\)/);
    bad({ hidden_size: 30 }, /`hidden_size` \(30\) must be a multiple of num_attention_heads \(4\)/);
  });
  test('unsupported architecture', () => bad({ architectures: ['LlamaForSequenceClassification'] }, /`architectures` \["LlamaForSequenceClassification"\] is not supported/));
  test('bad token ids and booleans', () => {
    bad({ eos_token_id: 'x' }, /`eos_token_id` must be a token id/);
    bad({ tie_word_embeddings: 'yes' }, /`tie_word_embeddings` must be true or false/);
  });
  test('not an object', () => assert.throws(() => parseHfConfig([1, 2]), /config\.json: must be a JSON object/));
  test('readHfConfig: missing file and broken JSON', () => {
    assert.throws(() => readHfConfig(join(dir, 'nope')), new RegExp(`${join(dir, 'nope', 'config.json')}: not found`));
    const d = join(dir, 'broken');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'config.json'), '{"model_type": ');
    assert.throws(() => readHfConfig(d), /config\.json: is not valid JSON/);
    writeFileSync(join(d, 'config.json'), JSON.stringify(base));
    assert.equal(readHfConfig(d).hiddenSize, 32);
  });
});

