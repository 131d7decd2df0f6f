/**
 * The dataset page's pure pieces, in Node: the preview cut into trained / masked runs (against a per-character
 * oracle), the histogram bars and their visible range (fed by the engine's own histogram of random lengths), the
 * inspect request that must follow the model / max length / format / train-on choices, and the form's data choices
 * reaching the RunConfig (judged by the protocol's validator).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { validateRunConfig } from '../../common/protocol.ts';
import { lengthHistogram } from '../../engine/data/inspect.ts';
import { histogramBars, previewSegments, trainedFraction, visibleHistogram } from '../../renderer/src/components/dataset-view.ts';
import { inspectKey, inspectParams, typedMaxSeqLen } from '../../renderer/src/stores/dataset-request.ts';
import { checkForm, defaultForm, type FormValues } from '../../renderer/src/stores/form.ts';

const spanArb = fc.tuple(fc.integer({ min: -3, max: 40 }), fc.integer({ min: -3, max: 40 })).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as [number, number]);

test('previewSegments: the runs spell the (clipped) text and mark exactly the characters inside some span', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 36 }), fc.array(spanArb, { maxLength: 5 }), fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }), (text, spans, limit) => {
      const segments = previewSegments(text, spans, limit);
      const shown = text.slice(0, limit ?? text.length);
      assert.equal(segments.map((s) => s.text).join(''), shown);
      let at = 0;
      for (const [k, s] of segments.entries()) {
        assert.ok(s.text.length > 0, 'no empty run');
        if (k > 0) assert.notEqual(s.trained, segments[k - 1].trained, 'neighbouring runs differ (merged otherwise)');
        for (let i = at; i < at + s.text.length; i++) {
          const inside = spans.some(([a, b]) => i >= a && i < b);
          assert.equal(s.trained, inside, `character ${i} of ${JSON.stringify(text)} with spans ${JSON.stringify(spans)}`);
        }
        at += s.text.length;
      }
    }),
  );
});

test('trainedFraction: overlapping spans count each character once; spans past the end are clipped', () => {
  assert.equal(trainedFraction('abcdefghij', [[2, 5], [4, 7]]), 5 / 10);
  assert.equal(trainedFraction('abcd', [[2, 99]]), 2 / 4);
  assert.equal(trainedFraction('', [[0, 3]]), 0);
  assert.equal(trainedFraction('abc', []), 0);
});

test('histogramBars: every bar flagged "over" holds only examples longer than maxSeqLen, and together they hold all but one bin of them', () => {
  fc.assert(
    // Lengths crowd around the cut-off, where a bar's flag is easiest to get wrong.
    fc.property(fc.integer({ min: 8, max: 2500 }), fc.array(fc.integer({ min: -40, max: 40 }), { minLength: 1, maxLength: 200 }), (maxSeqLen, offsets) => {
      const lengths = offsets.map((d) => Math.max(0, maxSeqLen + d));
      const bars = histogramBars(lengthHistogram(lengths, maxSeqLen), maxSeqLen);
      assert.equal(bars.reduce((n, b) => n + b.count, 0), lengths.length, 'every example is in one bar');
      for (const b of bars) {
        const inBar = lengths.filter((x) => x >= b.from && x < b.to);
        assert.equal(b.count, inBar.length, `bar [${b.from}, ${b.to})`);
        assert.equal(b.mid, (b.from + b.to) / 2);
        if (b.over) assert.ok(inBar.every((x) => x > maxSeqLen), `bar [${b.from}, ${b.to}) is over ${maxSeqLen}`);
        // A bar whose every possible length (whole numbers from..to-1) is cut must say so.
        const allCut = Array.from({ length: b.to - b.from }, (_, k) => b.from + k).every((x) => x > maxSeqLen);
        assert.equal(b.over, allCut, `bar [${b.from}, ${b.to}) against cut-off ${maxSeqLen}`);
      }
      // Examples that will be cut but sit in a bar not flagged "over" can only be in the bar holding the cut-off.
      const cutButNotOver = bars.filter((b) => !b.over && lengths.some((x) => x > maxSeqLen && x >= b.from && x < b.to));
      assert.ok(cutButNotOver.length <= 1 && cutButNotOver.every((b) => b.from <= maxSeqLen && maxSeqLen < b.to), JSON.stringify(cutButNotOver));
    }),
  );
});

test('visibleHistogram: the range holds every example and the cut-off, and only empty bars are left out', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 100 }), fc.integer({ min: 8, max: 4000 }), (lengths, maxSeqLen) => {
      const all = histogramBars(lengthHistogram(lengths, maxSeqLen), maxSeqLen);
      const { bars, domain } = visibleHistogram(all, maxSeqLen);
      const [lo, hi] = domain;
      assert.ok(lo <= maxSeqLen && maxSeqLen <= hi, `cut-off ${maxSeqLen} in [${lo}, ${hi}]`);
      assert.ok(lengths.every((x) => x >= lo && x < hi), `lengths in [${lo}, ${hi})`);
      const dropped = all.filter((b) => !bars.includes(b));
      assert.ok(dropped.every((b) => b.count === 0), 'only empty bars are dropped');
      assert.ok(bars.every((b) => b.from >= lo && b.to <= hi), 'kept bars lie in the range');
      assert.equal(bars.reduce((n, b) => n + b.count, 0), lengths.length);
    }),
  );
  // All examples long, the cut-off short: the range still starts at (or below) the cut-off.
  const { domain } = visibleHistogram(histogramBars(lengthHistogram([900, 950, 990], 128), 128), 128);
  assert.ok(domain[0] <= 128 && domain[1] >= 990, JSON.stringify(domain));
});

function withNumbers(numbers: Partial<FormValues['numbers']>, data: Partial<FormValues['data']> = {}): FormValues {
  const f = defaultForm();
  return { ...f, numbers: { ...f.numbers, ...numbers }, data: { ...f.data, ...data } };
}

test('inspectParams: max length is sent only once it is a usable whole number; the key follows every choice', () => {
  for (const typed of ['', '5', '1e3', '12.5', ' ', '-64', '200000']) assert.equal(typedMaxSeqLen(withNumbers({ 'train.maxSeqLen': typed })), undefined, JSON.stringify(typed));
  assert.equal(typedMaxSeqLen(withNumbers({ 'train.maxSeqLen': ' 512 ' })), 512);

  const base = withNumbers({ 'train.maxSeqLen': '256' });
  const p = inspectParams('/d.jsonl', '/m', base);
  assert.deepEqual(p, { path: '/d.jsonl', modelPath: '/m', format: 'auto', maxSeqLen: 256, trainOn: 'auto' });
  assert.deepEqual(Object.keys(inspectParams('/d.jsonl', null, base)).includes('modelPath'), false, 'no model, no tokenizer asked for');

  const key = inspectKey(p);
  assert.equal(inspectKey({ trainOn: 'auto', maxSeqLen: 256, format: 'auto', modelPath: '/m', path: '/d.jsonl' }), key, 'field order does not matter');
  assert.equal(inspectKey({ path: '/d.jsonl', modelPath: '/m', maxSeqLen: 256 }), key, 'absent format / trainOn mean auto');
  const changed = [
    inspectParams('/other.jsonl', '/m', base),
    inspectParams('/d.jsonl', '/m2', base),
    inspectParams('/d.jsonl', null, base),
    inspectParams('/d.jsonl', '/m', withNumbers({ 'train.maxSeqLen': '128' })),
    inspectParams('/d.jsonl', '/m', withNumbers({ 'train.maxSeqLen': '256' }, { format: 'alpaca' })),
    inspectParams('/d.jsonl', '/m', withNumbers({ 'train.maxSeqLen': '256' }, { trainOn: 'all' })),
  ].map(inspectKey);
  assert.equal(new Set([key, ...changed]).size, changed.length + 1, 'each change gives a new key');
  // Choices that do not change what inspect shows (packing, policy, validation) keep the key.
  assert.equal(inspectKey(inspectParams('/d.jsonl', '/m', withNumbers({ 'train.maxSeqLen': '256' }, { packing: true, badRecords: 'skip', validationPath: '/v' }))), key);
});

test('checkForm: the data choices reach the RunConfig the services validate', () => {
  const r = checkForm(
    withNumbers({ 'train.validationPercent': '10', 'train.evalEverySteps': '5', 'train.seed': '7' }, { format: 'sharegpt', trainOn: 'all', badRecords: 'skip', packing: true }),
    '/m',
    '/d.jsonl',
  );
  assert.ok(r.ok, JSON.stringify(r.errors));
  assert.equal(r.config.datasetFormat, 'sharegpt');
  assert.equal(r.config.train.validationPercent, 10);
  assert.equal(r.config.train.evalEverySteps, 5);
  assert.equal(r.config.train.seed, 7);
  assert.deepEqual(r.config.data, { trainOn: 'all', badRecords: 'skip', packing: true });
  assert.equal(validateRunConfig(r.config).ok, true, 'what the form sends passes the services’ validator');

  // A validation file replaces the percent split (the engine refuses both at once).
  const byFile = checkForm(withNumbers({ 'train.validationPercent': '10' }, { validationPath: ' /v.jsonl ' }), '/m', '/d.jsonl');
  assert.ok(byFile.ok);
  assert.equal(byFile.config.train.validationPercent, 0);
  assert.equal(byFile.config.data?.validationPath, '/v.jsonl');

  const bad = checkForm(withNumbers({ 'train.validationPercent': '60', 'train.evalEverySteps': '-1', 'train.seed': '1.5' }), '/m', '/d.jsonl');
  assert.equal(bad.ok, false);
  const expected = validateRunConfig({
    modelPath: '/m',
    datasetPath: '/d.jsonl',
    lora: { r: 8, alpha: 16, dropout: 0.05, targets: ['q_proj'] },
    train: { learningRate: 1e-3, steps: 1, batchSize: 1, maxSeqLen: 128, validationPercent: 60, evalEverySteps: -1, seed: 1.5 },
  });
  assert.equal(expected.ok, false);
  if (expected.ok) return;
  for (const field of ['train.validationPercent', 'train.evalEverySteps', 'train.seed']) {
    assert.equal(bad.errors[field], expected.errors.find((e) => e.field === field)?.message, field);
  }
});
