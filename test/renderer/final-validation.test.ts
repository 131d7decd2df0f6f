/** The run detail's validation numbers (renderer/src/runs/final-validation.ts): which point, and perplexity = exp(loss). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_RUN_CONFIG, type MetricPoint, type RunConfig } from '../../common/protocol.ts';
import { formatPerplexity, hasValidationSplit, latestValidation } from '../../renderer/src/runs/final-validation.ts';

const point = (step: number, validationLoss?: number): MetricPoint => ({ step, loss: 2, learningRate: 1e-3, tokens: 10, tokensPerSecond: 1, elapsedMs: step, gradNorm: 1, ...(validationLoss !== undefined ? { validationLoss } : {}) });

test('the newest evaluated step, final only when it is the last step of a completed run', () => {
  const points = [point(1), point(2, 3.5), point(3), point(4, 2.25)];
  assert.deepEqual(latestValidation(points, 4), { step: 4, loss: 2.25, perplexity: Math.exp(2.25), final: true });
  assert.equal(latestValidation(points.slice(0, 3), 3)?.step, 2);
  assert.equal(latestValidation(points.slice(0, 3), 3)?.final, false);
  assert.equal(latestValidation([point(1), point(2)], 2), null);
  // A non-finite loss is no result (stored NaN reads back as NaN).
  assert.equal(latestValidation([point(1, Number.NaN)], 1), null);
});

test('perplexity is e to the mean loss in nats', () => {
  // ln 2 nats per token = choosing between 2 tokens.
  assert.equal(latestValidation([point(1, Math.LN2)], 1)?.perplexity, 2);
  assert.equal(formatPerplexity(Math.exp(3)), '20.09');
  assert.equal(formatPerplexity(Math.exp(12)), '1.628e+5');
  assert.equal(formatPerplexity(Math.exp(1000)), '∞');
});

test('a split exists with a validation percent or a validation file', () => {
  const base = { ...DEFAULT_RUN_CONFIG, modelPath: 'm', datasetPath: 'd' } as RunConfig;
  assert.equal(hasValidationSplit(base), false);
  assert.equal(hasValidationSplit({ ...base, train: { ...base.train, validationPercent: 10 } }), true);
  assert.equal(hasValidationSplit({ ...base, data: { trainOn: 'auto', badRecords: 'fail', packing: false, validationPath: 'v.jsonl' } }), true);
});
