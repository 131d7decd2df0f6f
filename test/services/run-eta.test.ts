/**
 * The run ETA counts evaluations: driven with a controlled clock through a simulated run (100 ms steps, a 500 ms
 * validation pass every 10 steps, 1000 ms of eval prompts every 20), it says the time actually left, where the step
 * time alone (the former formula) is short by every evaluation to come; with no evaluations it is the mean recent
 * step time times the steps left, as before.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MetricPoint } from '../../common/protocol.ts';
import { RunEta, samplingsIn, validationsIn, type EtaSchedule } from '../../host/services/run-eta.ts';

const point = (step: number, elapsedMs: number, extra: Partial<MetricPoint> = {}): MetricPoint => ({ step, elapsedMs, loss: 1, learningRate: 1e-3, tokens: 10, tokensPerSecond: 100, gradNorm: 1, ...extra });

test('with no evaluations: the mean recent step time times the steps left (a slow first step does not dominate)', () => {
  const eta = new RunEta({ totalSteps: 10, evalEverySteps: 0, promptsEverySteps: null });
  assert.equal(eta.etaMs(), null);
  // Steps 2..4 took 100 ms each; the points arrive exactly when the steps end.
  [900, 1000, 1100, 1200].forEach((ms, i) => eta.observePoint(point(i + 1, ms), ms));
  assert.equal(eta.etaMs(), 600);
  const one = new RunEta({ totalSteps: 10, evalEverySteps: 0, promptsEverySteps: null });
  one.observePoint(point(5, 1000), 1000);
  assert.equal(one.etaMs(), 1000);
  one.observePoint(point(10, 5000), 9000);
  assert.equal(one.etaMs(), 0);
});

test('the schedule: validations after every k-th step and the last; prompts the same', () => {
  assert.equal(validationsIn(30, 100, 10), 7); // 40 … 100
  assert.equal(validationsIn(30, 95, 10), 7); // 40 … 90, 95
  assert.equal(validationsIn(30, 100, 0), 1); // only after the last
  assert.equal(validationsIn(100, 100, 10), 0);
  assert.equal(samplingsIn(30, 100, 20), 4); // 40, 60, 80, 100
  assert.equal(samplingsIn(30, 90, 20), 4); // 40, 60, 80, 90
});

/**
 * A run on a fake clock: each step takes `stepMs` of engine time plus `overheadMs` between points; after a step
 * divisible by 10 the validation pass takes 500 ms before its point; after a step divisible by 20 (or 0) the three
 * prompts are answered, 1000 ms in all, their answers arriving a third of it apart.
 */
function simulate(eta: RunEta, s: EtaSchedule, upTo: number, stepMs = 100, overheadMs = 2): number {
  let now = 0;
  let elapsed = 0;
  const sample = (step: number) => {
    for (let i = 1; i <= 3; i++) eta.observeSample(step, (now += 1000 / 3));
  };
  if (s.promptsEverySteps !== null) sample(0);
  for (let step = 1; step <= upTo; step++) {
    elapsed += stepMs;
    now += stepMs + overheadMs;
    const validates = (s.evalEverySteps > 0 && step % s.evalEverySteps === 0) || step === s.totalSteps;
    if (validates) now += 500;
    eta.observePoint(point(step, elapsed, validates ? { validationLoss: 1 } : {}), now);
    if (s.promptsEverySteps !== null && (step % s.promptsEverySteps === 0 || step === s.totalSteps) && step < upTo) sample(step);
  }
  return now;
}

test('validation passes and eval prompts still to come are counted at their measured cost', () => {
  const s: EtaSchedule = { totalSteps: 100, evalEverySteps: 10, promptsEverySteps: 20 };
  const eta = new RunEta(s);
  simulate(eta, s, 30);
  // Left after step 30: 70 steps × (100 + 2) ms, validations at 40 … 100 (7 × 500 ms), prompts after 30? no —
  // after 40, 60, 80, 100 (4 × 1000 ms). The former formula said 70 × 100 = 7000 ms.
  const truth = 70 * 102 + 7 * 500 + 4 * 1000;
  const got = eta.etaMs();
  assert.ok(got !== null && Math.abs(got - truth) <= 2, `ETA ${got} ms, ${truth} ms are left`);

  // Right after a step whose prompts are due, they are still to be answered; as the answers arrive, they count less.
  const due = new RunEta(s);
  simulate(due, s, 40);
  const atForty = due.etaMs();
  const truth40 = 60 * 102 + 6 * 500 + 4 * 1000; // prompts after 40 (now), 60, 80, 100
  assert.ok(atForty !== null && Math.abs(atForty - truth40) <= 2, `ETA ${atForty} ms at step 40, ${truth40} ms are left`);
});

test('the ETA no longer jumps at an evaluation: it falls by about the wall time that passed', () => {
  const s: EtaSchedule = { totalSteps: 200, evalEverySteps: 10, promptsEverySteps: 20 };
  const eta = new RunEta(s);
  let prev: { eta: number; at: number } | null = null;
  let worst = 0;
  let now = 0;
  let elapsed = 0;
  for (let step = 1; step <= 199; step++) {
    elapsed += 100;
    now += 102;
    const validates = step % 10 === 0;
    if (validates) now += 500;
    eta.observePoint(point(step, elapsed, validates ? { validationLoss: 1 } : {}), now);
    const e = eta.etaMs() ?? 0;
    // From the first measured sampling on (step 41), each estimate + the time since the previous one is the previous one.
    if (prev && step > 41) worst = Math.max(worst, Math.abs(prev.eta - (e + (now - prev.at))));
    prev = { eta: e, at: now };
    if (step % 20 === 0) for (let i = 1; i <= 3; i++) eta.observeSample(step, (now += 1000 / 3));
  }
  assert.ok(worst <= 5, `the estimate moved ${worst} ms more than the clock`);
});
