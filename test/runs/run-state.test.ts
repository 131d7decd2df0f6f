/**
 * The run state machine: every one of the 9 × 9 moves is checked against the lifecycle the studio promises
 * (written out below from the design, not read from the code), and the watchdog fails a phase that overruns.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RunState } from '../../common/protocol.ts';
import { assertTransition, canTransition, IllegalTransitionError, isTerminal, RUN_STATES, RunWatchdog, timeoutMessage, TRANSITIONS, type WatchdogPhase } from '../../host/services/run-state.ts';

// The promised lifecycle, edge by edge, with why each edge exists.
const LEGAL: [RunState, RunState, string][] = [
  ['pending', 'validating', 'a new run is checked'],
  ['pending', 'failed', 'it could not even be checked'],
  ['pending', 'cancelled', 'the user cancels before checking'],
  ['validating', 'queuing', 'checks passed: wait for a device'],
  ['validating', 'failed', 'checks failed or timed out'],
  ['validating', 'cancelled', 'cancel while checking'],
  ['queuing', 'executing', 'its turn came'],
  ['queuing', 'paused', 'hold a waiting run'],
  ['queuing', 'failed', 'its files vanished while it waited'],
  ['queuing', 'cancelled', 'cancel a waiting run'],
  ['executing', 'finalizing', 'the last step finished (or stop and save)'],
  ['executing', 'paused', 'checkpoint written, engine stopped'],
  ['executing', 'queuing', 'the studio died mid-run: back in line to resume'],
  ['executing', 'failed', 'engine error, watchdog, disk full'],
  ['executing', 'cancelled', 'stopped without saving'],
  ['finalizing', 'completed', 'adapter saved'],
  ['finalizing', 'failed', 'the adapter could not be saved'],
  ['paused', 'queuing', 'resume'],
  ['paused', 'failed', 'its checkpoint or files are gone'],
  ['paused', 'cancelled', 'give up on a paused run'],
  ['failed', 'queuing', 'retry from the last checkpoint'],
];
const legal = new Set(LEGAL.map(([a, b]) => `${a}>${b}`));

describe('transitions', () => {
  test('the state list is the protocol’s nine states', () => {
    assert.deepEqual([...RUN_STATES].sort(), ['cancelled', 'completed', 'executing', 'failed', 'finalizing', 'paused', 'pending', 'queuing', 'validating']);
  });

  for (const from of RUN_STATES) {
    for (const to of RUN_STATES) {
      const ok = legal.has(`${from}>${to}`);
      test(`${from} → ${to} is ${ok ? 'legal' : 'refused'}`, () => {
        assert.equal(canTransition(from, to), ok);
        if (ok) {
          assert.doesNotThrow(() => assertTransition(from, to, 'run-x'));
          return;
        }
        assert.throws(
          () => assertTransition(from, to, 'run-x'),
          (e: unknown) => {
            assert.ok(e instanceof IllegalTransitionError);
            assert.equal(e.from, from);
            assert.equal(e.to, to);
            assert.match(e.message, new RegExp(`from ${from} to ${to}`));
            assert.match(e.message, /run-x/);
            return true;
          },
        );
      });
    }
  }

  test('the table has no edge the lifecycle does not promise', () => {
    const table = Object.entries(TRANSITIONS).flatMap(([from, tos]) => tos.map((to) => `${from}>${to}`));
    assert.deepEqual(table.sort(), [...legal].sort());
  });

  test('completed and cancelled are final; failed can only be retried', () => {
    assert.equal(isTerminal('completed'), true);
    assert.equal(isTerminal('cancelled'), true);
    assert.equal(isTerminal('failed'), true);
    assert.equal(isTerminal('paused'), false);
    for (const to of RUN_STATES) {
      assert.equal(canTransition('completed', to), false);
      assert.equal(canTransition('cancelled', to), false);
      assert.equal(canTransition('failed', to), to === 'queuing');
    }
  });

  test('unknown states are refused by name', () => {
    assert.throws(() => assertTransition('running' as RunState, 'failed'), /unknown run state "running"/);
    assert.throws(() => assertTransition('executing', 'done' as RunState), /unknown run state "done"/);
  });
});

describe('watchdog', () => {
  function wait(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }

  test('a phase that overruns fires once with a message naming it', async () => {
    const fired: [WatchdogPhase, string][] = [];
    const w = new RunWatchdog({ validatingMs: 30, startupMs: 1000, stepMs: 1000, finalizingMs: 1000 }, (p, m) => fired.push([p, m]));
    w.arm('validating');
    await wait(80);
    assert.equal(fired.length, 1);
    assert.equal(fired[0][0], 'validating');
    assert.match(fired[0][1], /validation took longer than 30 ms/);
    assert.equal(w.current, null);
  });

  test('steps that keep coming keep the per-step watchdog quiet; a stall after step 3 fires it', async () => {
    const fired: string[] = [];
    const w = new RunWatchdog({ validatingMs: 0, startupMs: 1000, stepMs: 60, finalizingMs: 0 }, (_p, m) => fired.push(m));
    w.arm('startup');
    for (let step = 1; step <= 3; step++) {
      await wait(25);
      w.kick(step);
    }
    assert.deepEqual(fired, []);
    await wait(120);
    assert.equal(fired.length, 1);
    assert.match(fired[0], /no training step finished for 60 ms after step 3/);
  });

  test('disarm stops it, and a limit of 0 turns a phase off', async () => {
    const fired: string[] = [];
    const w = new RunWatchdog({ validatingMs: 0, startupMs: 20, stepMs: 20, finalizingMs: 20 }, (_p, m) => fired.push(m));
    w.arm('validating');
    w.arm('finalizing');
    w.disarm();
    await wait(60);
    assert.deepEqual(fired, []);
  });

  test('messages say the limit in human units', () => {
    assert.match(timeoutMessage('startup', 30 * 60_000), /within 30 min/);
    assert.match(timeoutMessage('finalizing', 2500), /2\.5 s/);
  });
});
