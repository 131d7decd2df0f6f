/**
 * Metrics to every window: clients of the web host that connect (or reconnect) mid-run subscribe to /events, fetch
 * the history with runs.metrics, and merge the two by step (common/run-metrics.ts). Each must end with every step
 * exactly once, equal to what the studio stored — no point lost between the history and the live stream, none
 * duplicated — and the live stream itself must never repeat a step.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { WebSocket } from 'ws';
import type { MetricPoint, RunConfigInput, RunSummary, StudioEventMessage, StudioReply } from '../../common/protocol.ts';
import { mergeMetricPoints } from '../../common/run-metrics.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { startWebHost, type WebHost } from '../../host/web-host.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lora-reconnect-'));
let host: WebHost | null = null;
after(async () => {
  await host?.close();
  await host?.services.close();
  rmSync(tmp, { recursive: true, force: true });
});

const STEPS = 60;

async function api<T>(h: WebHost, method: string, params: unknown): Promise<T> {
  const res = await fetch(`${h.origin}/api/${method}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-studio-token': h.token }, body: JSON.stringify(params) });
  const reply = (await res.json()) as StudioReply<'runs.get'>;
  if (!reply.ok) throw new Error(`${method}: ${reply.error.message}`);
  return reply.result as T;
}

/** A window: subscribes, then fetches the history, then keeps merging live points until closed. */
class Window {
  points: MetricPoint[] = [];
  live: number[] = [];
  history = 0;
  private readonly ws: WebSocket;
  private readonly ready: Promise<void>;
  private buffered: StudioEventMessage<'run.metrics'>['data'][] = [];
  private loaded = false;

  constructor(
    private readonly h: WebHost,
    private readonly runId: string,
  ) {
    this.ws = new WebSocket(`${h.origin.replace('http', 'ws')}/events?token=${h.token}`, { headers: { origin: h.origin } });
    this.ws.on('message', (raw: Buffer) => {
      const m = JSON.parse(raw.toString()) as StudioEventMessage;
      if (m.event !== 'run.metrics') return;
      const data = m.data as StudioEventMessage<'run.metrics'>['data'];
      if (data.runId !== this.runId) return;
      this.live.push(...data.points.map((p) => p.step));
      if (this.loaded) this.points = mergeMetricPoints(this.points, data.points, data.truncatedAfter);
      else this.buffered.push(data);
    });
    this.ready = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  async load(): Promise<void> {
    await this.ready;
    const history = await api<MetricPoint[]>(this.h, 'runs.metrics', { id: this.runId });
    this.history = history.length;
    this.points = history;
    for (const d of this.buffered.splice(0)) this.points = mergeMetricPoints(this.points, d.points, d.truncatedAfter);
    this.loaded = true;
  }

  close(): void {
    this.ws.close();
  }
}

async function untilStep(h: WebHost, id: string, step: number): Promise<RunSummary> {
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
    const r = await api<RunSummary>(h, 'runs.get', { id });
    if (r.state === 'failed') throw new Error(r.error ?? 'failed');
    if (r.step >= step || r.state === 'completed') return r;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`step ${step} never came`);
}

test('windows that connect or reconnect mid-run end with every point once', async () => {
  host = await startWebHost({ home: join(tmp, 'home'), port: 0 });
  const h = host;
  const config: RunConfigInput = {
    modelPath: SAMPLE_MODEL_DIR,
    datasetPath: SAMPLE_DATASET_PATH,
    lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'] },
    train: { learningRate: 3e-3, steps: STEPS, batchSize: 2, maxSeqLen: 96 },
  };
  const run = await api<RunSummary>(h, 'runs.start', { config });
  const early = new Window(h, run.id);
  await early.load();

  await untilStep(h, run.id, 8);
  const late = new Window(h, run.id);
  await late.load();

  // A window that closes at step ~20 and reloads at ~30.
  const reloading = new Window(h, run.id);
  await reloading.load();
  await untilStep(h, run.id, 20);
  reloading.close();
  await untilStep(h, run.id, 30);
  const reloaded = new Window(h, run.id);
  await reloaded.load();
  const midRun = await api<RunSummary>(h, 'runs.get', { id: run.id });
  assert.equal(midRun.state, 'executing', 'the reload happened mid-run');

  await h.services.whenIdle();
  const done = await api<RunSummary>(h, 'runs.get', { id: run.id });
  assert.equal(done.state, 'completed', done.error ?? '');
  // The last batch is pushed before the run completes; give the sockets a moment to deliver it.
  await new Promise((r) => setTimeout(r, 200));
  const stored = await api<MetricPoint[]>(h, 'runs.metrics', { id: run.id });
  assert.deepEqual(stored.map((p) => p.step), Array.from({ length: STEPS }, (_, i) => i + 1));

  for (const [name, w] of Object.entries({ early, late, reloaded })) {
    assert.deepEqual(w.points, stored, `${name}: the merged chart is exactly what was stored`);
    assert.equal(new Set(w.live).size, w.live.length, `${name}: the live stream repeated a step`);
    assert.deepEqual(w.live, [...w.live].sort((a, b) => a - b), `${name}: live points out of order`);
    w.close();
  }
  assert.ok(late.history >= 8 && reloaded.history >= 30, `the late windows got a history (${late.history}, ${reloaded.history})`);
  assert.ok(reloaded.live.length > 0 && reloaded.live.length < STEPS, 'and live points after it');
});

test('merging: overlap, out-of-order batches and a truncation give each step once', () => {
  const p = (step: number, loss = step): MetricPoint => ({ step, loss, learningRate: 0, tokens: 1, tokensPerSecond: 1, elapsedMs: step, gradNorm: 0 });
  const history = [1, 2, 3, 4, 5].map((s) => p(s));
  assert.deepEqual(mergeMetricPoints(history, [p(4), p(5), p(6)]).map((x) => x.step), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(mergeMetricPoints(history, [p(7), p(6)]).map((x) => x.step), [1, 2, 3, 4, 5, 6, 7]);
  // The run went back to its checkpoint at step 3 and trains 4.. again with other numbers.
  const again = mergeMetricPoints(mergeMetricPoints(history, [], 3), [p(4, 40)]);
  assert.deepEqual(again.map((x) => [x.step, x.loss]), [[1, 1], [2, 2], [3, 3], [4, 40]]);
  assert.deepEqual(mergeMetricPoints(history, [p(2, 20)]).map((x) => x.loss), [1, 20, 3, 4, 5]);
  assert.notEqual(mergeMetricPoints(history, []), history, 'a new array, so a store sees the change');
});
