import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ALL_TARGETS, flopShapeFromHf, mfu, peakTflopsFor, trainingFlops } from '../../bench/flops.ts';
import { SHAPES } from '../../bench/shapes.ts';

test('tiny shape: the count matches one worked out by hand', () => {
  // hidden 64, 2 layers, 4 heads of 16, 2 kv heads, intermediate 176, vocab 8016; batch 4 × seq 128, r 8, all targets.
  const s = flopShapeFromHf(SHAPES.tiny.hf);
  const c = trainingFlops(s, { r: 8, targets: ALL_TARGETS }, 4, 128);
  // q 64·64 + k 64·32 + v 64·32 + o 64·64 + gate/up/down 3·64·176 = 46080 per layer; 2 layers + lm_head 8016·64.
  assert.equal(c.matmulParams, 2 * 46080 + 513024);
  // r·(in+out): q 1024, k 768, v 768, o 1024, gate/up/down 1920 each = 9344 per layer.
  assert.equal(c.loraParams, 2 * 9344);
  // 4 sequences · 2 layers · 4 heads · 2·16 · 128·129 causal pairs.
  assert.equal(c.attentionForward, 16_908_288);
  // 512 tokens · (4·605184 + 6·18688) + 3·16908288.
  assert.equal(c.total, 1_347_551_232);
});

test('Llama-2-7B: parameter counts agree with the published ones', () => {
  const s = flopShapeFromHf(SHAPES['llama-7b'].hf);
  const c = trainingFlops(s, { r: 8, targets: ALL_TARGETS }, 1, 2048);
  // 6,738,415,616 parameters in all, less the embedding (32000·4096) and 65 RMSNorm weights of 4096.
  assert.equal(c.matmulParams, 6_738_415_616 - 32000 * 4096 - 65 * 4096);
  // PEFT prints "trainable params: 19,988,480" for r=8 on all seven linears of Llama-2-7B.
  assert.equal(c.loraParams, 19_988_480);
  // Two targets count only themselves; repeated targets count once.
  const qv = trainingFlops(s, { r: 8, targets: ['q_proj', 'v_proj', 'q_proj'] }, 1, 2048);
  assert.equal(qv.loraParams, 32 * 2 * 8 * (4096 + 4096));
});

test('config fields: head_dim and kv heads default as transformers does, bad values are named', () => {
  const s = flopShapeFromHf({ hidden_size: 128, num_hidden_layers: 1, num_attention_heads: 4, intermediate_size: 256, vocab_size: 10 });
  assert.equal(s.headDim, 32);
  assert.equal(s.numKvHeads, 4);
  assert.equal(flopShapeFromHf(SHAPES['llama-1b'].hf).headDim, 64);
  assert.throws(() => flopShapeFromHf({ hidden_size: '4096' }), /hidden_size must be a positive integer/);
});

test('MFU and the peak table', () => {
  assert.equal(mfu(1e12, 1000, 2e12), 0.5);
  assert.equal(mfu(1e12, 1000, null), null);
  assert.equal(peakTflopsFor('NVIDIA H100 80GB HBM3', 'fp16'), 989.4);
  assert.equal(peakTflopsFor('NVIDIA H100 PCIe', 'bf16'), 756.5);
  assert.equal(peakTflopsFor('NVIDIA H200', 'fp32'), 66.9);
  assert.equal(peakTflopsFor('llvmpipe (LLVM 19.1.7, 256 bits)', 'fp16'), null);
  assert.equal(peakTflopsFor('NVIDIA A100-SXM4-80GB', 'bf16'), 312);
  assert.equal(peakTflopsFor('NVIDIA GeForce RTX 4090', 'fp32'), 82.6);
  assert.equal(peakTflopsFor('NVIDIA L4', 'fp16'), 121);
  assert.equal(peakTflopsFor('NVIDIA L40S', 'fp16'), null);
});
