/**
 * A window's copy of a run's loss curve against a simulated studio: the services store each point, push points in
 * batches on an ordered event channel, and truncate after a checkpoint when a run resumes; the window fetches the
 * history over a separate channel (answered at any later moment), may lose its event channel and reconnect. Whatever
 * the interleaving, once the events are delivered the window holds exactly what the services stored — every step
 * once, in order, with the newest value — and never shows a step twice on the way.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { MetricPoint } from '../../common/protocol.ts';
import { applyUpdate, MetricsLoads, settleHistory, type MetricsUpdate } from '../../renderer/src/runs/metrics-sync.ts';

const RUN = 'run-1';
const point = (step: number, version: number): MetricPoint => ({ step, loss: 1 / step, learningRate: 1e-3, tokens: version, tokensPerSecond: 1, elapsedMs: step, gradNorm: 1 });

class Services {
  db = new Map<number, MetricPoint>();
  pending: MetricPoint[] = [];
  channel: MetricsUpdate[] = [];
  connected = true;
  version = 0;

  stored(): MetricPoint[] {
    return [...this.db.values()].sort((a, b) => a.step - b.step);
  }
  lastStep(): number {
    return Math.max(0, ...this.db.keys());
  }
  emit(u: MetricsUpdate): void {
    if (this.connected) this.channel.push(u);
  }
  /** A step finishes: stored first, pushed with the next flush. */
  append(): void {
    const p = point(this.lastStep() + 1, ++this.version);
    this.db.set(p.step, p);
    this.pending.push(p);
  }
  flush(): void {
    if (this.pending.length === 0) return;
    this.emit({ points: this.pending.splice(0) });
  }
  /** The run resumes from a checkpoint at step k (run-manager onStarted): later points are dropped and trained again. */
  truncate(k: number): void {
    this.flush();
    let dropped = 0;
    for (const s of [...this.db.keys()]) {
      if (s <= k) continue;
      this.db.delete(s);
      dropped++;
    }
    if (dropped > 0) this.emit({ points: [], truncatedAfter: k });
  }
}

class Window {
  series: readonly MetricPoint[] = [];
  loads = new MetricsLoads();
  fetch: { token: number; snapshot: MetricPoint[] | null } | null = null;

  receive(u: MetricsUpdate): void {
    this.loads.hold(RUN, u);
    this.series = applyUpdate(this.series, u);
  }
  startFetch(): void {
    if (!this.loads.needsLoad(RUN)) return;
    this.fetch = { token: this.loads.begin(RUN), snapshot: null };
  }
  deliverFetch(): void {
    if (!this.fetch?.snapshot) return;
    const s = this.loads.finish(RUN, this.fetch.token, this.fetch.snapshot);
    if (s) this.series = s;
    this.fetch = null;
  }
}

function assertClean(series: readonly MetricPoint[], where: string): void {
  for (let i = 1; i < series.length; i++) assert.ok(series[i].step > series[i - 1].step, `${where}: step ${series[i].step} after ${series[i - 1].step}`);
}

test('any interleaving of steps, batches, truncations, history fetches and lost connections ends with exactly the stored series', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 8 }), fc.nat()), { maxLength: 120 }), (ops) => {
      const svc = new Services();
      const win = new Window();
      // The window opens mid-run, or before it.
      win.startFetch();
      for (const [op, arg] of ops) {
        switch (op) {
          case 0:
          case 1:
            svc.append();
            break;
          case 2:
            svc.flush();
            break;
          case 3:
            if (svc.lastStep() > 0 && arg % 3 === 0) svc.truncate(arg % svc.lastStep());
            break;
          case 4:
          case 5: {
            const u = svc.channel.shift();
            if (u) win.receive(u);
            break;
          }
          case 6:
            // The services answer the fetch now (what is stored at this moment); it reaches the window later.
            if (win.fetch && !win.fetch.snapshot) win.fetch.snapshot = svc.stored();
            else win.deliverFetch();
            break;
          case 7:
            if (arg % 4 === 0) {
              // The event channel drops: queued events are lost, the window forgets what it loaded.
              svc.channel = [];
              svc.connected = false;
              win.loads.reset();
            } else if (!svc.connected) {
              svc.connected = true;
              win.startFetch();
            }
            break;
          case 8:
            win.startFetch();
            break;
        }
        assertClean(win.series, 'on the way');
      }
      // Drain: reconnect, push what is pending, answer any fetch, deliver every event.
      if (!svc.connected) {
        svc.connected = true;
        win.loads.reset();
      }
      win.startFetch();
      svc.flush();
      if (win.fetch && !win.fetch.snapshot) win.fetch.snapshot = svc.stored();
      win.deliverFetch();
      for (const u of svc.channel.splice(0)) win.receive(u);
      assert.ok(win.loads.isLoaded(RUN));
      assert.deepEqual(win.series, svc.stored());
    }),
    { numRuns: 400 },
  );
});

test('applyUpdate returns the same array when nothing changes (no re-render)', () => {
  const s = settleHistory([point(1, 1), point(2, 1)], []);
  assert.equal(applyUpdate(s, { points: [] }), s);
  assert.equal(applyUpdate(s, { points: [], truncatedAfter: 5 }), s, 'a truncation after the last step drops nothing');
  assert.deepEqual(applyUpdate(s, { points: [], truncatedAfter: 1 }).map((p) => p.step), [1]);
  const replaced = applyUpdate(s, { points: [point(2, 9)] });
  assert.equal(replaced.find((p) => p.step === 2)?.tokens, 9, 'the newest point of a step wins');
});

test('a history reply overtaken by a reset or a newer fetch is ignored', () => {
  const loads = new MetricsLoads();
  const old = loads.begin(RUN);
  loads.reset();
  assert.equal(loads.finish(RUN, old, [point(1, 1)]), null);
  assert.equal(loads.isLoaded(RUN), false);
  assert.equal(loads.needsLoad(RUN), true);
  const first = loads.begin(RUN);
  const second = loads.begin(RUN);
  assert.equal(loads.finish(RUN, first, [point(1, 1)]), null);
  assert.deepEqual(loads.finish(RUN, second, [point(1, 2)]), [point(1, 2)]);
  assert.equal(loads.needsLoad(RUN), false);
  assert.deepEqual(loads.watchedRuns(), [RUN]);
});
