/**
 * The lab page's pure pieces: one colour scale shared by two heatmaps (worst cell of either at the red end, best at
 * the teal end, higher-is-better metrics turned around), and the threshold inputs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FormatReport, QuantCell } from '../../common/quant-report.ts';
import { cellValue, colorScale } from '../../renderer/src/lab/lab-metrics.ts';
import { parseThreshold } from '../../renderer/src/lab/lab-store.ts';

const BEST = 'rgb(22, 50, 79)';
const WORST = 'rgb(200, 40, 60)';

function cell(relErr: number, snrDb: number | null, cosine: number | null): QuantCell {
  return {
    layer: 0,
    matrix: 'q',
    sizeBytes: 1,
    mse: relErr * relErr,
    relErr,
    snrDb,
    maxAbsErr: relErr,
    errorHist: { lo: 0, hi: 1, counts: [] },
    grid: null,
    fallback: null,
    cosine,
    kl: null,
    status: 'OK',
    reasons: [],
  };
}

function format(key: string, cells: QuantCell[]): FormatReport {
  return { key, cells: [cells] } as unknown as FormatReport;
}

test('one scale over both formats: the best cell of either is teal, the worst red', () => {
  const a = format('q8_0', [cell(1e-3, 60, 0.99999), cell(2e-3, 54, 0.9999)]);
  const b = format('q4_0', [cell(5e-2, 26, 0.99), cell(1e-1, 20, 0.9)]);
  const s = colorScale([a, b], 'relErr');
  assert.equal(s.color(1e-3), BEST);
  assert.equal(s.color(1e-1), WORST);
  assert.equal(s.best, 1e-3);
  assert.equal(s.worst, 1e-1);
  // Alone, q8_0's worse cell would be red; next to q4_0 it sits low on the shared scale.
  assert.equal(colorScale([a], 'relErr').color(2e-3), WORST);
  assert.notEqual(s.color(2e-3), WORST);

  // Higher SNR and cosine are better: the scale turns them around.
  const snr = colorScale([a, b], 'snrDb');
  assert.equal(snr.color(60), BEST);
  assert.equal(snr.color(20), WORST);
  const cos = colorScale([a, b], 'cosine');
  assert.equal(cos.color(0.99999), BEST);
  assert.equal(cos.color(0.9), WORST);
});

test('exact and missing values: infinite SNR is the best colour, no calibration is grey', () => {
  const f = format('f16', [cell(0, null, null), cell(1e-4, 80, null)]);
  assert.equal(cellValue(f.cells[0][0], 'snrDb'), Number.POSITIVE_INFINITY);
  const s = colorScale([f], 'kl');
  assert.equal(s.lo, null);
  assert.equal(s.color(null), '#2a303b');
  const snr = colorScale([f], 'snrDb');
  assert.notEqual(snr.color(Number.POSITIVE_INFINITY), WORST);
});

test('threshold inputs: empty is automatic, positive numbers override, anything else says why', () => {
  assert.deepEqual(parseThreshold('  ', 'x'), {});
  assert.deepEqual(parseThreshold('0.05', 'x'), { value: 0.05 });
  assert.deepEqual(parseThreshold('1e-3', 'x'), { value: 0.001 });
  for (const bad of ['0', '-1', 'abc', 'Infinity']) assert.match(parseThreshold(bad, 'the KL threshold').error ?? '', /the KL threshold must be a number greater than 0/);
});
