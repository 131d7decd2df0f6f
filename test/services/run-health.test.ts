/**
 * The training-health detector on synthetic metric series: a healthy run raises nothing, and each rule fires on the
 * series that shows its problem (at the step it starts), once per episode.
 */
import assert from 'node:assert/strict';
import { totalmem } from 'node:os';
import { test } from 'node:test';
import type { MetricPoint } from '../../common/protocol.ts';
import { DEFAULT_HEALTH_THRESHOLDS, alertEventMessage, alertFromEvent, plainLogMessage, type HealthThresholds } from '../../common/run-health.ts';
import { pointMemory, RunHealthMonitor, type HealthFinding, type MemorySample } from '../../host/services/run-health.ts';

/** A small deterministic noise source (so a failure reproduces). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32 - 0.5;
  };
}

/** A healthy run: loss falls from ~3 to ~1 with ±5 % noise, grad norm ~1, ~1000 tokens/s, validation every 10 steps falling. */
function healthy(steps: number, opts: { fp16?: boolean; seed?: number } = {}): MetricPoint[] {
  const r = lcg(opts.seed ?? 1);
  const out: MetricPoint[] = [];
  for (let step = 1; step <= steps; step++) {
    const loss = (1 + 2 * Math.exp(-step / 40)) * (1 + 0.1 * r());
    const p: MetricPoint = { step, loss, learningRate: 2e-3, tokens: 512, tokensPerSecond: 1000 * (1 + 0.2 * r()), elapsedMs: step * 500, gradNorm: 1 + 0.4 * r() };
    if (opts.fp16) {
      p.lossScale = 65536;
      p.skipped = step % 37 === 0; // an occasional overflow is normal
    }
    if (step % 10 === 0) p.validationLoss = 1.2 + 2 * Math.exp(-step / 40);
    out.push(p);
  }
  return out;
}

function run(points: readonly MetricPoint[], t: Partial<HealthThresholds> = {}, mem?: (step: number) => MemorySample): HealthFinding[] {
  const m = new RunHealthMonitor({ ...DEFAULT_HEALTH_THRESHOLDS, ...t });
  return points.flatMap((p) => m.observe(p, mem?.(p.step)));
}

function kinds(findings: HealthFinding[]): string[] {
  return findings.map((f) => f.kind);
}

test('a healthy run (fp32 and fp16, several seeds, with memory well below the limit) raises no alert', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    assert.deepEqual(kinds(run(healthy(300, { seed }))), [], `fp32 seed ${seed}`);
    assert.deepEqual(kinds(run(healthy(300, { seed, fp16: true }), {}, () => ({ usedBytes: 2 * 2 ** 30, limitBytes: 16 * 2 ** 30 }))), [], `fp16 seed ${seed}`);
  }
});

test('NaN and inf loss fire at the step they appear, once per episode; a step without tokens (NaN by design) does not', () => {
  const pts = healthy(60);
  pts[29] = { ...pts[29], loss: Number.NaN };
  pts[30] = { ...pts[30], loss: Number.NaN };
  pts[44] = { ...pts[44], loss: Number.POSITIVE_INFINITY };
  const f = run(pts).filter((x) => x.kind === 'non-finite-loss');
  assert.deepEqual(f.map((x) => x.step), [30, 45]);
  assert.match(f[0].message, /NaN at step 30/);
  const empty = healthy(60);
  empty[20] = { ...empty[20], loss: Number.NaN, tokens: 0 };
  assert.deepEqual(kinds(run(empty)), []);
});

test('a loss spike fires when the loss stays above k × its recent median for the set steps, not for a single outlier', () => {
  const one = healthy(80);
  one[50] = { ...one[50], loss: one[50].loss * 5 };
  assert.deepEqual(kinds(run(one)), [], 'one outlier is not a spike of 3 steps');
  const pts = healthy(80);
  for (let i = 50; i < 54; i++) pts[i] = { ...pts[i], loss: pts[i].loss * 4 };
  const f = run(pts).filter((x) => x.kind === 'loss-spike');
  assert.equal(f.length, 1);
  assert.equal(f[0].step, 51, 'the step the spike started at');
  assert.match(f[0].message, /× its recent median/);
  // A higher factor does not see the same spike; a single step is enough with spikeSteps 1.
  assert.deepEqual(kinds(run(pts, { lossSpikeFactor: 6 })), []);
  assert.deepEqual(run(one, { spikeSteps: 1 }).map((x) => [x.kind, x.step]), [['loss-spike', 51]]);
});

test('a storm of skipped fp16 steps and a collapsing loss scale fire, once each', () => {
  const pts = healthy(80, { fp16: true });
  let scale = 65536;
  for (let i = 40; i < 60; i++) {
    scale /= 2;
    pts[i] = { ...pts[i], skipped: true, lossScale: scale };
  }
  for (let i = 60; i < 80; i++) pts[i] = { ...pts[i], lossScale: scale };
  const f = run(pts);
  const storm = f.find((x) => x.kind === 'skipped-steps');
  assert.equal(storm?.step, 44, 'the 5th skipped step of the last 20 (step 37 overflowed too)');
  const collapse = f.filter((x) => x.kind === 'loss-scale-collapse');
  assert.equal(collapse.length, 1);
  assert.equal(collapse[0].step, 57, '65536 / 2^17 = 0.5 < 1 at the 17th halving');
  assert.equal(f.filter((x) => x.kind === 'skipped-steps').length, 1, 'one alert for the whole storm');
});

test('gradient norm exploding (above factor × median for the set steps) and vanishing (below the floor) fire', () => {
  const up = healthy(80);
  for (let i = 40; i < 45; i++) up[i] = { ...up[i], gradNorm: 50 };
  assert.deepEqual(run(up).map((x) => [x.kind, x.step]), [['grad-norm-exploding', 41]]);
  assert.deepEqual(kinds(run(up, { gradNormFactor: 100 })), []);
  const down = healthy(80);
  for (let i = 40; i < 80; i++) down[i] = { ...down[i], gradNorm: 1e-10 };
  assert.deepEqual(run(down).map((x) => [x.kind, x.step]), [['grad-norm-vanishing', 41]]);
  assert.deepEqual(kinds(run(down, { gradNormBelow: 1e-12 })), []);
});

test('overfitting fires when validation loss rises at consecutive evaluations while the training loss falls', () => {
  const pts = healthy(120);
  // Validation turns up after step 60 while training keeps falling.
  for (const p of pts) if (p.validationLoss !== undefined && p.step > 60) p.validationLoss = 1.6 + (p.step - 60) * 0.01;
  const f = run(pts).filter((x) => x.kind === 'overfitting');
  assert.equal(f.length, 1);
  assert.equal(f[0].step, 70, 'the first evaluation that rose');
  assert.match(f[0].message, /validation loss rose/);
  assert.deepEqual(kinds(run(pts, { overfitEvaluations: 10 })), [], 'six rises are fewer than ten');
  // Validation and training both rising (divergence, not overfitting) is not overfitting.
  const both = healthy(120);
  for (const p of both) {
    if (p.step > 60) p.loss = 1.5 + (p.step - 60) * 0.02;
    if (p.validationLoss !== undefined && p.step > 60) p.validationLoss = 1.6 + (p.step - 60) * 0.02;
  }
  assert.deepEqual(kinds(run(both)).filter((k) => k === 'overfitting'), []);
});

test('throughput collapse fires when tokens/s stays below the fraction of its median; memory near the limit fires', () => {
  const slow = healthy(80);
  for (let i = 50; i < 80; i++) slow[i] = { ...slow[i], tokensPerSecond: 100 };
  assert.deepEqual(run(slow).map((x) => [x.kind, x.step]), [['throughput-collapse', 51]]);
  assert.deepEqual(kinds(run(slow, { throughputFraction: 0.05 })), []);
  // Steps of a few ms: a slow one is jitter, not a collapse.
  const fast = slow.map((p) => ({ ...p, elapsedMs: p.step * 5 }));
  assert.deepEqual(kinds(run(fast)), []);
  const gib = 2 ** 30;
  const f = run(healthy(40), {}, (step) => ({ usedBytes: (step >= 30 ? 15.5 : 4) * gib, limitBytes: 16 * gib }));
  assert.deepEqual(f.map((x) => [x.kind, x.step]), [['memory-high', 30]]);
  assert.match(f[0].message, /97 %/);
  // The services judge a point by the resident set it carries (measured by the engine at that step), not by what
  // the process holds when the point arrives; a point without one is measured now.
  const measured = healthy(40).map((p) => ({ ...p, rssBytes: (p.step >= 30 ? 15.5 : 4) * gib }));
  const byPoint = new RunHealthMonitor(DEFAULT_HEALTH_THRESHOLDS);
  const g = measured.flatMap((p) => byPoint.observe(p, pointMemory(p, 16 * gib)));
  assert.deepEqual(g.map((x) => [x.kind, x.step]), [['memory-high', 30]]);
  assert.match(g[0].message, /15\.5 of 16\.0 GiB/);
  assert.deepEqual(pointMemory(measured[0], 16 * gib), { usedBytes: 4 * gib, limitBytes: 16 * gib });
  const now = pointMemory(healthy(1)[0]);
  assert.ok(now.usedBytes > 0 && now.limitBytes === totalmem(), JSON.stringify(now));
});

test('alerts off: nothing fires; an alert survives the event log round trip', () => {
  const pts = healthy(60);
  pts[29] = { ...pts[29], loss: Number.NaN };
  assert.deepEqual(run(pts, { enabled: false }), []);
  const line = alertEventMessage('loss-spike', 'the loss is 9');
  assert.deepEqual(alertFromEvent({ id: 3, runId: 'r1', at: 'x', step: 12, message: line }), { runId: 'r1', kind: 'loss-spike', step: 12, message: 'the loss is 9', eventId: 3, at: 'x' });
  assert.equal(alertFromEvent({ runId: 'r1', step: 1, message: '[alert:unknown] x' }), null);
  assert.equal(alertFromEvent({ runId: 'r1', step: 1, message: 'checkpoint at step 1' }), null);
  // The log shows its title, never the key.
  assert.equal(plainLogMessage(line), 'Loss spike: the loss is 9');
  assert.equal(plainLogMessage('checkpoint at step 1'), 'checkpoint at step 1');
});
