/**
 * The queue: priority first, then first come first served; N executing runs per device; the next run starts by
 * itself when one ends — including from inside the callbacks (a run that fails at once, a release during start).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RunQueue, type QueueItem } from '../../host/services/run-queue.ts';

function recorder(opts: { concurrency?: number | ((d: string) => number) } = {}) {
  const started: string[] = [];
  const q = new RunQueue({ ...opts, start: (i: QueueItem) => started.push(i.id) });
  return { q, started };
}

describe('order', () => {
  test('one slot: the first run starts, the rest wait in priority then arrival order', () => {
    const { q, started } = recorder();
    q.enqueue({ id: 'a' });
    q.enqueue({ id: 'b' });
    q.enqueue({ id: 'c', priority: 5 });
    q.enqueue({ id: 'd' });
    q.enqueue({ id: 'e', priority: 5 });
    assert.deepEqual(started, ['a']);
    assert.deepEqual(q.waiting().map((i) => i.id), ['c', 'e', 'b', 'd']);
    assert.equal(q.position('e'), 2);
    assert.equal(q.position('a'), null);
    for (const id of ['a', 'c', 'e', 'b']) q.release(id);
    assert.deepEqual(started, ['a', 'c', 'e', 'b', 'd']);
    assert.equal(q.size, 1);
    q.release('d');
    assert.equal(q.size, 0);
  });

  test('a given seq puts an interrupted run back at the front of its priority', () => {
    const { q, started } = recorder();
    q.enqueue({ id: 'running' });
    q.enqueue({ id: 'x', seq: 10 });
    q.enqueue({ id: 'y', seq: 11 });
    q.enqueue({ id: 'resumed', seq: 0 });
    q.release('running');
    assert.deepEqual(started, ['running', 'resumed']);
    assert.deepEqual(q.waiting().map((i) => i.id), ['x', 'y']);
  });

  test('raising a waiting run’s priority moves it up', () => {
    const { q, started } = recorder();
    q.enqueue({ id: 'a' });
    q.enqueue({ id: 'b' });
    q.enqueue({ id: 'c' });
    assert.equal(q.setPriority('c', 1), true);
    assert.equal(q.setPriority('a', 1), false, 'a is executing, not waiting');
    q.release('a');
    assert.deepEqual(started, ['a', 'c']);
  });

  test('removed runs never start', () => {
    const { q, started } = recorder();
    q.enqueue({ id: 'a' });
    q.enqueue({ id: 'b' });
    q.enqueue({ id: 'c' });
    assert.equal(q.remove('b'), true);
    assert.equal(q.remove('b'), false);
    q.release('a');
    assert.deepEqual(started, ['a', 'c']);
  });

  test('the same run cannot wait twice or wait while executing', () => {
    const { q } = recorder();
    q.enqueue({ id: 'a' });
    q.enqueue({ id: 'b' });
    assert.throws(() => q.enqueue({ id: 'a' }), /run a is already executing/);
    assert.throws(() => q.enqueue({ id: 'b' }), /run b is already waiting/);
  });
});

describe('concurrency', () => {
  test('default: one executing run per device, devices independent', () => {
    const { q, started } = recorder();
    q.enqueue({ id: 'c1', device: 'cpu' });
    q.enqueue({ id: 'c2', device: 'cpu' });
    q.enqueue({ id: 'g1', device: 'webgpu:0' });
    q.enqueue({ id: 'g2', device: 'webgpu:0' });
    assert.deepEqual(started, ['c1', 'g1']);
    assert.deepEqual(q.executing('cpu'), ['c1']);
    q.release('g1');
    assert.deepEqual(started, ['c1', 'g1', 'g2']);
  });

  test('N slots per device; raising the limit starts more at once', () => {
    const { q, started } = recorder({ concurrency: 2 });
    for (const id of ['a', 'b', 'c', 'd', 'e']) q.enqueue({ id });
    assert.deepEqual(started, ['a', 'b']);
    q.setConcurrency(4);
    assert.deepEqual(started, ['a', 'b', 'c', 'd']);
    q.release('b');
    assert.deepEqual(started, ['a', 'b', 'c', 'd', 'e']);
  });

  test('per-device limits from a function', () => {
    const { q, started } = recorder({ concurrency: (d) => (d === 'cpu' ? 3 : 1) });
    for (const id of ['c1', 'c2', 'c3', 'c4']) q.enqueue({ id, device: 'cpu' });
    for (const id of ['g1', 'g2']) q.enqueue({ id, device: 'webgpu:0' });
    assert.deepEqual(started, ['c1', 'c2', 'c3', 'g1']);
  });

  test('limits below 1 are refused by name', () => {
    assert.throws(() => new RunQueue({ concurrency: 0, start: () => undefined }), /whole number ≥ 1, got 0/);
    const q = new RunQueue({ concurrency: () => 0, start: () => undefined });
    assert.throws(() => q.enqueue({ id: 'a', device: 'webgpu:1' }), /device webgpu:1 .* got 0/);
  });

  test('hold stops handing out slots until resume', () => {
    const { q, started } = recorder();
    q.hold();
    q.enqueue({ id: 'a' });
    assert.deepEqual(started, []);
    q.resume();
    assert.deepEqual(started, ['a']);
  });
});

describe('re-entrancy', () => {
  test('a run that ends inside start hands its slot on, in order', () => {
    const started: string[] = [];
    const q: RunQueue = new RunQueue({
      start: (i) => {
        started.push(i.id);
        if (i.id !== 'last') q.release(i.id); // fails at once
      },
    });
    q.hold();
    for (const id of ['a', 'b', 'c', 'last']) q.enqueue({ id });
    q.resume();
    assert.deepEqual(started, ['a', 'b', 'c', 'last']);
    assert.deepEqual(q.executing(), ['last']);
  });

  test('a start that throws frees the slot, reports, and the next run starts', () => {
    const errors: string[] = [];
    const started: string[] = [];
    const q = new RunQueue({
      start: (i) => {
        if (i.id === 'bad') throw new Error('no engine');
        started.push(i.id);
      },
      onStartError: (i, e) => errors.push(`${i.id}: ${(e as Error).message}`),
    });
    q.hold();
    q.enqueue({ id: 'bad', priority: 1 });
    q.enqueue({ id: 'good' });
    q.resume();
    assert.deepEqual(errors, ['bad: no engine']);
    assert.deepEqual(started, ['good']);
    assert.equal(q.isRunning('bad'), false);
  });

  test('an overnight queue of 50 runs drains one by one in order', () => {
    const { q, started } = recorder();
    const ids = Array.from({ length: 50 }, (_, i) => `r${i}`);
    for (const id of ids) q.enqueue({ id });
    for (let i = 0; i < ids.length; i++) {
      assert.deepEqual(q.executing(), [ids[i]]);
      q.release(ids[i]);
    }
    assert.deepEqual(started, ids);
  });
});
