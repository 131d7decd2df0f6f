/**
 * Training-health alerts through the real services: a run that really diverges on the sample model (fp16, learning
 * rate 1, LoRA alpha 1,000,000: the scaled update saturates the network after its first step and the gradient dies)
 * raises its alert as a 'run.alert' event and keeps it in its event log; a healthy run raises none; turned off in the
 * settings, the diverging run raises none either.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunConfigInput, StudioEventMessage } from '../../common/protocol.ts';
import { alertFromEvent, DEFAULT_HEALTH_THRESHOLDS, type RunAlert } from '../../common/run-health.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { tempStudios } from '../helpers/temp-studio.ts';

const { services } = tempStudios('lora-health-');

function config(diverge: boolean): RunConfigInput {
  return {
    modelPath: SAMPLE_MODEL_DIR,
    datasetPath: SAMPLE_DATASET_PATH,
    lora: { r: 8, alpha: diverge ? 1_000_000 : 16, dropout: 0, targets: ['q_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] },
    train: { learningRate: diverge ? 1 : 2e-3, steps: 16, batchSize: 4, maxSeqLen: 64, maxGradNorm: 0, precision: diverge ? 'fp16' : 'fp32', seed: 7 },
  };
}

async function train(name: string, diverge: boolean, enabled = true): Promise<{ pushed: RunAlert[]; stored: RunAlert[] }> {
  const s = services(name);
  if (!enabled) {
    // Some thresholds alone: the others keep their values; a bad one is refused naming it.
    const after = await s.handle('settings.set', { healthAlerts: { enabled: false } });
    assert.deepEqual(after.healthAlerts, { ...DEFAULT_HEALTH_THRESHOLDS, enabled: false });
    await assert.rejects(s.handle('settings.set', { healthAlerts: { lossSpikeFactor: 0.5 } }), /healthAlerts\.lossSpikeFactor|above 1/);
  }
  const pushed: RunAlert[] = [];
  s.onEvent((m: StudioEventMessage) => {
    if (m.event === 'run.alert') pushed.push(m.data as RunAlert);
  });
  const run = await s.handle('runs.start', { config: config(diverge) });
  await s.whenIdle();
  assert.equal((await s.handle('runs.get', { id: run.id })).state, 'completed');
  const stored = (await s.handle('runs.events', { id: run.id })).flatMap((e) => {
    const a = alertFromEvent(e);
    return a ? [a] : [];
  });
  return { pushed, stored };
}

test('a diverging run raises its alert live and keeps it in the event log, at the step it began', async () => {
  const { pushed, stored } = await train('diverge', true);
  const dead = pushed.find((a) => a.kind === 'grad-norm-vanishing');
  assert.ok(dead, `alerts: ${JSON.stringify(pushed)}`);
  assert.ok(dead.step >= 2 && dead.step <= 6, `step ${dead.step}`);
  assert.match(dead.message, /gradient norm is 0/);
  assert.deepEqual(
    stored.map((a) => [a.kind, a.step, a.eventId]),
    pushed.map((a) => [a.kind, a.step, a.eventId]),
    'what was pushed is what the log holds',
  );
});

test('a healthy run raises no alert; alerts turned off raise none on the diverging run', async () => {
  assert.deepEqual((await train('healthy', false)).stored, []);
  const off = await train('off', true, false);
  assert.deepEqual([off.pushed, off.stored], [[], []]);
});
