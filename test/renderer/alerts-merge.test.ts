/** The window's alert list: an alert that comes from the log and live is kept once; the list stays in step order. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunAlert } from '../../common/run-health.ts';
import { EMPTY_ALERTS, mergeAlerts } from '../../renderer/src/stores/alerts-merge.ts';

const a = (kind: RunAlert['kind'], step: number, eventId?: number): RunAlert => ({ runId: 'r', kind, step, message: `${kind} at ${step}`, ...(eventId !== undefined ? { eventId } : {}) });

test('mergeAlerts keeps each alert once, in step order, and returns the same list when nothing is new', () => {
  const live = mergeAlerts(EMPTY_ALERTS, [a('loss-spike', 30, 7)]);
  const fromLog = [a('non-finite-loss', 12, 3), a('loss-spike', 30, 7)];
  const merged = mergeAlerts(live, fromLog);
  assert.deepEqual(
    merged.map((x) => [x.kind, x.step]),
    [
      ['non-finite-loss', 12],
      ['loss-spike', 30],
    ],
  );
  assert.equal(mergeAlerts(merged, fromLog), merged, 'nothing new: the same array (no re-render)');
  // The same kind at another step is another alert; a repeat within one batch is not.
  assert.equal(mergeAlerts(merged, [a('loss-spike', 31), a('loss-spike', 31)]).length, 3);
});
