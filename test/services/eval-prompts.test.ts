/**
 * Evaluation prompts through the studio services, on the sample model: a run's answers are stored (eval_samples) and
 * pushed ('run.eval') at steps 0, every N and the end; 'runs.evalSamples' returns them by step and prompt, also
 * after `afterStep`; they survive closing and reopening the studio; a bad evaluation setting is refused before the
 * run exists, naming the field; deleting the run removes them. A run paused mid-way and resumed from its checkpoint
 * ends with the same answers, step for step, as one that never stopped (no duplicates, none missing).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EvalSample, RunConfigInput, RunSummary, StudioEventMessage } from '../../common/protocol.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import type { StudioServices } from '../../host/services/studio-services.ts';
import { refusal, tempStudios } from '../helpers/temp-studio.ts';

process.env.LORA_STUDIO_CPU_THREADS = '1';
const { services } = tempStudios('lora-eval-');
const prompts = ['Write one sentence about a dog.', 'Name a colour.'];

function config(evalPrompts: RunConfigInput['evalPrompts'], steps = 7): RunConfigInput {
  return {
    modelPath: SAMPLE_MODEL_DIR,
    datasetPath: SAMPLE_DATASET_PATH,
    lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'] },
    train: { learningRate: 1e-2, steps, batchSize: 2, maxSeqLen: 96, seed: 3 },
    ...(evalPrompts ? { evalPrompts } : {}),
  };
}

async function until(s: StudioServices, id: string, ok: (r: RunSummary) => boolean): Promise<RunSummary> {
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
    const r = await s.handle('runs.get', { id });
    if (ok(r)) return r;
    if (r.state === 'failed') throw new Error(`run failed: ${r.error}`);
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error('timed out');
}

test('answers are stored and pushed at the right steps, and survive a restart', async () => {
  const s1 = services('store');
  const pushed: EvalSample[] = [];
  s1.onEvent((m: StudioEventMessage) => {
    if (m.event === 'run.eval') pushed.push(m.data as EvalSample);
  });
  const run = await s1.handle('runs.start', { config: config({ prompts, everySteps: 3, maxNewTokens: 6 }) });
  await until(s1, run.id, (r) => r.state === 'completed');
  const stored = await s1.handle('runs.evalSamples', { id: run.id });
  const keys = stored.map((x) => `${x.step}:${x.index}`);
  assert.deepEqual(keys, ['0:0', '0:1', '3:0', '3:1', '6:0', '6:1', '7:0', '7:1']);
  assert.deepEqual(pushed.map((x) => `${x.step}:${x.index}`), keys, 'every stored answer was pushed, in order');
  for (const x of stored) {
    assert.equal(x.runId, run.id);
    assert.equal(x.prompt, prompts[x.index]);
    assert.ok(x.tokens >= 1 && x.tokens <= 6);
    assert.ok(x.stop === 'eos' || x.stop === 'length');
  }
  assert.deepEqual((await s1.handle('runs.evalSamples', { id: run.id, afterStep: 3 })).map((x) => x.step), [6, 6, 7, 7]);
  await s1.close();
  const s2 = services('store');
  assert.deepEqual(await s2.handle('runs.evalSamples', { id: run.id }), stored, 'the same answers after reopening the studio');
  await s2.handle('runs.delete', { id: run.id, deleteAdapter: true });
  const gone = await refusal(() => s2.handle('runs.evalSamples', { id: run.id }));
  assert.match(gone.message, new RegExp(run.id));
});

test('a run without evaluation prompts has none; a bad setting is refused naming its field', async () => {
  const s = services('refuse');
  const bad = await refusal(() => s.handle('runs.start', { config: config({ prompts: ['ok', ' '], everySteps: 2, maxNewTokens: 4 }) }));
  assert.ok(bad.info.fieldErrors?.some((f) => f.field.endsWith('evalPrompts.prompts.1') && /empty/.test(f.message)), JSON.stringify(bad.info));
  // In plain words, by the field's label, never its key.
  assert.match(bad.message, /Evaluation prompt/);
  assert.doesNotMatch(bad.message, /evalPrompts/);
  const run = await s.handle('runs.start', { config: { ...config(undefined), train: { learningRate: 1e-2, steps: 2, batchSize: 2, maxSeqLen: 96, seed: 3 } } });
  await until(s, run.id, (r) => r.state === 'completed');
  assert.deepEqual(await s.handle('runs.evalSamples', { id: run.id }), []);
});

test('paused and resumed from its checkpoint: the same answers as a run that never stopped', async () => {
  const s = services('resume');
  // Long enough (120 steps of batch 4) that a pause asked for at step 40 lands well before the end even on
  // a machine several times faster than this one: the toy model trains a step in milliseconds, and progress is
  // pushed only every 100 ms, so pausing "at step 3" by polling or by run.updated could find the run already done.
  const evalPrompts = { prompts, everySteps: 40, maxNewTokens: 6 };
  const long = (): RunConfigInput => ({ ...config(evalPrompts, 120), train: { learningRate: 1e-2, steps: 120, batchSize: 4, maxSeqLen: 96, seed: 3 } });
  const ref = await s.handle('runs.start', { config: long() });
  await until(s, ref.id, (r) => r.state === 'completed');
  const run = await s.handle('runs.start', { config: long() });
  // Paused from the last answer of step 40 (eval events are sent as each answer is made, not batched): the stop
  // reaches the engine while it trains the steps after 40, so the checkpoint holds step 40's answers and resuming
  // must neither repeat them nor skip 80's. (A pause during an evaluation stops it before the step's checkpoint.)
  let pausing: Promise<RunSummary> | null = null;
  s.onEvent((m: StudioEventMessage) => {
    const x = m.data as EvalSample;
    if (m.event === 'run.eval' && x.runId === run.id && x.step === 40 && x.index === prompts.length - 1 && pausing === null) pausing = s.handle('runs.pause', { id: run.id });
  });
  const paused = await until(s, run.id, (r) => {
    if (r.state === 'completed') throw new Error(`the run completed before the pause asked for at step 40 took effect (step ${r.step})`);
    return r.state === 'paused';
  });
  await pausing;
  assert.ok(paused.checkpointStep !== null && paused.checkpointStep! >= 40 && paused.checkpointStep! < 120, `checkpoint at ${paused.checkpointStep}`);
  const before = await s.handle('runs.evalSamples', { id: run.id });
  assert.ok(before.length === 4 && before.every((x) => x.step <= paused.step), `answers before the pause: ${before.map((x) => x.step)}`);
  await s.handle('runs.resume', { id: run.id });
  const done = await until(s, run.id, (r) => r.state === 'completed');
  assert.equal(done.resumeCount, 1);
  const strip = (xs: EvalSample[]) => xs.map((x) => [x.step, x.index, x.answer, x.tokens, x.stop]);
  const refAnswers = strip(await s.handle('runs.evalSamples', { id: ref.id }));
  assert.deepEqual(refAnswers.map((x) => x[0]), [0, 0, 40, 40, 80, 80, 120, 120]);
  assert.deepEqual(strip(await s.handle('runs.evalSamples', { id: run.id })), refAnswers);
});
