/**
 * Evaluation prompts on a webgpu run (llvmpipe in CI): the trainer's LoRA lives on the device, and eval-sampler.ts
 * answers on the host after pulling it back. At step 0 the answer is the base model's (B = 0); at the last step it
 * is plain cpu generation with the adapter the run saved (itself read back from the device): the pull happened, and
 * the answers are the LoRA of their step, not a stale host copy. A missing adapter fails the test, never skips it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RunConfigSchema, type EngineEvent } from '../../common/protocol.ts';
import { generate } from '../../engine/generate/generate.ts';
import { formatPrompt } from '../../engine/generate/prompt-format.ts';
import { loadModel, loadTokenizer } from '../../engine/io/model-source.ts';
import { loadAdapter } from '../../engine/io/peft-adapter.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import type { Tokenizer } from '../../engine/model/types.ts';
import { runTraining } from '../../engine/train/run-training.ts';

const dir = mkdtempSync(join(tmpdir(), 'eval-webgpu-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

test('a webgpu run answers with the LoRA of each step, pulled from the device', { timeout: 300_000 }, async () => {
  const sample = await ensureSample();
  const prompt = 'Name a colour.';
  const config = RunConfigSchema.parse({
    modelPath: sample.modelDir,
    datasetPath: sample.datasetPath,
    backend: 'webgpu',
    lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'], rslora: false },
    train: { learningRate: 5e-2, steps: 3, batchSize: 2, maxSeqLen: 96, seed: 5 },
    evalPrompts: { prompts: [prompt], everySteps: 3, maxNewTokens: 8 },
  });
  const events: EngineEvent[] = [];
  await runTraining({ type: 'train', runId: 'gpu', config, runDir: join(dir, 'run'), resume: false }, { post: (e) => events.push(e), shouldStop: () => null });
  const err = events.find((e) => e.type === 'error');
  assert.equal(err, undefined, JSON.stringify(err));
  const started = events.find((e) => e.type === 'started');
  assert.ok(started && started.type === 'started' && started.backend === 'webgpu', JSON.stringify(started));
  const done = events.find((e) => e.type === 'done');
  assert.ok(done && done.type === 'done');
  const answers = events.flatMap((e) => (e.type === 'eval' ? [e] : []));
  assert.deepEqual(answers.map((a) => a.step), [0, 3]);

  const model = loadModel(sample.modelDir, { dtype: Float32Array });
  const tokenizer = (await loadTokenizer(sample.modelDir)) as Tokenizer;
  const f = formatPrompt(tokenizer, model.config, { prompt, promptFormat: 'alpaca' });
  const text = (ids: number[]) => tokenizer.decode(ids, { skipSpecialTokens: true });
  const opts = { maxNewTokens: 8, temperature: 0, topP: 1, seed: 0, eosTokenIds: f.stopIds };
  assert.equal(answers[0]!.answer, text(generate(model, null, f.ids, opts)), 'step 0: the base model');
  assert.equal(answers[1]!.answer, text(generate(model, loadAdapter(done.adapterDir, model.config), f.ids, opts)), 'step 3: the saved adapter');
  assert.notEqual(answers[1]!.answer, answers[0]!.answer, 'training moved the answer');
});
