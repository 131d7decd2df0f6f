/**
 * Our GGUF files in a real llama.cpp (node-llama-cpp 3.22.1's prebuilt cpu binary, test/helpers/llama-cpp.ts), on the
 * real SmolLM2-135M-Instruct Q4_1 GGUF:
 * - the f16 and q8_0 model GGUFs the studio exports from it load in llama.cpp, tokenize as ours do, and give the
 *   studio's teacher-forced next-token log-probabilities and greedy tokens on the same weights;
 * - QLoRA end to end: a short cpu run on the Q4_1 file as stored (train.baseWeights 'as-stored') lowers the loss, its
 *   adapter exported as a GGUF LoRA is applied by llama.cpp to that same Q4_1 file, and llama.cpp's log-probs with it
 *   match the studio's with the same adapter on the packed base, far from llama.cpp's without it (on the trained text
 *   and on one the run never saw); the f16 GGUF LoRA too; and the same adapter at 0.8 of its scale lands outside the
 *   bounds, so a wrong alpha or tensor would fail here.
 * llama.cpp computes a quantized weight's products with q8 activations (q8_0 for Q8_0, q8_1 for Q4_1) and an f16
 * weight's with f16 activations, so the bounds below are the measured gaps (in the comments) with a small margin.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, test } from 'node:test';
import { DEFAULT_RUN_CONFIG, type EngineEvent, type RunConfig } from '../../common/protocol.ts';
import { quantizeCommand } from '../../host/cli/quant.ts';
import { cpuOps } from '../../engine/backend/cpu/cpu-ops.ts';
import { startEngine } from '../../engine/engine-host.ts';
import { generate } from '../../engine/generate/generate.ts';
import { loadModel, loadTokenizer } from '../../engine/io/model-source.ts';
import { loadAdapter } from '../../engine/io/peft-adapter.ts';
import { forwardLogits } from '../../engine/model/llama.ts';
import type { LoraWeights, ModelWeights } from '../../engine/model/types.ts';
import { PackedWeight } from '../../engine/quant/packed-weight.ts';
import { exportAdapterGguf } from '../../engine/quant/gguf-lora.ts';
import { readGguf } from '../../engine/quant/gguf-reader.ts';
import { getLlamaCpp, llamaTeacherForced, type LlamaSequence } from '../helpers/llama-cpp.ts';
import { realModelPath } from '../helpers/real-model.ts';

const dir = mkdtempSync(join(tmpdir(), 'llama-cpp-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const TEXT = 'The little robot walked into the kitchen, looked at the empty table and said: "Today I will learn to bake bread."';
const HELD_OUT = 'The little robot walked into the library, looked at the tall shelves and said: "Today I will learn to read books."';
const PROMPT = 'The capital of France is';
const NEW_TOKENS = 12;
const THREADS = 2;

/** The studio's teacher-forced log p(ids[t+1] | ids[..t]) (float64 log-softmax of its float32 logits) and argmax. */
function studioTeacherForced(model: ModelWeights, lora: LoraWeights | null, ids: number[]): { logProbs: number[]; argmax: number[] } {
  const T = ids.length;
  const V = model.config.vocabSize;
  const logits = forwardLogits(model, lora, Int32Array.from(ids), 1, T, { ops: cpuOps(model) });
  const logProbs: number[] = [];
  const argmax: number[] = [];
  for (let t = 0; t < T - 1; t++) {
    let max = -Infinity;
    let best = -1;
    for (let v = 0; v < V; v++) {
      if (logits[t * V + v] > max) {
        max = logits[t * V + v];
        best = v;
      }
    }
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[t * V + v] - max);
    logProbs.push(logits[t * V + ids[t + 1]] - max - Math.log(sum));
    argmax.push(best);
  }
  return { logProbs, argmax };
}

const meanLoss = (logProbs: number[]): number => -logProbs.reduce((a, b) => a + b, 0) / logProbs.length;
const maxAbsDiff = (a: number[], b: number[]): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
const agreement = (a: number[], b: number[]): number => a.filter((x, i) => x === b[i]).length / a.length;

async function llamaGreedy(seq: LlamaSequence, prompt: number[], n: number): Promise<number[]> {
  await seq.clearHistory();
  const out: number[] = [];
  for await (const token of seq.evaluate(prompt, { temperature: 0 })) {
    out.push(token);
    if (out.length >= n) break;
  }
  return out;
}

// Bounds per export format, a little above what was measured on this model and text (see the log lines).
const EXPORT_BOUNDS = {
  // measured: |Δloss| 2.7e-4, max |Δ log p| 3.1e-3, argmax agreement 100 %, greedy 12/12 identical
  f16: { loss: 0.002, logProb: 0.015, agreement: 1, greedySame: NEW_TOKENS },
  // measured: |Δloss| 1.2e-2, max |Δ log p| 0.17, argmax agreement 95.8 % (23 of 24), greedy 12/12 identical. llama.cpp's
  // q8_0 activations move a log-prob as much as re-quantizing the weights does (studio q8_0 vs f16: up to 0.11).
  q8_0: { loss: 0.03, logProb: 0.3, agreement: 0.9, greedySame: 6 },
} as const;

for (const format of ['f16', 'q8_0'] as const) {
  test(`our ${format} GGUF export of the real SmolLM2 loads in llama.cpp and gives the studio's tokens, log-probs and greedy text`, { timeout: 600_000 }, async () => {
    const source = realModelPath();
    const out = join(dir, `smollm2-${format}.gguf`);
    const res = quantizeCommand({ model: source, format, out, quiet: true });
    assert.equal(res.tokenizerNote, null);
    const model = loadModel(out, { dtype: Float32Array });
    const tok = await loadTokenizer(out);
    assert.ok(tok, 'the export carries a tokenizer');
    const ids = tok.encode(TEXT, { addSpecialTokens: false });
    const promptIds = tok.encode(PROMPT, { addSpecialTokens: false });

    const llama = await getLlamaCpp();
    const lm = await llama.loadModel({ modelPath: out, gpuLayers: 0 });
    try {
      // llama.cpp reads the tokenizer keys we wrote: the same ids for the same text.
      assert.deepEqual(lm.tokenize(TEXT), ids, 'llama.cpp tokenizes the text as the studio does');
      assert.deepEqual(lm.tokenize(PROMPT), promptIds);
      const ctx = await lm.createContext({ contextSize: 256, batchSize: 256, threads: THREADS, sequences: 1 });
      const seq = ctx.getSequence();
      const theirs = await llamaTeacherForced(seq, ids);
      const theirGreedy = await llamaGreedy(seq, promptIds, NEW_TOKENS);
      await ctx.dispose();

      const ours = studioTeacherForced(model, null, ids);
      const ourGreedy = generate(model, null, promptIds, { maxNewTokens: NEW_TOKENS, temperature: 0, topP: 1, seed: 0, eosTokenIds: [] });
      const dLoss = Math.abs(meanLoss(ours.logProbs) - meanLoss(theirs.logProbs));
      const dLogProb = maxAbsDiff(ours.logProbs, theirs.logProbs);
      const agree = agreement(ours.argmax, theirs.argmax);
      let same = 0;
      while (same < NEW_TOKENS && ourGreedy[same] === theirGreedy[same]) same++;
      console.log(
        `# ${format}: ${ids.length} tokens, loss studio ${meanLoss(ours.logProbs).toFixed(5)} llama.cpp ${meanLoss(theirs.logProbs).toFixed(5)} (|Δ| ${dLoss.toExponential(2)}), ` +
          `max |Δ log p| ${dLogProb.toExponential(2)}, argmax agreement ${(agree * 100).toFixed(1)} %, greedy ${same}/${NEW_TOKENS} identical ` +
          `(studio "${tok.decode(ourGreedy)}", llama.cpp "${tok.decode(theirGreedy)}")`,
      );
      const bound = EXPORT_BOUNDS[format];
      assert.ok(meanLoss(ours.logProbs) > 0.5 && meanLoss(ours.logProbs) < 8, `a sensible loss for real text (${meanLoss(ours.logProbs)})`);
      assert.ok(dLoss <= bound.loss, `teacher-forced loss differs by ${dLoss} (bound ${bound.loss})`);
      assert.ok(dLogProb <= bound.logProb, `a token's log-prob differs by ${dLogProb} (bound ${bound.logProb})`);
      assert.ok(agree >= bound.agreement, `argmax agreement ${agree} (bound ${bound.agreement})`);
      assert.ok(same >= bound.greedySame, `greedy tokens: ${same} of ${NEW_TOKENS} identical before they part (bound ${bound.greedySame}): studio ${ourGreedy.join(',')} llama.cpp ${theirGreedy.join(',')}`);
    } finally {
      await lm.dispose();
    }
  });
}

function trainUntilEnd(config: RunConfig, runDir: string): Promise<EngineEvent[]> {
  const engine = startEngine();
  return new Promise<EngineEvent[]>((resolve) => {
    const seen: EngineEvent[] = [];
    const off = engine.on((e) => {
      seen.push(e);
      if (e.type === 'done' || e.type === 'stopped' || e.type === 'error') {
        off();
        resolve(seen);
      }
    });
    engine.send({ type: 'train', runId: 'qlora-llama-cpp', config, runDir, resume: false });
  }).finally(() => engine.terminate());
}

test('QLoRA on the real Q4_1 GGUF as stored: the loss falls, and llama.cpp applies the exported GGUF LoRA to that same file as the studio does', { timeout: 900_000 }, async () => {
  const source = realModelPath();
  const datasetPath = join(dir, 'robot.jsonl');
  const lines = [
    TEXT,
    'The little robot opened the oven, looked at the warm bread and said: "Today I baked bread."',
    'The little robot walked into the garden, looked at the tall tree and said: "Today I will learn to climb."',
    'The little robot sat at the empty table and said: "Tomorrow I will learn to bake cake."',
  ];
  writeFileSync(datasetPath, lines.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  const STEPS = 8;
  const config: RunConfig = {
    ...DEFAULT_RUN_CONFIG,
    backend: 'cpu',
    modelPath: source,
    datasetPath,
    // Every linear, q_proj and k_proj included: their lora_b rows must be permuted to llama.cpp's RoPE layout.
    lora: { r: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], rslora: false },
    train: { ...DEFAULT_RUN_CONFIG.train, steps: STEPS, batchSize: 2, maxSeqLen: 40, learningRate: 3e-3, baseWeights: 'as-stored' },
  };
  const runDir = join(dir, 'run');
  mkdirSync(runDir);
  const events = await trainUntilEnd(config, runDir);
  assert.equal(events.at(-1)?.type, 'done', JSON.stringify(events.at(-1)));
  const losses = events.flatMap((e) => (e.type === 'metric' ? [e.point.loss] : []));
  assert.equal(losses.length, STEPS);
  const head = (losses[0] + losses[1]) / 2;
  const tail = (losses[STEPS - 1] + losses[STEPS - 2]) / 2;
  assert.ok(tail < head - 0.3, `the loss falls: ${losses.map((l) => l.toFixed(3)).join(', ')}`);

  const adapterDir = join(runDir, 'adapter');
  const loraFile = join(dir, 'robot-lora.gguf');
  exportAdapterGguf(adapterDir, loraFile, { dtype: 'f32' });
  const loraF16File = join(dir, 'robot-lora-f16.gguf');
  exportAdapterGguf(adapterDir, loraF16File, { dtype: 'f16' });
  const written = readGguf(loraFile);
  const named = written.kv.get('general.base_model.0.name');
  assert.ok(named && named.type === 'string' && named.value === basename(source), `the GGUF LoRA names its base file (${JSON.stringify(named)})`);

  // The studio on the packed Q4_1 base, as the run trained on it, with and without the adapter.
  const model = loadModel(source, { dtype: Float32Array, baseWeights: 'as-stored' });
  assert.ok(model.layers[0].q.weight instanceof PackedWeight && model.layers[0].q.weight.format === 'q4_1', 'the base is held packed, as stored');
  const lora = loadAdapter(adapterDir, model.config);
  const tok = await loadTokenizer(source);
  assert.ok(tok);
  // The trained text, and one the run never saw (there the adapter's effect is not saturated, so a wrong scale shows).
  const texts = { trained: TEXT, heldOut: HELD_OUT };
  const ids = { trained: tok.encode(TEXT, { addSpecialTokens: false }), heldOut: tok.encode(HELD_OUT, { addSpecialTokens: false }) };
  type Kind = keyof typeof texts;
  const kinds = Object.keys(texts) as Kind[];
  const studio = Object.fromEntries(kinds.map((k) => [k, { lora: studioTeacherForced(model, lora, ids[k]).logProbs, base: studioTeacherForced(model, null, ids[k]).logProbs }])) as Record<Kind, { lora: number[]; base: number[] }>;

  const llama = await getLlamaCpp();
  const lm = await llama.loadModel({ modelPath: source, gpuLayers: 0 });
  const theirs = {} as Record<Kind, { lora: number[]; base: number[]; scaled: number[]; loraF16: number[] }>;
  try {
    // The same adapter at 0.8 of its scale: how far a wrong alpha (or a wrong tensor) would put llama.cpp from the studio.
    const contexts = {
      base: await lm.createContext({ contextSize: 256, batchSize: 256, threads: THREADS, sequences: 1 }),
      lora: await lm.createContext({ contextSize: 256, batchSize: 256, threads: THREADS, sequences: 1, lora: { adapters: [{ filePath: loraFile }] } }),
      scaled: await lm.createContext({ contextSize: 256, batchSize: 256, threads: THREADS, sequences: 1, lora: { adapters: [{ filePath: loraFile, scale: 0.8 }] } }),
      loraF16: await lm.createContext({ contextSize: 256, batchSize: 256, threads: THREADS, sequences: 1, lora: { adapters: [{ filePath: loraF16File }] } }),
    };
    const seqs = { base: contexts.base.getSequence(), lora: contexts.lora.getSequence(), scaled: contexts.scaled.getSequence(), loraF16: contexts.loraF16.getSequence() };
    for (const k of kinds) {
      theirs[k] = {
        base: (await llamaTeacherForced(seqs.base, ids[k])).logProbs,
        lora: (await llamaTeacherForced(seqs.lora, ids[k])).logProbs,
        scaled: (await llamaTeacherForced(seqs.scaled, ids[k])).logProbs,
        loraF16: (await llamaTeacherForced(seqs.loraF16, ids[k])).logProbs,
      };
    }
    for (const c of Object.values(contexts)) await c.dispose();
  } finally {
    await lm.dispose();
  }
  console.log(`# QLoRA run losses ${losses.map((l) => l.toFixed(3)).join(', ')}`);
  const m = {} as Record<Kind, { gapLora: number; gapBase: number; tokenGapLora: number; tokenGapBase: number; effect: number; studioEffect: number; tokenGapScaled: number; gapScaled: number; f16Lora: number; gapLoraF16: number; tokenGapLoraF16: number }>;
  for (const k of kinds) {
    const s = studio[k];
    const t = theirs[k];
    m[k] = {
      gapLora: Math.abs(meanLoss(s.lora) - meanLoss(t.lora)),
      gapBase: Math.abs(meanLoss(s.base) - meanLoss(t.base)),
      tokenGapLora: maxAbsDiff(s.lora, t.lora),
      tokenGapBase: maxAbsDiff(s.base, t.base),
      effect: meanLoss(t.base) - meanLoss(t.lora),
      studioEffect: meanLoss(s.base) - meanLoss(s.lora),
      tokenGapScaled: maxAbsDiff(s.lora, t.scaled),
      gapScaled: Math.abs(meanLoss(s.lora) - meanLoss(t.scaled)),
      f16Lora: maxAbsDiff(t.lora, t.loraF16),
      gapLoraF16: Math.abs(meanLoss(s.lora) - meanLoss(t.loraF16)),
      tokenGapLoraF16: maxAbsDiff(s.lora, t.loraF16),
    };
    console.log(
      `# ${k} text (${ids[k].length} tokens): with the LoRA studio ${meanLoss(s.lora).toFixed(5)} llama.cpp ${meanLoss(t.lora).toFixed(5)} ` +
        `(|Δ| ${m[k].gapLora.toExponential(2)}, max |Δ log p| ${m[k].tokenGapLora.toExponential(2)}); base studio ${meanLoss(s.base).toFixed(5)} llama.cpp ${meanLoss(t.base).toFixed(5)} ` +
        `(|Δ| ${m[k].gapBase.toExponential(2)}, max |Δ log p| ${m[k].tokenGapBase.toExponential(2)}); the LoRA lowers llama.cpp's loss by ${m[k].effect.toFixed(4)}, the studio's by ${m[k].studioEffect.toFixed(4)}; ` +
        `at 0.8 of its scale llama.cpp is ${m[k].gapScaled.toFixed(4)} from the studio (max |Δ log p| ${m[k].tokenGapScaled.toFixed(4)}); the f16 GGUF LoRA is ${m[k].f16Lora.toExponential(2)} from the f32 one in llama.cpp, and ${m[k].gapLoraF16.toExponential(2)} (max |Δ log p| ${m[k].tokenGapLoraF16.toExponential(2)}) from the studio`,
    );
  }
  // Measured on this machine (x64, AVX-512): |Δ loss| base 5.6e-3 (trained text) and 3.1e-2 (held out), with the LoRA
  // 3.6e-3 and 1.3e-2; max |Δ log p| base 0.24 and 0.18, with the LoRA 0.065 and 0.21; the LoRA's effect on the loss
  // agrees to 2e-3 and 1.7e-2. llama.cpp computes the Q4_1 products with q8_1 activations, the studio with f32 ones on
  // the same blocks; that is the whole gap (our f16 export of the same dequantized weights agrees to 3e-4 above).
  // Since the token embedding is held as the file stores it (q8_0) during training too, the trained adapter differs a
  // little and, held out, the two gaps (3.0e-2 base, 1.4e-2 with the LoRA) fall on opposite sides: the effects then
  // differ by their sum, 4.4e-2. The effect bound is that sum's scale with a margin (it cannot exceed gapBase + gapLora,
  // each bounded by `loss`); at 0.8 of the LoRA's scale the held-out gap is 0.13, still far outside.
  const BOUND = { loss: 0.05, logProb: 0.35, effect: 0.06 };
  for (const k of kinds) {
    assert.ok(m[k].gapBase <= BOUND.loss, `${k}, base: |Δ loss| ${m[k].gapBase} (bound ${BOUND.loss})`);
    assert.ok(m[k].tokenGapBase <= BOUND.logProb, `${k}, base: a token's log-prob differs by ${m[k].tokenGapBase} (bound ${BOUND.logProb})`);
    assert.ok(m[k].gapLora <= BOUND.loss, `${k}, with the LoRA: |Δ loss| ${m[k].gapLora} (bound ${BOUND.loss})`);
    assert.ok(m[k].tokenGapLora <= BOUND.logProb, `${k}, with the LoRA: a token's log-prob differs by ${m[k].tokenGapLora} (bound ${BOUND.logProb})`);
    // The f16 GGUF LoRA (the studio's f16-rounded adapter gives its f32 loss to 1e-5, yet llama.cpp's f16 LoRA products
    // move a log-prob by up to 0.25 from its f32 ones; measured from the studio: |Δ loss| 5.3e-3 and 4.3e-3, max 0.17).
    assert.ok(m[k].gapLoraF16 <= BOUND.loss, `${k}, with the f16 LoRA: |Δ loss| ${m[k].gapLoraF16} (bound ${BOUND.loss})`);
    assert.ok(m[k].tokenGapLoraF16 <= BOUND.logProb, `${k}, with the f16 LoRA: a token's log-prob differs by ${m[k].tokenGapLoraF16} (bound ${BOUND.logProb})`);
    assert.ok(Math.abs(m[k].effect - m[k].studioEffect) <= BOUND.effect, `${k}: the LoRA lowers the loss by the same amount in both (studio ${m[k].studioEffect}, llama.cpp ${m[k].effect})`);
  }
  // llama.cpp really applies the LoRA (measured: the loss falls by 3.0 and 2.3), and applies it at its scale: at 0.8
  // of it, llama.cpp's held-out log-probs are 1.2 (per token) and its loss 0.13 from the studio's (bounds' double).
  assert.ok(m.trained.effect > 1 && m.heldOut.effect > 1, `llama.cpp really applies the LoRA: its loss falls by ${m.trained.effect} (trained text) and ${m.heldOut.effect} (held out)`);
  assert.ok(m.heldOut.tokenGapScaled > 2 * BOUND.logProb, `the comparison would catch the adapter at 0.8 of its scale (max |Δ log p| ${m.heldOut.tokenGapScaled})`);
  assert.ok(m.heldOut.gapScaled > 2 * BOUND.loss, `the comparison would catch the adapter at 0.8 of its scale (|Δ loss| ${m.heldOut.gapScaled})`);
});
