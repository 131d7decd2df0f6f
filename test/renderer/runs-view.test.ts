/**
 * The Runs page's pure logic: the actions offered per state agree with the services' state machine, the compare
 * selection stays within four runs with distinct stable colours, the compare chart rows hold exactly each run's
 * points, and the small parsers (priority, config flattening, checkpoint line, event append) do what they say.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_RUN_CONFIG, type MetricPoint, type RunConfig, type RunEventInfo, type RunState } from '../../common/protocol.ts';
import { RUN_STATES, TRANSITIONS } from '../../host/services/run-state.ts';
import {
  actionsFor,
  appendEvents,
  COMPARE_COLORS,
  compareRows,
  configDifferences,
  configEntries,
  MAX_COMPARED,
  parsePriority,
  priorityEditable,
  progressFraction,
  replyIsNewer,
  stateLabel,
  toggleCompared,
  type ComparedRun,
  type RunAction,
} from '../../renderer/src/runs/runs-view.ts';

/** The state each action moves a run to (host/services/run-manager.ts: pause → paused, resume → queuing, …). */
const TARGET: Record<RunAction, RunState> = { pause: 'paused', resume: 'queuing', stopAndSave: 'finalizing', cancel: 'cancelled' };

test('actionsFor offers an action only where the state machine allows its move, and every legal cancel, pause and resume', () => {
  for (const state of RUN_STATES) {
    const offered = actionsFor(state);
    for (const a of offered) {
      // An executing run pauses and stops through the engine; its move is still executing → paused/finalizing.
      assert.ok(TRANSITIONS[state].includes(TARGET[a]), `${a} is offered for ${state}, but ${state} → ${TARGET[a]} is illegal`);
    }
    if (TRANSITIONS[state].includes('cancelled')) assert.ok(offered.includes('cancel'), `a ${state} run can be cancelled`);
    if (TRANSITIONS[state].includes('paused')) assert.ok(offered.includes('pause'), `a ${state} run can be paused`);
    // queuing is also where a dead studio's executing run goes (not the user's doing): only paused/failed resume.
    if (state === 'paused' || state === 'failed') assert.ok(offered.includes('resume'), `a ${state} run can be resumed`);
    if (state === 'executing') assert.ok(offered.includes('stopAndSave'), 'an executing run can be stopped and saved');
    assert.equal(new Set(offered).size, offered.length, 'no action twice');
  }
  assert.deepEqual(actionsFor('completed'), []);
  assert.deepEqual(actionsFor('finalizing'), [], 'a run saving its adapter takes no action');
});

test('priority is editable exactly while a run has not got its device', () => {
  for (const state of RUN_STATES) {
    const waiting = state === 'pending' || state === 'validating' || state === 'queuing' || state === 'paused';
    assert.equal(priorityEditable(state), waiting, state);
  }
});

test('stateLabel shows the queue position of a waiting run', () => {
  assert.equal(stateLabel({ state: 'queuing', queuePosition: 2 }), 'queued (position 2)');
  assert.equal(stateLabel({ state: 'queuing', queuePosition: null }), 'queued');
  assert.equal(stateLabel({ state: 'queuing' }), 'queued');
  assert.equal(stateLabel({ state: 'executing', queuePosition: 3 }), 'training', 'a position on a run that is not waiting is ignored');
});

test('parsePriority: whole numbers only, with a reason otherwise', () => {
  assert.deepEqual(parsePriority(' 5 '), { ok: true, value: 5 });
  assert.deepEqual(parsePriority('-3'), { ok: true, value: -3 });
  for (const [text, why] of [
    ['', /must be a number/],
    ['abc', /must be a number, got "abc"/],
    ['1.5', /whole number/],
    ['Infinity', /must be a number/],
  ] as const) {
    const r = parsePriority(text);
    assert.equal(r.ok, false, text);
    if (!r.ok) assert.match(r.message, why);
  }
});

test('progressFraction: step / total within [0, 1]; a completed run is full even when stopped early', () => {
  assert.equal(progressFraction({ state: 'executing', step: 5, totalSteps: 20 }), 0.25);
  assert.equal(progressFraction({ state: 'completed', step: 7, totalSteps: 20 }), 1);
  assert.equal(progressFraction({ state: 'queuing', step: 0, totalSteps: 0 }), 0);
  assert.equal(progressFraction({ state: 'executing', step: 30, totalSteps: 20 }), 1);
});

test('toggleCompared: at most four runs, distinct colours, each keeps its colour, ticking twice undoes', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 40 }), (clicks) => {
      let sel: ComparedRun[] = [];
      for (const c of clicks) {
        const id = `run-${c}`;
        const before = sel;
        sel = toggleCompared(sel, id);
        assert.ok(sel.length <= MAX_COMPARED);
        const colors = sel.map((s) => s.color);
        assert.equal(new Set(colors).size, colors.length, 'distinct colours');
        for (const col of colors) assert.ok(col >= 0 && col < COMPARE_COLORS.length);
        assert.equal(new Set(sel.map((s) => s.id)).size, sel.length, 'a run once');
        for (const b of before) {
          const now = sel.find((s) => s.id === b.id);
          if (now) assert.equal(now.color, b.color, 'a run keeps its colour');
        }
        const wasIn = before.some((b) => b.id === id);
        if (wasIn) assert.ok(!sel.some((s) => s.id === id), 'unticked');
        else if (before.length < MAX_COMPARED) assert.ok(sel.some((s) => s.id === id), 'ticked');
        else assert.deepEqual(sel, before, 'a fifth run is refused');
      }
    }),
  );
  assert.equal(new Set(COMPARE_COLORS).size, MAX_COMPARED, 'four distinct colours');
});

const pt = (step: number, loss: number, skipped = false): MetricPoint => ({ step, loss, learningRate: 1e-3, tokens: 1, tokensPerSecond: 1, elapsedMs: step, gradNorm: 1, ...(skipped ? { skipped } : {}) });

test('compareRows: each run contributes exactly its drawable points, rows sorted by step', () => {
  const seriesArb = fc.uniqueArray(fc.record({ step: fc.integer({ min: 1, max: 80 }), loss: fc.double({ min: 0.01, max: 10, noNaN: true }), skipped: fc.boolean() }), { selector: (p) => p.step, maxLength: 40 });
  fc.assert(
    fc.property(fc.array(seriesArb, { minLength: 1, maxLength: 4 }), (all) => {
      const series = all.map((ps, i) => ({ id: `r${i}`, points: ps.map((p) => pt(p.step, p.loss, p.skipped)).sort((a, b) => a.step - b.step) }));
      const rows = compareRows(series);
      for (let i = 1; i < rows.length; i++) assert.ok(rows[i].step > rows[i - 1].step, 'sorted, each step once');
      for (const s of series) {
        const drawn = rows.filter((r) => s.id in r).map((r) => [r.step, r[s.id]]);
        const expected = s.points.filter((p) => !p.skipped).map((p) => [p.step, p.loss]);
        assert.deepEqual(drawn, expected, s.id);
      }
    }),
  );
});

test('compareRows thins long series to about maxRows, keeping the first and last step', () => {
  const points = Array.from({ length: 10_000 }, (_, i) => pt(i + 1, 1 / (i + 1)));
  const rows = compareRows([{ id: 'a', points }], 1000);
  assert.ok(rows.length <= 1001, `${rows.length} rows`);
  assert.equal(rows[0].step, 1);
  assert.equal(rows[rows.length - 1].step, 10_000);
});

test('configEntries flattens the config to dotted keys that rebuild it', () => {
  const config: RunConfig = { ...DEFAULT_RUN_CONFIG, modelPath: '/models/tiny', datasetPath: '/data/d.jsonl', data: { trainOn: 'auto', badRecords: 'skip', packing: true } };
  const entries = configEntries(config);
  assert.equal(new Set(entries.map(([k]) => k)).size, entries.length, 'each key once');
  const get = (k: string) => entries.find(([key]) => key === k)?.[1];
  assert.equal(get('modelPath'), '/models/tiny');
  assert.equal(get('lora.r'), String(config.lora.r));
  assert.equal(get('lora.targets'), config.lora.targets.join(', '));
  assert.equal(get('train.learningRate'), String(config.train.learningRate));
  assert.equal(get('data.packing'), 'true');
  // Every leaf of the config is listed, and nothing else.
  const leaves: string[] = [];
  const walk = (v: unknown, path: string[]) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    else if (v !== undefined) leaves.push(path.join('.'));
  };
  walk(config, []);
  assert.deepEqual(entries.map(([k]) => k).sort(), leaves.sort());
});

const ev = (id: number, message: string): RunEventInfo => ({ id, runId: 'r', at: '2026-01-01T00:00:00.000Z', level: 'info', step: null, message });

test('appendEvents keeps each event once, in id order, and caps the length', () => {
  const a = appendEvents([], [ev(1, 'a'), ev(2, 'b')]);
  const b = appendEvents(a, [ev(2, 'b'), ev(3, 'c')]);
  assert.deepEqual(b.map((e) => e.id), [1, 2, 3]);
  const capped = appendEvents(b, [ev(4, 'd'), ev(5, 'e')], 3);
  assert.deepEqual(capped.map((e) => e.id), [3, 4, 5]);
});

test('replyIsNewer: a reply older than the events already held never replaces them', () => {
  const at = (ms: number) => ({ updatedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, ms)).toISOString() });
  assert.equal(replyIsNewer(undefined, at(1), 'held'), true, 'an unknown run is taken');
  assert.equal(replyIsNewer(at(3), at(1), 'held'), false, 'the runs.start reply (pending) after the queued event');
  assert.equal(replyIsNewer(at(1), at(3), 'held'), true);
  assert.equal(replyIsNewer(at(2), at(2), 'held'), false);
  assert.equal(replyIsNewer(at(2), at(2), 'reply'), true);
  // ISO strings order like the times they name across second, minute and day boundaries.
  assert.equal(replyIsNewer({ updatedAt: '2026-01-01T23:59:59.999Z' }, { updatedAt: '2026-01-02T00:00:00.000Z' }, 'held'), true);
});

test('configDifferences names what differs between compared runs, and only that', () => {
  const base: RunConfig = { ...DEFAULT_RUN_CONFIG, modelPath: '/m', datasetPath: '/d' };
  const a = { ...base, train: { ...base.train, steps: 60 } };
  const b = { ...base, train: { ...base.train, steps: 30, learningRate: 0.005 } };
  assert.deepEqual(configDifferences([a, b]), [
    [`learningRate=${base.train.learningRate}`, 'steps=60'],
    ['learningRate=0.005', 'steps=30'],
  ]);
  assert.deepEqual(configDifferences([a, a]), [[], []], 'identical configs: nothing to show');
  assert.deepEqual(configDifferences([a]), [[]]);
  const c = { ...base, lora: { ...base.lora, r: 4 }, train: { ...base.train, steps: 10, seed: 1, batchSize: 2 } };
  assert.equal(configDifferences([a, c], 2)[0].length, 2, 'at most max entries');
});
