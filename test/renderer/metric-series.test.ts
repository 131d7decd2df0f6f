/**
 * The side charts' series: the EMA of tokens/s against values worked out by hand, non-finite steps skipped; rows
 * keep the raw tokens/s for the tooltip and drop the gradient norm of skipped fp16 steps; thinning keeps the last.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MetricPoint } from '../../common/protocol.ts';
import { byteAxisUnit, ema, memoryMeasure, metricRows, positiveOrNull, smoothedTokensPerSecond, thin } from '../../renderer/src/components/metric-series.ts';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);

test('ema: seeded with the first value, a·x + (1 − a)·previous after; NaN/inf keep the average', () => {
  // a = 0.5: 100, 0.5·200 + 0.5·100 = 150, 0.5·50 + 0.5·150 = 100.
  const e = ema([100, 200, 50], 0.5);
  [100, 150, 100].forEach((v, i) => close(e[i], v));
  const skip = ema([Number.NaN, 10, Number.POSITIVE_INFINITY, 20], 0.25);
  assert.ok(Number.isNaN(skip[0]));
  // 10, 10 (inf skipped), 0.25·20 + 0.75·10 = 12.5.
  [10, 10, 12.5].forEach((v, i) => close(skip[i + 1], v));
});

function point(step: number, tps: number, extra: Partial<MetricPoint> = {}): MetricPoint {
  return { step, loss: 2, learningRate: 1e-3, tokens: 100, tokensPerSecond: tps, elapsedMs: step * 10, gradNorm: 0.5, ...extra };
}

test('rows: tokens/s smoothed with the raw value kept, skipped steps without a grad norm, loss scale where reported', () => {
  const pts = [point(1, 75), point(2, 228, { skipped: true, lossScale: 32768 }), point(3, 75, { lossScale: 32768 })];
  const rows = metricRows(pts, 0.2);
  assert.deepEqual(
    rows.map((r) => r.tokensPerSecondRaw),
    [75, 228, 75],
  );
  // 75; 0.2·228 + 0.8·75 = 105.6; 0.2·75 + 0.8·105.6 = 99.48.
  [75, 105.6, 99.48].forEach((v, i) => close(rows[i].tokensPerSecond, v));
  assert.deepEqual(
    rows.map((r) => r.gradNorm),
    [0.5, undefined, 0.5],
  );
  assert.deepEqual(
    rows.map((r) => r.lossScale),
    [undefined, 32768, 32768],
  );
  close(smoothedTokensPerSecond(pts, 0.2) ?? 0, 99.48);
  assert.equal(smoothedTokensPerSecond([]), null);
});

test('log-axis values and thinning', () => {
  assert.deepEqual([0, -1, Number.NaN, undefined, 2].map(positiveOrNull), [null, null, null, null, 2]);
  const rows = Array.from({ length: 10 }, (_, i) => i);
  assert.deepEqual(thin(rows, 4), [0, 3, 6, 9]);
  assert.deepEqual(thin(rows, 100), rows);
  assert.deepEqual(thin(Array.from({ length: 11 }, (_, i) => i), 4), [0, 3, 6, 9, 10]);
});

test('memory: the device figure on webgpu, the resident set on cpu, nothing for older points; the axis unit follows the largest', () => {
  const gib = 2 ** 30;
  const cpu = [point(1, 1), point(2, 1, { rssBytes: 700 * 2 ** 20 }), point(3, 1, { rssBytes: 710 * 2 ** 20 })];
  assert.deepEqual(metricRows(cpu).map((r) => r.memoryBytes), [undefined, 700 * 2 ** 20, 710 * 2 ** 20]);
  assert.equal(memoryMeasure(cpu), 'process');
  const gpu = [point(1, 1, { rssBytes: gib, deviceBytes: 3 * gib }), point(2, 1, { rssBytes: gib, deviceBytes: 3.25 * gib })];
  assert.deepEqual(metricRows(gpu).map((r) => r.memoryBytes), [3 * gib, 3.25 * gib]);
  assert.equal(memoryMeasure(gpu), 'device');
  assert.equal(memoryMeasure([point(1, 1)]), null);
  assert.deepEqual(byteAxisUnit(710 * 2 ** 20), { unit: 'MiB', bytes: 2 ** 20 });
  assert.deepEqual(byteAxisUnit(gib), { unit: 'GiB', bytes: gib });
});
