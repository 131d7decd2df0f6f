// Parity with Hugging Face transformers + PEFT (fp32, CPU, eager attention): for tiny random models of every family,
// `lora-studio eval-loss` gives the loss and LoRA gradients PyTorch gives (loss.backward on the PeftModel), for
// adapters written by PEFT (save_pretrained) and by the studio (saveAdapter), whose logits are compared as well.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyHfConfig, writeRandomModel } from '../../engine/io/make-model.ts';
import { loadModel } from '../../engine/io/hf-model.ts';
import { saveAdapter, loadAdapter } from '../../engine/io/peft-adapter.ts';
import { withSafetensors } from '../../engine/io/safetensors.ts';
import { forwardLogits } from '../../engine/model/llama.ts';
import { newLora } from '../../engine/model/lora.ts';
import type { LoraTargetName } from '../../engine/model/types.ts';
import { padBatch } from '../../engine/train/batching.ts';
import { Rng } from '../../engine/util/rng.ts';
import { repoRoot, runPython } from '../helpers/python.ts';

const dir = mkdtempSync(join(tmpdir(), 'peft-parity-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const ALL: LoraTargetName[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

interface Case {
  name: string;
  config: Record<string, unknown>;
  lora: { r: number; alpha: number; targets: LoraTargetName[]; rslora: boolean };
  /** who writes the adapter */
  writer: 'peft' | 'studio';
}

const cases: Case[] = [
  {
    name: 'llama, llama3 rope scaling, tied embeddings, GQA',
    config: tinyHfConfig('llama', {
      rope_theta: 100,
      rope_scaling: { rope_type: 'llama3', factor: 4, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 },
      tie_word_embeddings: true,
    }),
    lora: { r: 4, alpha: 8, targets: ['q_proj', 'v_proj'], rslora: false },
    writer: 'peft',
  },
  {
    name: 'mistral, untied, every target, rsLoRA',
    config: tinyHfConfig('mistral', { num_key_value_heads: 4 }),
    lora: { r: 3, alpha: 5, targets: ALL, rslora: true },
    writer: 'peft',
  },
  {
    name: 'qwen2 (q/k/v bias), untied',
    config: tinyHfConfig('qwen2', { num_key_value_heads: 1, rope_theta: 1000000 }),
    lora: { r: 2, alpha: 16, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], rslora: false },
    writer: 'peft',
  },
  {
    name: 'qwen3 (q_norm/k_norm), tied, head_dim ≠ hidden/heads',
    config: tinyHfConfig('qwen3', { tie_word_embeddings: true, head_dim: 16 }),
    lora: { r: 4, alpha: 4, targets: ['q_proj', 'gate_proj', 'up_proj', 'down_proj'], rslora: false },
    writer: 'peft',
  },
  {
    name: 'llama untied, studio-written adapter loaded by PEFT',
    config: tinyHfConfig('llama', { num_hidden_layers: 3 }),
    lora: { r: 5, alpha: 7, targets: ['k_proj', 'o_proj', 'up_proj'], rslora: false },
    writer: 'studio',
  },
];

// Three rows of different lengths: right padding, prompt tokens masked with −100, a row with its last label masked.
function batchRows(vocab: number, seed: number): { input_ids: number[]; labels: number[] }[] {
  const rng = new Rng(seed);
  const ids = (n: number): number[] => Array.from({ length: n }, () => 3 + rng.int(vocab - 3));
  const a = ids(9);
  const b = ids(14);
  const c = ids(5);
  return [
    { input_ids: a, labels: a.map((x, i) => (i < 3 ? -100 : x)) },
    { input_ids: b, labels: b.map((x, i) => (i === b.length - 1 ? -100 : x)) },
    { input_ids: c, labels: [...c] },
  ];
}

function cli(args: string[]): string {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/lora-studio.mjs'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, LORA_STUDIO_FROM_SOURCE: '1' },
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`lora-studio ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

function readTensors(path: string): Map<string, Float32Array> {
  return withSafetensors(path, (f) => new Map(f.names().map((n) => [n, Float32Array.from(f.readFloat(n))])));
}

/** |a − b| ≤ rel · max|b| over the whole tensor (elementwise relative error is meaningless near zero). */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} values vs ${expected.length}`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  assert.ok(scale > 0, `${what}: reference is all zeros, so the comparison would prove nothing`);
  let worst = 0;
  let at = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (d > worst) {
      worst = d;
      at = i;
    }
  }
  assert.ok(worst <= rel * scale, `${what}: max |diff| ${worst.toExponential(3)} at ${at} (${actual[at]} vs ${expected[at]}), allowed ${(rel * scale).toExponential(3)}`);
}

const prepared = cases.map((c, i) => {
  const modelDir = join(dir, `model-${i}`);
  const modelConfig = writeRandomModel(modelDir, c.config, { seed: 100 + i, std: 0.1 });
  const data = join(dir, `data-${i}.jsonl`);
  const rows = batchRows(modelConfig.vocabSize, 7 + i);
  writeFileSync(data, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const adapterDir = join(dir, `adapter-${i}`);
  if (c.writer === 'studio') {
    const lora = newLora(modelConfig, { ...c.lora, dropout: 0 }, new Rng(3), Float32Array);
    // B = 0 would make every A gradient zero; give B random values so both matter.
    const rng = new Rng(4);
    for (const layer of lora.layers) for (const p of Object.values(layer)) for (let j = 0; j < p.B.length; j++) p.B[j] = rng.normal() * 0.1;
    saveAdapter(adapterDir, lora, { baseModelNameOrPath: modelDir });
  }
  return { c, modelDir, data, rows, adapterDir, refGrads: join(dir, `ref-grads-${i}.safetensors`), refLogits: join(dir, `ref-logits-${i}.safetensors`) };
});

const specPath = join(dir, 'spec.json');
writeFileSync(
  specPath,
  JSON.stringify({
    cases: prepared.map((p, i) => ({
      model_dir: p.modelDir,
      data: p.data,
      grads_out: p.refGrads,
      logits_out: p.refLogits,
      ...(p.c.writer === 'peft' ? { make_adapter: { ...p.c.lora, seed: 11 + i, out_dir: p.adapterDir } } : { adapter_dir: p.adapterDir }),
    })),
  }),
);
const reference = JSON.parse(runPython('peft_reference.py', [specPath])) as { results: { loss: number; tokens: number; rope_inv_freq: number[] }[] };

prepared.forEach((p, i) => {
  test(`PEFT parity: ${p.c.name}`, () => {
    const ref = reference.results[i];
    const oursGrads = join(dir, `ours-grads-${i}.safetensors`);
    const out = cli(['eval-loss', '--model', p.modelDir, '--adapter', p.adapterDir, '--data', p.data, '--grads', oursGrads]);
    const lines = out.trim().split('\n');
    assert.equal(lines.length, 1, `eval-loss prints one line, got: ${out}`);
    const ours = JSON.parse(lines[0]) as { loss: number; tokens: number };
    assert.equal(ours.tokens, ref.tokens);
    assert.ok(Math.abs(ours.loss - ref.loss) <= 1e-5 * Math.abs(ref.loss), `loss ${ours.loss} vs PyTorch ${ref.loss}`);

    const refG = readTensors(p.refGrads);
    const ourG = readTensors(oursGrads);
    assert.deepEqual([...ourG.keys()].sort(), [...refG.keys()].sort(), 'same LoRA tensors');
    for (const [key, g] of refG) assertClose(ourG.get(key) as Float32Array, g, 1e-5, key);

    // logits of the same adapter through the studio's forward
    const model = loadModel(p.modelDir);
    const lora = loadAdapter(p.adapterDir, model.config);
    const batch = padBatch(p.rows.map((r) => ({ inputIds: r.input_ids, labels: r.labels })), 0);
    const logits = forwardLogits(model, lora, batch.inputIds, batch.batchSize, batch.seqLen);
    const refLogits = readTensors(p.refLogits).get('logits') as Float32Array;
    // only real (unpadded) positions: HF masks padding keys, so padded rows differ by construction
    const V = model.config.vocabSize;
    const real = (arr: ArrayLike<number>): number[] =>
      p.rows.flatMap((r, b) => Array.from({ length: r.input_ids.length * V }, (_, j) => arr[b * batch.seqLen * V + j]));
    assertClose(real(logits), real(refLogits), 1e-5, 'logits');
  });
});

test('llama3 rope scaling is really exercised (HF inv_freq differs from the default rope)', () => {
  const inv = reference.results[0].rope_inv_freq;
  const d = inv.length * 2;
  const plain = inv.map((_, i) => 100 ** (-(2 * i) / d));
  assert.ok(inv.some((f, i) => Math.abs(f - plain[i]) > 1e-3 * plain[i]), 'scaled frequencies');
  assert.ok(inv.some((f, i) => Math.abs(f - plain[i] / 4) > 1e-3 * plain[i] && Math.abs(f - plain[i]) > 1e-3 * plain[i]), 'one frequency is in the blended band');
});
