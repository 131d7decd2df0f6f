/**
 * The renderer's pure pieces, in Node (metric merging is tested in runs-*.test.ts): the form →
 * config translation (judged by the protocol's own validator) and the chart's Y ticks.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { validateRunConfig } from '../../common/protocol.ts';
import { lossTicks, tickDecimals } from '../../renderer/src/components/loss-ticks.ts';
import { checkForm, defaultForm, type FormValues } from '../../renderer/src/stores/form.ts';


function form(numbers: Partial<FormValues['numbers']>, targets?: FormValues['targets']): FormValues {
  const f = defaultForm();
  return { ...f, numbers: { ...f.numbers, ...numbers }, targets: targets ?? f.targets };
}

test('checkForm: the default form is a valid run once a model and dataset are chosen', () => {
  const r = checkForm(defaultForm(), '/m', '/d.jsonl');
  assert.equal(r.ok, true);
  assert.deepEqual(validateRunConfig(r.ok ? r.config : null).ok, true);
  const missing = checkForm(defaultForm(), '', '');
  assert.equal(missing.ok, false);
  assert.ok(missing.errors.modelPath && missing.errors.datasetPath);
});

test('checkForm: typed values reach the config (exponents, decimals) and bad ones are reported on their field', () => {
  const ok = checkForm(form({ 'lora.r': '16', 'train.learningRate': '1e-4', 'lora.dropout': ' 0.1 ' }, ['q_proj', 'o_proj']), '/m', '/d');
  assert.ok(ok.ok);
  assert.equal(ok.config.lora.r, 16);
  assert.equal(ok.config.train.learningRate, 1e-4);
  assert.equal(ok.config.lora.dropout, 0.1);
  assert.deepEqual(ok.config.lora.targets, ['q_proj', 'o_proj']);

  const bad = checkForm(form({ 'lora.r': '0', 'train.learningRate': '-0.001', 'train.steps': '', 'train.batchSize': 'four' }, []), '/m', '/d');
  assert.equal(bad.ok, false);
  // Each message is the protocol validator's own message for that field.
  const expected = validateRunConfig({ modelPath: '/m', datasetPath: '/d', lora: { r: 0, alpha: 16, dropout: 0.05, targets: [] }, train: { learningRate: -0.001, steps: undefined, batchSize: NaN, maxSeqLen: 128 } });
  assert.equal(expected.ok, false);
  if (expected.ok) return;
  for (const field of ['lora.r', 'lora.targets', 'train.learningRate', 'train.steps', 'train.batchSize']) {
    assert.equal(bad.errors[field], expected.errors.find((e) => e.field === field)?.message, field);
  }
  assert.equal(Object.keys(bad.errors).length, 5, JSON.stringify(bad.errors));
});

test('lossTicks: evenly spaced round ticks that cover the data without reaching far past it', () => {
  // Found by fast-check: a maximum a hair above a round tick value used to be left uncovered.
  const edge = lossTicks([{ loss: 30.000000000030003 }, { loss: 0.001 }]);
  assert.ok(edge[edge.length - 1] >= 30.000000000030003, `${edge}`);
  fc.assert(
    fc.property(fc.array(fc.double({ min: 1e-3, max: 1e3, noNaN: true }), { minLength: 1, maxLength: 50 }), (losses) => {
      const ticks = lossTicks(losses.map((loss) => ({ loss })));
      const min = Math.min(...losses);
      const max = Math.max(...losses);
      const step = ticks[1] - ticks[0];
      assert.ok(ticks.length >= 2 && ticks.length <= 12, `${ticks.length} ticks`);
      const ulps = max * 1e-12;
      assert.ok(ticks[0] <= min + ulps && ticks[ticks.length - 1] >= max - ulps, `${ticks} cover [${min}, ${max}]`);
      // Differences under a millionth of the value count as flat.
      if (max - min > max * 1e-6) assert.ok(ticks[0] > min - step && ticks[ticks.length - 1] < max + step, 'within one step of the data');
      else assert.ok(ticks[ticks.length - 1] - ticks[0] <= max * 0.5, `a flat series at ${max} gets a band at its own scale: ${ticks}`);
      const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
      assert.ok([1, 2, 5, 10].some((m) => Math.abs(mantissa - m) < 1e-6), `round step ${step}`);
      for (let i = 1; i < ticks.length; i++) assert.ok(Math.abs(ticks[i] - ticks[i - 1] - step) < step * 1e-6);
    }),
  );
});

test('tickDecimals: enough decimals to tell the loss ticks apart, at most four', () => {
  // A step whose leading digit stands at 10^-k needs k decimals (none from 1 up).
  assert.equal(tickDecimals([1, 2, 3]), 0);
  assert.equal(tickDecimals([0, 20, 40]), 0);
  assert.equal(tickDecimals([1.5, 2, 2.5]), 1);
  assert.equal(tickDecimals([0.98, 1, 1.02]), 2);
  assert.equal(tickDecimals([0, 1e-7]), 4);
  // 0.14 − 0.13 is 0.00999… in floats; it is still a step of 0.01.
  assert.equal(tickDecimals([0.13, 0.14, 0.15]), 2);
  fc.assert(
    fc.property(fc.array(fc.double({ min: 1e-3, max: 1e3, noNaN: true }), { minLength: 1, maxLength: 50 }), (losses) => {
      const ticks = lossTicks(losses.map((loss) => ({ loss })));
      const d = tickDecimals(ticks);
      const labels = ticks.map((t) => t.toFixed(d));
      // Steps under 10^-4 (a flat series near 0.001) are capped at four decimals on purpose.
      if (ticks[1] - ticks[0] < 1e-4 * (1 - 1e-9)) assert.equal(d, 4);
      else assert.equal(new Set(labels).size, labels.length, `distinct labels ${labels}`);
    }),
  );
});
