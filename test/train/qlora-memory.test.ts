/**
 * The memory estimate with a quantized base: packed bytes per format on cpu and webgpu, the webgpu figures the
 * session's own buffer list (backend/webgpu/llama-memory.ts), and QLoRA-7B fitting a 6 GiB budget.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BASE_WEIGHTS, validateRunConfig } from '../../common/protocol.ts';
import { estimateMemory } from '../../engine/backend/webgpu/llama-memory.ts';
import { LINEAR_TARGETS, planBaseWeights } from '../../engine/io/base-weights.ts';
import { parseHfConfig } from '../../engine/io/hf-config.ts';
import { tinyHfConfig } from '../../engine/io/make-model.ts';
import { estimateTrainingMemory } from '../../engine/train/memory-estimate.ts';
import { packedSizeBytes, type PackedFormat } from '../../engine/quant/packed-weight.ts';

const GIB = 2 ** 30;
const llama2_7b = parseHfConfig(
  tinyHfConfig('llama', { vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, head_dim: 128, max_position_embeddings: 4096 }),
  'llama-2-7b/config.json',
);
const lora = { r: 16, alpha: 32, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const };
const train = { batchSize: 1, maxSeqLen: 2048, gradientCheckpointing: true, precision: 'fp16' as const };

describe('memory estimate with a quantized base', () => {
  test('Llama-2-7B, seq 2048, fp16, checkpointing, Q4_0 base on webgpu: ≤ 6 GiB, the session\'s own buffer list', () => {
    const e = estimateTrainingMemory(llama2_7b, { lora: { ...lora, targets: [...lora.targets] }, train: { ...train, baseWeights: 'q4_0' } }, { backend: 'webgpu' });
    const device = estimateMemory(llama2_7b, { r: lora.r, targets: [...lora.targets] }, {
      precision: 'fp16',
      checkpointing: true,
      training: true,
      batch: 1,
      seq: 2048,
      ceChunkBytes: 64 * 2 ** 20,
      packing: () => 'q4_0',
    });
    // The Train form's parts are the session's: weights, LoRA + gradients + both moments, activations.
    assert.equal(e.weights, device.weights, 'frozen weights as the webgpu session allocates them');
    assert.equal(e.lora + e.gradients + e.optimizer, device.lora, 'LoRA parameters, gradients and both moments');
    assert.equal(e.activations, device.activations, 'activations and scratch');
    // The cross-entropy chunk: 524 rows of f32 logits under the 64 MiB budget, with their f16 hidden rows and gradient.
    const C = Math.floor((64 * 2 ** 20) / (32000 * 4));
    assert.equal(e.logitsChunk, C * 32000 * 4 + 2 * C * 4096 * 2);
    assert.equal(e.logitsChunk, device.crossEntropyChunk);
    assert.equal(e.total, device.total);
    console.log(`# QLoRA 7B q4_0 webgpu: estimate total ${(e.total / GIB).toFixed(3)} GiB (weights ${(e.weights / GIB).toFixed(3)}, activations ${(e.activations / GIB).toFixed(3)})`);
    assert.ok(e.total <= 6 * GIB, `estimate ${(e.total / GIB).toFixed(2)} GiB`);
    // Against f16 weights the linears shrink to 4.5/16 of their bytes.
    const f16 = estimateTrainingMemory(llama2_7b, { lora: { ...lora, targets: [...lora.targets] }, train: { ...train, baseWeights: 'f16' } }, { backend: 'webgpu' });
    assert.ok(f16.total > 12 * GIB && e.weights < 0.32 * f16.weights, `${f16.weights} vs ${e.weights}`);
  });

  test('each setting counts its own bytes, on cpu and webgpu', () => {
    const cfg = llama2_7b;
    const run = (baseWeights: (typeof BASE_WEIGHTS)[number]) => ({ lora: { ...lora, targets: [...lora.targets] }, train: { ...train, baseWeights } });
    const embed = cfg.vocabSize * cfg.hiddenSize * 2; // embed_tokens + untied lm_head
    for (const format of ['q8_0', 'q4_0', 'q4_1', 'nf4', 'int4-g128'] as const satisfies readonly PackedFormat[]) {
      let linears = 0;
      for (let l = 0; l < cfg.numLayers; l++) {
        for (const t of LINEAR_TARGETS) {
          const rows = t === 'o_proj' || t === 'down_proj' ? cfg.hiddenSize : t === 'gate_proj' || t === 'up_proj' ? cfg.intermediateSize : cfg.numHeads * cfg.headDim;
          const cols = t === 'down_proj' ? cfg.intermediateSize : cfg.hiddenSize;
          linears += packedSizeBytes(format, rows, cols);
        }
      }
      const cpu = estimateTrainingMemory(cfg, run(format), { backend: 'cpu', kernels: 'native' });
      const f32 = estimateTrainingMemory(cfg, run('f32'), { backend: 'cpu', kernels: 'native' });
      // cpu: packed linears + q8_0 embed_tokens and lm_head (base-weights.ts) + f32 norms + RoPE tables + one 128-row
      // f32 decode block.
      const norms = (2 * cfg.numLayers + 1) * cfg.hiddenSize * 4;
      const rope = 2 * 2048 * (cfg.headDim / 2) * 4;
      assert.equal(cpu.weights, linears + 2 * packedSizeBytes('q8_0', cfg.vocabSize, cfg.hiddenSize) + norms + rope + 128 * cfg.intermediateSize * 4, format);
      assert.ok(cpu.total < f32.total);
      // webgpu: the packed embedding / lm_head are uploaded dequantized, in the activation dtype (here f16).
      const gpu = estimateTrainingMemory(cfg, run(format), { backend: 'webgpu' });
      assert.ok(Math.abs(gpu.weights - (linears + embed * 2 + norms / 2)) < 1e5, `${format}: ${gpu.weights}`);
    }
    const q8 = estimateTrainingMemory(cfg, run('q8_0'), { backend: 'webgpu' }).weights;
    const q4 = estimateTrainingMemory(cfg, run('q4_0'), { backend: 'webgpu' }).weights;
    const q41 = estimateTrainingMemory(cfg, run('q4_1'), { backend: 'webgpu' }).weights;
    const nf4 = estimateTrainingMemory(cfg, run('nf4'), { backend: 'webgpu' }).weights;
    const int4 = estimateTrainingMemory(cfg, run('int4-g128'), { backend: 'webgpu' }).weights;
    // 8.5 > 5 > 4.5 (q4_0 and nf4 alike) > 4.16 bits per weight
    assert.ok(q8 > q41 && q41 > q4 && q4 === nf4 && nf4 > int4, `${q8} ${q41} ${q4} ${nf4} ${int4}`);
  });

  test('as stored without the file counts f32; with a plan it counts the file’s formats', () => {
    const base = { lora: { ...lora, targets: [...lora.targets] }, train: { ...train, baseWeights: 'as-stored' as const } };
    const unknown = estimateTrainingMemory(llama2_7b, base, { backend: 'cpu' });
    const f32 = estimateTrainingMemory(llama2_7b, { ...base, train: { ...train, baseWeights: 'f32' } }, { backend: 'cpu' });
    assert.equal(unknown.weights, f32.weights);
    const plan = planBaseWeights(llama2_7b, 'as-stored', { kind: 'gguf', typeOf: (n) => (/down_proj/.test(n) ? 14 : n.includes('layers') ? 2 : 1) });
    const known = estimateTrainingMemory(llama2_7b, base, { backend: 'cpu', basePlan: plan });
    const q4 = estimateTrainingMemory(llama2_7b, { ...base, train: { ...train, baseWeights: 'q4_0' } }, { backend: 'cpu' });
    // down_proj in q6_k (6.5625 bits) instead of q4_0 (4.5 bits); the file's F16 embed_tokens and lm_head stay f16
    // where quantize-at-load makes them q8_0.
    const downParams = llama2_7b.numLayers * llama2_7b.hiddenSize * llama2_7b.intermediateSize;
    const VH = llama2_7b.vocabSize * llama2_7b.hiddenSize;
    assert.equal(plan.embedding, 'f16');
    assert.equal(plan.lmHead, 'f16');
    assert.equal(known.weights - q4.weights, packedSizeBytes('q6_k', llama2_7b.hiddenSize, llama2_7b.intermediateSize * llama2_7b.numLayers) - (downParams / 32) * 18 + 2 * (2 * VH - packedSizeBytes('q8_0', llama2_7b.vocabSize, llama2_7b.hiddenSize)));
  });

  test('an as-stored GGUF whose token_embd / output are packed counts them in those formats', () => {
    const base = { lora: { ...lora, targets: [...lora.targets] }, train: { ...train, baseWeights: 'as-stored' as const } };
    // q4_0 linears, a q8_0 token_embd and a q6_k output (as llama.cpp's Q4 files): both kept packed.
    const plan = planBaseWeights(llama2_7b, 'as-stored', { kind: 'gguf', typeOf: (n) => (n === 'lm_head.weight' ? 14 : n.includes('embed_tokens') ? 8 : n.includes('layers') ? 2 : 1) });
    assert.equal(plan.embedding, 'q8_0');
    assert.equal(plan.lmHead, 'q6_k');
    const known = estimateTrainingMemory(llama2_7b, base, { backend: 'cpu', basePlan: plan });
    const q4 = estimateTrainingMemory(llama2_7b, { ...base, train: { ...train, baseWeights: 'q4_0' } }, { backend: 'cpu' });
    assert.equal(known.weights - q4.weights, packedSizeBytes('q6_k', llama2_7b.vocabSize, llama2_7b.hiddenSize) - packedSizeBytes('q8_0', llama2_7b.vocabSize, llama2_7b.hiddenSize));
  });
});

describe('run.json: base weights', () => {
  const config = (train: Record<string, unknown>) => ({ modelPath: 'm', datasetPath: 'd', lora: { r: 8, alpha: 16, dropout: 0, targets: ['q_proj'] }, train: { learningRate: 1e-3, steps: 2, batchSize: 1, maxSeqLen: 16, ...train } });
  test('an old run.json with frozenWeightsF16 reads as base weights f16; absent is f32', async () => {
    const { baseWeightsOf } = await import('../../common/protocol.ts');
    const old = validateRunConfig(config({ frozenWeightsF16: true }));
    assert.ok(old.ok);
    assert.equal(baseWeightsOf(old.config.train), 'f16');
    const none = validateRunConfig(config({}));
    assert.ok(none.ok);
    assert.equal(baseWeightsOf(none.config.train), 'f32');
    const chosen = validateRunConfig(config({ baseWeights: 'nf4', frozenWeightsF16: true }));
    assert.ok(chosen.ok);
    assert.equal(baseWeightsOf(chosen.config.train), 'nf4', 'baseWeights wins over the older flag');
  });
  test('an unknown base-weights value is refused naming the field and the choices', () => {
    const bad = validateRunConfig(config({ baseWeights: 'q3_k' }));
    assert.ok(!bad.ok);
    assert.equal(bad.errors[0].field, 'train.baseWeights');
    assert.match(bad.errors[0].message, /one of f32, f16, as-stored, q8_0, q4_0, q4_1, nf4, int4-g128/);
  });
});
