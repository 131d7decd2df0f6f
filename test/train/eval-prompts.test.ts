/**
 * Fixed evaluation prompts during training (RunConfig.evalPrompts), on the engine's real run (runTraining, the sample
 * model and dataset): answered at steps 0, every N and the last one; greedy, so two runs answer alike; at step 0 the
 * answer is plain generation with the initial adapter (B = 0: the base model's answer); at the end, the answer is
 * plain generation with the adapter the run saved; the prompt is wrapped as the Playground wraps it. The CLI's
 * `train <run.json>` prints each answer on stderr (stdout stays one metric point per line), the same as the run's.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { evalSteps, promptFormatFor } from '../../common/eval-prompts.ts';
import { RunConfigSchema, validateRunConfig, type EngineEvent, type EvalSample, type RunConfig } from '../../common/protocol.ts';
import { generate } from '../../engine/generate/generate.ts';
import { formatPrompt } from '../../engine/generate/prompt-format.ts';
import { loadModel, loadTokenizer } from '../../engine/io/model-source.ts';
import { loadAdapter } from '../../engine/io/peft-adapter.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import { newLora } from '../../engine/model/lora.ts';
import type { Tokenizer } from '../../engine/model/types.ts';
import { prepareRunDataset } from '../../engine/train/run-data.ts';
import { runTraining } from '../../engine/train/run-training.ts';
import { trainerSettings } from '../../engine/train/run-config.ts';
import { INIT_STREAM } from '../../engine/train/seed-streams.ts';
import { Rng } from '../../engine/util/rng.ts';
import { repoRoot } from '../helpers/python.ts';

process.env.LORA_STUDIO_CPU_THREADS = '1';
const dir = mkdtempSync(join(tmpdir(), 'eval-prompts-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const sample = await ensureSample();
const prompts = ['The cat sat on', 'Once upon a time'];

function config(over: Partial<RunConfig['evalPrompts']> = {}): RunConfig {
  return RunConfigSchema.parse({
    modelPath: sample.modelDir,
    datasetPath: sample.datasetPath,
    lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'], rslora: false },
    train: { learningRate: 2e-2, steps: 5, batchSize: 2, maxSeqLen: 128, seed: 7 },
    evalPrompts: { prompts, everySteps: 2, maxNewTokens: 8, ...over },
  });
}

async function run(name: string, c: RunConfig): Promise<{ samples: EvalSample[]; events: EngineEvent[]; adapterDir: string }> {
  const events: EngineEvent[] = [];
  await runTraining({ type: 'train', runId: name, config: c, runDir: join(dir, name), resume: false }, { post: (e) => events.push(e), shouldStop: () => null });
  const err = events.find((e) => e.type === 'error');
  assert.equal(err, undefined, JSON.stringify(err));
  const done = events.find((e) => e.type === 'done');
  assert.ok(done && done.type === 'done');
  return { samples: events.flatMap((e) => (e.type === 'eval' ? [{ runId: e.runId, step: e.step, index: e.index, prompt: e.prompt, answer: e.answer, tokens: e.tokens, stop: e.stop }] : [])), events, adapterDir: done.adapterDir };
}

const first = await run('a', config());

test('answers come at steps 0, every N and the last, one per prompt, between the right metric points', () => {
  assert.deepEqual(evalSteps(2, 5), [0, 2, 4, 5]);
  assert.deepEqual(
    first.samples.map((s) => `${s.step}:${s.index}`),
    ['0:0', '0:1', '2:0', '2:1', '4:0', '4:1', '5:0', '5:1'],
  );
  // Each answer follows the metric of its step and precedes the next step's.
  let lastMetric = 0;
  for (const e of first.events) {
    if (e.type === 'metric') lastMetric = e.point.step;
    if (e.type === 'eval') assert.equal(e.step, lastMetric, `the answer of step ${e.step} came after the metric of step ${lastMetric}`);
  }
  for (const s of first.samples) {
    assert.equal(s.prompt, prompts[s.index]);
    assert.ok(s.tokens >= 1 && s.tokens <= 8);
  }
});

test('greedy: a second run gives the same answers at every step', async () => {
  const second = await run('b', config());
  assert.deepEqual(second.samples.map((s) => [s.step, s.index, s.answer]), first.samples.map((s) => [s.step, s.index, s.answer]));
});

test('step 0 is plain generation with the initial adapter (and so the base model); the last step, with the saved adapter', async () => {
  const c = config();
  const model = loadModel(sample.modelDir, { dtype: Float32Array });
  const tokenizer = (await loadTokenizer(sample.modelDir)) as Tokenizer;
  const data = await prepareRunDataset(c, tokenizer);
  const promptFormat = promptFormatFor(data.format);
  const initial = newLora(model.config, trainerSettings(c).lora, new Rng(c.train.seed + INIT_STREAM), Float32Array);
  const saved = loadAdapter(first.adapterDir, model.config);
  let differs = 0;
  for (let i = 0; i < prompts.length; i++) {
    const f = formatPrompt(tokenizer, model.config, { prompt: prompts[i], promptFormat });
    const opts = { maxNewTokens: 8, temperature: 0, topP: 1, seed: 0, eosTokenIds: f.stopIds };
    const text = (ids: number[]) => tokenizer.decode(ids, { skipSpecialTokens: true });
    const at = (step: number) => first.samples.find((s) => s.step === step && s.index === i)?.answer;
    assert.equal(at(0), text(generate(model, initial, f.ids, opts)), `prompt ${i}, step 0 vs the initial adapter`);
    assert.equal(at(0), text(generate(model, null, f.ids, opts)), `prompt ${i}, step 0 vs the base model`);
    assert.equal(at(5), text(generate(model, saved, f.ids, opts)), `prompt ${i}, last step vs the saved adapter`);
    if (at(5) !== at(0)) differs++;
  }
  // lr 2e-2 for 5 steps moves the tiny model: the timeline shows the adapter changing.
  assert.ok(differs > 0, 'training changed no answer');
});

test('a stop asked while the prompts are answered ends the run before the remaining answers and the next step', async () => {
  const events: EngineEvent[] = [];
  let stop: { save: boolean } | null = null;
  await runTraining(
    { type: 'train', runId: 'stop', config: config(), runDir: join(dir, 'stop'), resume: false },
    {
      post: (e) => {
        events.push(e);
        // Asked as the first answer comes out, as a worker's 'stop' message would land between answers.
        if (e.type === 'eval') stop = { save: false };
      },
      shouldStop: () => stop,
    },
  );
  assert.deepEqual(events.filter((e) => e.type === 'eval').map((e) => (e.type === 'eval' ? `${e.step}:${e.index}` : '')), ['0:0']);
  assert.equal(events.filter((e) => e.type === 'metric').length, 0);
  const stopped = events.find((e) => e.type === 'stopped');
  assert.ok(stopped && stopped.type === 'stopped' && stopped.step === 0, JSON.stringify(stopped));
});

test('lora-studio train prints the answers on stderr, the same as the engine run; stdout keeps only the metric points', () => {
  const runJson = join(dir, 'run.json');
  writeFileSync(runJson, JSON.stringify(config()));
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/lora-studio.mjs'), 'train', runJson, '--out', join(dir, 'cli-out')], {
    encoding: 'utf8',
    env: { ...process.env, LORA_STUDIO_FROM_SOURCE: '1' },
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 5, 'one JSON line per step');
  const printed = [...r.stderr.matchAll(/^eval step (\d+) prompt (\d+): (.*)$/gm)].map((m) => [Number(m[1]), Number(m[2]) - 1, JSON.parse(m[3]!) as string]);
  assert.deepEqual(printed, first.samples.map((s) => [s.step, s.index, s.answer]));
});

test('the config refuses bad evaluation settings with the field named', () => {
  const base = { modelPath: 'm', datasetPath: 'd', lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj'], rslora: false }, train: { learningRate: 1e-3, steps: 5, batchSize: 1, maxSeqLen: 32, seed: 1 } };
  const bad = (evalPrompts: unknown) => {
    const r = validateRunConfig({ ...base, evalPrompts });
    assert.ok(!r.ok);
    return r.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  };
  assert.match(bad({ prompts: Array(9).fill('x'), everySteps: 1, maxNewTokens: 4 }), /evalPrompts\.prompts: at most 8/);
  assert.match(bad({ prompts: ['x'.repeat(2001)], everySteps: 1, maxNewTokens: 4 }), /evalPrompts\.prompts\.0: .*at most 2000/);
  assert.match(bad({ prompts: ['  '], everySteps: 1, maxNewTokens: 4 }), /evalPrompts\.prompts\.0: .*empty/);
  assert.match(bad({ prompts: ['x'], everySteps: 0, maxNewTokens: 4 }), /evalPrompts\.everySteps/);
  assert.match(bad({ prompts: ['x'], everySteps: 1, maxNewTokens: 0 }), /evalPrompts\.maxNewTokens/);
  assert.ok(validateRunConfig({ ...base }).ok, 'absent: off');
});
