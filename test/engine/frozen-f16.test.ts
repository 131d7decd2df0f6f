// loadModel(dir, { frozenF16: true }) keeps the frozen matrices as f16 bits and the cpu math decodes them on the fly.
// The independent reference is a plain Float32 model whose frozen matrices were rounded to f16 in place: loss and
// LoRA gradients must be bit-identical, and the loaded weights must take about half the memory.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { cpuOps } from '../../engine/backend/cpu/cpu-ops.ts';
import { roundToF16InPlace } from '../../engine/io/f16.ts';
import { loadModel } from '../../engine/io/hf-model.ts';
import { tinyHfConfig, writeRandomModel } from '../../engine/io/make-model.ts';
import { evalLoss, forwardLogits, lossAndGrads } from '../../engine/model/llama.ts';
import { forEachPair, newLora } from '../../engine/model/lora.ts';
import { F16Array, type Batch, type FloatArray, type LinearWeight, type LoraWeights, type ModelWeights } from '../../engine/model/types.ts';
import { floatWeight } from '../../engine/model/weight-array.ts';
import { padBatch } from '../../engine/train/batching.ts';
import { estimateTrainingMemory } from '../../engine/train/memory-estimate.ts';
import { Rng } from '../../engine/util/rng.ts';
import { repoRoot } from '../helpers/python.ts';

const root = mkdtempSync(join(tmpdir(), 'frozen-f16-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Every frozen matrix of a model (tied lm_head once). */
function frozenMatrices(m: ModelWeights): { name: string; w: LinearWeight }[] {
  const out: { name: string; w: LinearWeight }[] = [{ name: 'embed_tokens', w: m.embedTokens }];
  if (m.lmHead !== m.embedTokens) out.push({ name: 'lm_head', w: m.lmHead });
  m.layers.forEach((L, i) => {
    for (const [k, lin] of Object.entries({ q: L.q, k: L.k, v: L.v, o: L.o, gate: L.gate, up: L.up, down: L.down })) out.push({ name: `${i}.${k}`, w: lin.weight });
  });
  return out;
}

/** The reference: f32 weights with the frozen matrices rounded to f16 (norms and biases stay f32). */
function roundedReference(dir: string): ModelWeights {
  const m = loadModel(dir, { dtype: Float32Array });
  for (const { w } of frozenMatrices(m)) {
    assert.ok(w instanceof Float32Array);
    roundToF16InPlace(w);
  }
  return m;
}

function batch(vocab: number): Batch {
  const rng = new Rng(5);
  const B = 2;
  const T = 7;
  const inputIds = new Int32Array(B * T);
  const labels = new Int32Array(B * T);
  for (let i = 0; i < B * T; i++) {
    inputIds[i] = Math.floor(rng.uniform() * vocab);
    labels[i] = i % T === T - 1 && i > T ? -100 : inputIds[i];
  }
  return { batchSize: B, seqLen: T, inputIds, labels };
}

function bitsEqual(a: FloatArray, b: FloatArray, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

// Intermediate 300 > 256 and vocab 200 > 128 so the blocked paths of both matmul helpers run over several blocks.
const cases = [
  { name: 'llama, untied, stored F32', family: 'llama' as const, over: { vocab_size: 200, intermediate_size: 300 }, dtype: 'F32' as const },
  { name: 'qwen2 (q/k/v bias), tied, stored F16', family: 'qwen2' as const, over: { vocab_size: 200, intermediate_size: 300, tie_word_embeddings: true }, dtype: 'F16' as const },
  { name: 'llama, stored BF16', family: 'llama' as const, over: {}, dtype: 'BF16' as const },
];

for (const [i, c] of cases.entries()) {
  test(`frozenF16 (${c.name}): weights are the f16 rounding; loss, logits and LoRA gradients equal the rounded f32 model`, () => {
    const dir = join(root, `m${i}`);
    writeRandomModel(dir, tinyHfConfig(c.family, c.over), { seed: 11 + i, dtype: c.dtype, normStd: 0.1 });
    const ref = roundedReference(dir);
    const half = loadModel(dir, { frozenF16: true });
    assert.equal(half.lmHead === half.embedTokens, ref.lmHead === ref.embedTokens);
    const hm = frozenMatrices(half);
    const rm = frozenMatrices(ref);
    for (const [j, { name, w }] of hm.entries()) {
      assert.ok(w instanceof F16Array, `${name} is kept as f16 bits`);
      bitsEqual(floatWeight(w), rm[j].w as FloatArray, name);
    }
    assert.ok(half.norm instanceof Float32Array && half.layers[0].inputNorm instanceof Float32Array, 'norms stay f32');
    if (c.family === 'qwen2') assert.ok(half.layers[0].q.bias instanceof Float32Array, 'biases stay f32');

    const b = batch(half.config.vocabSize);
    const e1 = evalLoss(half, null, b);
    const e0 = evalLoss(ref, null, b);
    assert.ok(Number.isFinite(e0.loss) && e0.tokens > 0);
    assert.equal(e1.loss, e0.loss);
    bitsEqual(forwardLogits(half, null, b.inputIds, b.batchSize, b.seqLen), forwardLogits(ref, null, b.inputIds, b.batchSize, b.seqLen), 'logits');

    const loraCfg = { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const, rslora: false };
    const lora: LoraWeights = newLora(ref.config, { ...loraCfg, targets: [...loraCfg.targets] }, new Rng(3), Float32Array);
    // B = 0 at init would hide dX·W through the LoRA branch; give it values so every product matters.
    const rng = new Rng(9);
    forEachPair(lora, (_t, _l, p) => {
      for (let k = 0; k < p.B.length; k++) p.B[k] = 0.05 * rng.normal();
    });
    const g1 = lossAndGrads(half, lora, b, { training: false });
    const g0 = lossAndGrads(ref, lora, b, { training: false });
    assert.equal(g1.loss, g0.loss);
    assert.ok(g0.grads && g1.grads);
    let nonzero = 0;
    forEachPair(g0.grads, (t, l, p) => {
      const q = g1.grads?.layers[l][t];
      assert.ok(q);
      bitsEqual(q.A, p.A, `grad ${l}.${t}.A`);
      bitsEqual(q.B, p.B, `grad ${l}.${t}.B`);
      for (const x of p.A) if (x !== 0) nonzero++;
    });
    assert.ok(nonzero > 0, 'gradients are not all zero');
  });
}

test('frozenF16 halves the memory a loaded model holds', async () => {
  setFlagsFromString('--expose-gc');
  const runGc = runInNewContext('gc') as () => void;
  // Array buffer backing stores are released after the collection, so collect twice across a turn of the loop.
  const gc = async (): Promise<void> => {
    runGc();
    await new Promise((r) => setImmediate(r));
    runGc();
  };
  const dir = join(root, 'big');
  // About 2.4 M frozen parameters; norms are a fraction of a percent.
  writeRandomModel(dir, tinyHfConfig('llama', { vocab_size: 2000, hidden_size: 256, intermediate_size: 512, num_attention_heads: 8, num_key_value_heads: 8, head_dim: 32 }), { seed: 2 });
  // Loaded models stay referenced so a later measurement does not see an earlier model being freed.
  const keep: ModelWeights[] = [];
  const held = async (f16: boolean): Promise<number> => {
    await gc();
    const m0 = process.memoryUsage();
    const before = m0.heapUsed + m0.arrayBuffers;
    const model = loadModel(dir, { frozenF16: f16 });
    await gc();
    const m1 = process.memoryUsage();
    const used = m1.heapUsed + m1.arrayBuffers - before;
    keep.push(model);
    return used;
  };
  const f32 = await held(false);
  const f16 = await held(true);
  const ratio = f16 / f32;
  assert.ok(f32 > 2_000_000 * 4, `f32 model holds ${f32} bytes`);
  assert.ok(ratio > 0.4 && ratio < 0.6, `f16 model holds ${f16} bytes, f32 ${f32}: ratio ${ratio.toFixed(3)}`);
});

test('eval-loss --frozen-f16 prints the loss of the rounded f32 model', () => {
  const dir = join(root, 'cli-model');
  writeRandomModel(dir, tinyHfConfig('llama'), { seed: 4, normStd: 0.1 });
  const data = join(root, 'data.jsonl');
  const rows = [
    [1, 5, 9, 13, 17, 21],
    [1, 40, 41, 42],
  ];
  writeFileSync(data, rows.map((r) => JSON.stringify({ input_ids: r })).join('\n') + '\n');
  const run = (extra: string[]): { loss: number; tokens: number } => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin/lora-studio.mjs'), 'eval-loss', '--model', dir, '--data', data, ...extra], {
      encoding: 'utf8',
      env: { ...process.env, LORA_STUDIO_FROM_SOURCE: '1' },
      timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim()) as { loss: number; tokens: number };
  };
  const out = run(['--frozen-f16']);
  const ref = roundedReference(dir);
  // The CLI runs the cpu backend's kernels (native when built): the same ones here, so the losses are equal bit for bit.
  const want = evalLoss(ref, null, padBatch(rows.map((r) => ({ inputIds: r, labels: r })), ref.config.padTokenId ?? 0), { ops: cpuOps(ref) });
  assert.equal(out.tokens, want.tokens);
  assert.equal(out.loss, want.loss);
  // Not the unrounded model's loss: the flag did something.
  assert.notEqual(run([]).loss, out.loss);
});

test('the memory estimate counts 2 bytes per frozen matrix weight with frozenWeightsF16 on the cpu', () => {
  const dir = join(root, 'estimate');
  writeRandomModel(dir, tinyHfConfig('qwen2', { vocab_size: 200 }), { seed: 3 });
  const m = loadModel(dir);
  const matrices = frozenMatrices(m).reduce((n, { w }) => n + w.length, 0);
  const run = (on: boolean): Parameters<typeof estimateTrainingMemory>[1] => ({
    lora: { r: 4, targets: ['q_proj', 'v_proj'], dropout: 0 },
    train: { batchSize: 2, maxSeqLen: 16, frozenWeightsF16: on },
  });
  const off = estimateTrainingMemory(m.config, run(false));
  const on = estimateTrainingMemory(m.config, run(true));
  const scratch = 128 * Math.max(m.config.hiddenSize, m.config.intermediateSize) * 4;
  assert.equal(off.weights - on.weights, matrices * 2 - scratch);
  assert.ok(on.total < off.total);
  // The GPU backend uploads its own copy; the flag is a cpu-memory setting.
  assert.equal(estimateTrainingMemory(m.config, run(true), { backend: 'webgpu' }).weights, estimateTrainingMemory(m.config, run(false), { backend: 'webgpu' }).weights);
});
