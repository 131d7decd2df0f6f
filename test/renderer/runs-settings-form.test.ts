/**
 * The settings dialog: any valid settings survive draft → patch unchanged; the patch is one the services' settings
 * store accepts (StudioSettingsSchema, partial and strict, as host/services/settings.ts checks it); bad values
 * are refused on their own field with the schema's words; Prometheus off is port null.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_STUDIO_SETTINGS, StudioSettingsSchema, type StudioSettings } from '../../common/protocol.ts';
import { checkDraft, DEFAULT_PROMETHEUS_PORT, draftOf, type DraftErrorKey } from '../../renderer/src/runs/settings-form.ts';

const settingsArb: fc.Arbitrary<StudioSettings> = fc.record({
  checkpointEverySteps: fc.integer({ min: 0, max: 10_000_000 }),
  checkpointEveryMinutes: fc.double({ min: 0, max: 24 * 60, noNaN: true }),
  autoResume: fc.boolean(),
  maxConcurrentRunsPerDevice: fc.integer({ min: 1, max: 64 }),
  prometheusPort: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: null }),
  validationTimeoutSeconds: fc.constant(300),
  startupTimeoutMinutes: fc.constant(30),
  stepTimeoutMinutes: fc.constant(30),
  cpuThreads: fc.option(fc.integer({ min: 1, max: 256 }), { nil: null }),
  healthAlerts: fc.record({
    enabled: fc.boolean(),
    lossSpikeFactor: fc.double({ min: 1.01, max: 1000, noNaN: true }),
    spikeSteps: fc.integer({ min: 1, max: 1000 }),
    skippedStepsIn20: fc.integer({ min: 1, max: 20 }),
    lossScaleBelow: fc.double({ min: 1e-6, max: 1e6, noNaN: true }),
    gradNormFactor: fc.double({ min: 1.01, max: 1e6, noNaN: true }),
    gradNormBelow: fc.double({ min: 0, max: 1, noNaN: true }),
    overfitEvaluations: fc.integer({ min: 1, max: 100 }),
    throughputFraction: fc.double({ min: 0.001, max: 0.999, noNaN: true }),
    memoryFraction: fc.double({ min: 0.01, max: 1, noNaN: true }),
    notify: fc.boolean(),
  }),
});

test('draftOf → checkDraft gives back the settings, as a patch the services accept', () => {
  fc.assert(
    fc.property(settingsArb, (s) => {
      const r = checkDraft(draftOf(s));
      assert.ok(r.ok, JSON.stringify(r));
      assert.deepEqual(r.patch, {
        checkpointEverySteps: s.checkpointEverySteps,
        checkpointEveryMinutes: s.checkpointEveryMinutes,
        autoResume: s.autoResume,
        maxConcurrentRunsPerDevice: s.maxConcurrentRunsPerDevice,
        prometheusPort: s.prometheusPort,
        cpuThreads: s.cpuThreads,
        healthAlerts: { ...s.healthAlerts },
      });
      assert.ok(StudioSettingsSchema.partial().strict().safeParse(r.patch).success);
    }),
  );
});

test('the defaults: auto-resume on, one run per device, Prometheus off (offered on the usual port)', () => {
  const d = draftOf(DEFAULT_STUDIO_SETTINGS);
  assert.equal(d.autoResume, true);
  assert.equal(d.maxConcurrentRunsPerDevice, '1');
  assert.equal(d.prometheusOn, false);
  assert.equal(d.prometheusPort, String(DEFAULT_PROMETHEUS_PORT));
  const on = checkDraft({ ...d, prometheusOn: true });
  assert.ok(on.ok);
  assert.equal(on.patch.prometheusPort, DEFAULT_PROMETHEUS_PORT);
});

test('bad values are refused on their own field, with the words of the schema', () => {
  const d = draftOf(DEFAULT_STUDIO_SETTINGS);
  const cases: [Partial<typeof d>, DraftErrorKey, RegExp][] = [
    [{ checkpointEverySteps: '-1' }, 'checkpointEverySteps', /cannot be negative/],
    [{ checkpointEverySteps: '2.5' }, 'checkpointEverySteps', /whole number/],
    [{ checkpointEverySteps: '' }, 'checkpointEverySteps', /must be a number/],
    [{ checkpointEveryMinutes: '2000' }, 'checkpointEveryMinutes', /at most a day/],
    [{ maxConcurrentRunsPerDevice: '0' }, 'maxConcurrentRunsPerDevice', /at least 1/],
    [{ maxConcurrentRunsPerDevice: 'two' }, 'maxConcurrentRunsPerDevice', /must be a number/],
    [{ prometheusOn: true, prometheusPort: '70000' }, 'prometheusPort', /ports end at 65535/],
    [{ cpuThreads: '0' }, 'cpuThreads', /at least 1/],
    [{ cpuThreads: '1.5' }, 'cpuThreads', /whole number of threads/],
    [{ cpuThreads: 'all' }, 'cpuThreads', /must be a number/],
    [{ prometheusOn: true, prometheusPort: '0' }, 'prometheusPort', /ports start at 1/],
    [{ health: { ...d.health, lossSpikeFactor: '1' } }, 'health.lossSpikeFactor', /above 1/],
    [{ health: { ...d.health, spikeSteps: '0' } }, 'health.spikeSteps', /at least 1/],
    [{ health: { ...d.health, throughputFraction: '1.5' } }, 'health.throughputFraction', /below 1/],
    [{ health: { ...d.health, memoryFraction: 'lots' } }, 'health.memoryFraction', /must be a number/],
    [{ health: { ...d.health, skippedStepsIn20: '21' } }, 'health.skippedStepsIn20', /at most 20/],
  ];
  for (const [change, field, why] of cases) {
    const r = checkDraft({ ...d, ...change });
    assert.equal(r.ok, false, JSON.stringify(change));
    if (r.ok) continue;
    assert.deepEqual(Object.keys(r.errors), [field], JSON.stringify(change));
    assert.match(r.errors[field] ?? '', why, JSON.stringify(change));
  }
  // A bad port does not matter while the endpoint is off.
  assert.ok(checkDraft({ ...d, prometheusOn: false, prometheusPort: 'junk' }).ok);
});
