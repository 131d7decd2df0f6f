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
  // On another x64 (AMD EPYC with AVX-512 BF16/VNNI: llama.cpp's kernels follow the cpu) the greedy text parts after
  // 5 tokens, at a near tie ("Paris." then two continuations, 0.32 apart in the studio's log-probs); so greedy texts
  // may part, but only where the studio's own log-probs of the two tokens are within twice `logProb` of each other
  // (each may be off by `logProb`; a wrong weight would part them at a clear choice).
  q8_0: { loss: 0.03, logProb: 0.3, agreement: 0.9, greedySame: 3 },
} as const;

/** The studio's log p of `a` minus that of `b` after `prefix`: how clear its choice between the two is. */
function studioMargin(model: ModelWeights, prefix: number[], a: number, b: number): number {
  const V = model.config.vocabSize;
  const T = prefix.length;
  const logits = forwardLogits(model, null, Int32Array.from(prefix), 1, T, { ops: cpuOps(model) });
  return logits[(T - 1) * V + a] - logits[(T - 1) * V + b];
}

/** Our GGUF export of the real model in `format`, written once per file run (the QLoRA test's f16 twin is test 1's file). */
const exports = new Map<string, { out: string; tokenizerNote: string | null }>();
function exportOf(format: 'f16' | 'q8_0'): { out: string; tokenizerNote: string | null } {
  let e = exports.get(format);
  if (!e) {
    const out = join(dir, `smollm2-${format}.gguf`);
    e = { out, tokenizerNote: quantizeCommand({ model: realModelPath(), format, out, quiet: true }).tokenizerNote };
    exports.set(format, e);
  }
  return e;
}

for (const format of ['f16', 'q8_0'] as const) {
  test(`our ${format} GGUF export of the real SmolLM2 loads in llama.cpp and gives the studio's tokens, log-probs and greedy text`, { timeout: 600_000 }, async () => {
    const { out, tokenizerNote } = exportOf(format);
    assert.equal(tokenizerNote, null);
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
      if (same < NEW_TOKENS) {
        // Where they part, llama.cpp's token was a near-tie in the studio's distribution (a logit gap is a log-prob gap).
        const margin = studioMargin(model, [...promptIds, ...ourGreedy.slice(0, same)], ourGreedy[same], theirGreedy[same]);
        console.log(`# ${format}: greedy texts part at token ${same + 1}, where the studio prefers its token by ${margin.toExponential(2)} in log-prob`);
        // Each of the two log-probs may be off by `logProb` between the two, so their difference by twice that.
        assert.ok(margin >= 0 && margin <= 2 * bound.logProb, `greedy texts part at token ${same + 1} at a clear choice: the studio prefers ${ourGreedy[same]} over llama.cpp's ${theirGreedy[same]} by ${margin} (bound ${2 * bound.logProb})`);
      }
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

  // llama.cpp on two bases: the file as stored (its Q4_1 products take q8_1-quantized activations, in kernels that
  // follow the cpu's instruction set), and our f16 export of the same dequantized weights (its f16 products follow
  // the studio's f32 ones to ~1e-4, on any cpu). The twin pins the LoRA tightly — names, q/k permutation, scale —
  // wherever the test runs; the file's own gap to its twin is llama.cpp's quantization noise on this cpu, which the
  // file-as-stored comparisons are measured against.
  const twinFile = exportOf('f16').out;
  const llama = await getLlamaCpp();
  type Variant = 'base' | 'lora' | 'scaled' | 'loraF16';
  const adapters: Record<Variant, { filePath: string; scale?: number }[] | null> = {
    base: null,
    lora: [{ filePath: loraFile }],
    // The same adapter at 0.8 of its scale: how far a wrong alpha (or a wrong tensor) would put llama.cpp from the studio.
    scaled: [{ filePath: loraFile, scale: 0.8 }],
    loraF16: [{ filePath: loraF16File }],
  };
  const measure = async (modelPath: string, variants: readonly Variant[]): Promise<Record<Kind, Record<Variant, number[]>>> => {
    const lm = await llama.loadModel({ modelPath, gpuLayers: 0 });
    const out = Object.fromEntries(kinds.map((k) => [k, {}])) as Record<Kind, Record<Variant, number[]>>;
    try {
      for (const v of variants) {
        const a = adapters[v];
        const ctx = await lm.createContext({ contextSize: 256, batchSize: 256, threads: THREADS, sequences: 1, ...(a ? { lora: { adapters: a } } : {}) });
        const seq = ctx.getSequence();
        for (const k of kinds) out[k][v] = (await llamaTeacherForced(seq, ids[k])).logProbs;
        await ctx.dispose();
      }
    } finally {
      await lm.dispose();
    }
    return out;
  };
  const theirs = await measure(source, ['base', 'lora', 'loraF16']);
  const twin = await measure(twinFile, ['base', 'lora', 'scaled']);
  console.log(`# QLoRA run losses ${losses.map((l) => l.toFixed(3)).join(', ')}`);
  const L = meanLoss;
  const m = {} as Record<
    Kind,
    { twinBase: number; twinLora: number; twinTokBase: number; twinTokLora: number; noiseBase: number; noiseLora: number; gapBase: number; gapLora: number; gapLoraF16: number; effect: number; studioEffect: number; twinScaled: number; twinTokScaled: number }
  >;
  for (const k of kinds) {
    const st = studio[k];
    const t = theirs[k];
    const d = twin[k];
    m[k] = {
      twinBase: Math.abs(L(st.base) - L(d.base)),
      twinLora: Math.abs(L(st.lora) - L(d.lora)),
      twinTokBase: maxAbsDiff(st.base, d.base),
      twinTokLora: maxAbsDiff(st.lora, d.lora),
      noiseBase: Math.abs(L(t.base) - L(d.base)),
      noiseLora: Math.abs(L(t.lora) - L(d.lora)),
      gapBase: Math.abs(L(st.base) - L(t.base)),
      gapLora: Math.abs(L(st.lora) - L(t.lora)),
      gapLoraF16: Math.abs(L(st.lora) - L(t.loraF16)),
      effect: L(t.base) - L(t.lora),
      studioEffect: L(st.base) - L(st.lora),
      twinScaled: Math.abs(L(st.lora) - L(d.scaled)),
      twinTokScaled: maxAbsDiff(st.lora, d.scaled),
    };
    const r = m[k];
    console.log(
      `# ${k} text (${ids[k].length} tokens): studio base ${L(st.base).toFixed(5)} with the LoRA ${L(st.lora).toFixed(5)}; ` +
        `llama.cpp on the f16 twin ${L(d.base).toFixed(5)} / ${L(d.lora).toFixed(5)} (|Δ| ${r.twinBase.toExponential(2)} / ${r.twinLora.toExponential(2)}, max |Δ log p| ${r.twinTokBase.toExponential(2)} / ${r.twinTokLora.toExponential(2)}); ` +
        `on the Q4_1 file ${L(t.base).toFixed(5)} / ${L(t.lora).toFixed(5)} (its quantization noise ${r.noiseBase.toExponential(2)} / ${r.noiseLora.toExponential(2)}); ` +
        `the LoRA lowers llama.cpp's loss by ${r.effect.toFixed(4)}, the studio's by ${r.studioEffect.toFixed(4)}; the f16 GGUF LoRA on the file is ${r.gapLoraF16.toExponential(2)} from the studio; ` +
        `at 0.8 of its scale the twin is ${r.twinScaled.toFixed(4)} from the studio (max |Δ log p| ${r.twinTokScaled.toFixed(4)})`,
    );
  }
  // Measured (x64 AVX-512, two machines): the twin follows the studio to |Δ loss| ≤ 3e-3 and max |Δ log p| ≤ 0.03,
  // base and LoRA; the Q4_1 file's own gap to its twin is 2e-2–8e-2 (it moved between cpus: 3.0e-2 held out on one,
  // 7.9e-2 on an EPYC with AVX-512 BF16/VNNI), which is why the file is held to its twin's noise, not a fixed number.
  const TWIN = { loss: 0.01, logProb: 0.05 };
  const NOISE_CEILING = 0.15; // llama.cpp's Q4_1 noise on the loss: a larger one means the file is not read right
  for (const k of kinds) {
    const r = m[k];
    assert.ok(r.twinBase <= TWIN.loss && r.twinTokBase <= TWIN.logProb, `${k}, base: the f16 twin in llama.cpp is ${r.twinBase} (loss) / ${r.twinTokBase} (a token's log-prob) from the studio (bounds ${TWIN.loss} / ${TWIN.logProb})`);
    assert.ok(r.twinLora <= TWIN.loss && r.twinTokLora <= TWIN.logProb, `${k}, with the LoRA: the f16 twin in llama.cpp is ${r.twinLora} (loss) / ${r.twinTokLora} (a token's log-prob) from the studio (bounds ${TWIN.loss} / ${TWIN.logProb})`);
    assert.ok(r.noiseBase <= NOISE_CEILING && r.noiseLora <= NOISE_CEILING, `${k}: llama.cpp's Q4_1 file is ${r.noiseBase} / ${r.noiseLora} from its f16 twin (ceiling ${NOISE_CEILING})`);
    // On the file as stored the studio is within llama.cpp's own noise (and the twin's bound) of llama.cpp, and the
    // LoRA moves both losses alike: by the same amount up to the two noises.
    assert.ok(r.gapBase <= r.noiseBase + TWIN.loss, `${k}, base on the Q4_1 file: |Δ loss| ${r.gapBase} (noise ${r.noiseBase})`);
    assert.ok(r.gapLora <= r.noiseLora + TWIN.loss, `${k}, with the LoRA on the Q4_1 file: |Δ loss| ${r.gapLora} (noise ${r.noiseLora})`);
    assert.ok(Math.abs(r.effect - r.studioEffect) <= r.noiseBase + r.noiseLora + TWIN.loss, `${k}: the LoRA lowers the loss by the same amount in both (studio ${r.studioEffect}, llama.cpp ${r.effect}, noises ${r.noiseBase} + ${r.noiseLora})`);
    // The f16 GGUF LoRA on the file: llama.cpp's f16 LoRA products add their own rounding (measured 2.6e-3 and 1.1e-2).
    assert.ok(r.gapLoraF16 <= r.noiseLora + 0.05, `${k}, with the f16 LoRA on the Q4_1 file: |Δ loss| ${r.gapLoraF16} (noise ${r.noiseLora})`);
  }
  // llama.cpp really applies the LoRA (measured: the loss falls by 3.0 and 2.3), and at its scale: at 0.8 of it the
  // twin's held-out loss is ~0.13 and a token's log-prob ~1.2 from the studio's, far outside the twin's bounds.
  assert.ok(m.trained.effect > 1 && m.heldOut.effect > 1, `llama.cpp really applies the LoRA: its loss falls by ${m.trained.effect} (trained text) and ${m.heldOut.effect} (held out)`);
  assert.ok(m.heldOut.twinScaled > 5 * TWIN.loss, `the comparison would catch the adapter at 0.8 of its scale (|Δ loss| ${m.heldOut.twinScaled})`);
  assert.ok(m.heldOut.twinTokScaled > 5 * TWIN.logProb, `the comparison would catch the adapter at 0.8 of its scale (max |Δ log p| ${m.heldOut.twinTokScaled})`);
});
