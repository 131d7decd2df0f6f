/**
 * Prometheus export: the text format carries each run's loss, tokens, step, loss scale and throughput as given
 * (tokens summed over steps, a redone step counted once), and the endpoint serves it on 127.0.0.1 only.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { describe, test } from 'node:test';
import type { MetricPoint } from '../../common/protocol.ts';
import { RunMetricsExporter, servePrometheus } from '../../host/services/prometheus.ts';

/** Value of one series in the exposition text, found by metric name and exact label set. */
function sample(text: string, name: string, labels: Record<string, string>): number | null {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (m[2].split(',').sort().join(',') === want) return Number(m[3]);
  }
  return null;
}

function pt(step: number, loss: number, tokens: number, extra: Partial<MetricPoint> = {}): MetricPoint {
  return { step, loss, learningRate: 2e-4 * step, tokens, tokensPerSecond: 1000 + step, elapsedMs: step * 100, gradNorm: 1, ...extra };
}

describe('exposition text', () => {
  test('gauges per run with the last values; tokens are the sum over distinct steps', async () => {
    const ex = new RunMetricsExporter();
    const a = { id: 'run-a', name: 'first run' };
    const b = { id: 'run-b', name: 'second "quoted" run' };
    const pointsA = [pt(1, 3.5, 120), pt(2, 3.25, 130, { lossScale: 65536 }), pt(3, 3.0, 110, { lossScale: 32768, validationLoss: 3.1 })];
    for (const p of pointsA) ex.observe(a, p, 10);
    ex.observe(b, pt(1, 9, 7), 4);
    // run-a resumed from its checkpoint at step 2: step 3 is redone with other numbers.
    ex.observe(a, pt(3, 2.75, 115, { lossScale: 32768 }), 10);
    ex.setState(a, 'executing');
    const text = await ex.text();
    const la = { run_id: 'run-a', run_name: 'first run' };
    assert.equal(sample(text, 'lora_studio_run_loss', la), 2.75);
    assert.equal(sample(text, 'lora_studio_run_step', la), 3);
    assert.equal(sample(text, 'lora_studio_run_total_steps', la), 10);
    assert.equal(sample(text, 'lora_studio_run_tokens', la), 120 + 130 + 115);
    assert.equal(sample(text, 'lora_studio_run_loss_scale', la), 32768);
    assert.equal(sample(text, 'lora_studio_run_tokens_per_second', la), 1003);
    assert.equal(sample(text, 'lora_studio_run_validation_loss', la), 3.1);
    assert.equal(sample(text, 'lora_studio_run_learning_rate', la), 2e-4 * 3);
    assert.equal(sample(text, 'lora_studio_run_state', { ...la, state: 'executing' }), 1);
    assert.equal(sample(text, 'lora_studio_run_state', { ...la, state: 'paused' }), 0);
    // A label value with quotes is escaped, and fp32 runs report a loss scale of 1.
    assert.match(text, /run_name="second \\"quoted\\" run"/);
    assert.ok(text.includes('lora_studio_run_loss_scale{run_id="run-b",run_name="second \\"quoted\\" run"} 1'));
    assert.match(text, /# TYPE lora_studio_run_loss gauge/);
    assert.match(text, /# HELP lora_studio_run_tokens_per_second /);
  });

  test('a restored history continues the token count; forget removes a run', async () => {
    const ex = new RunMetricsExporter();
    const r = { id: 'r', name: 'r' };
    ex.restore(r, [pt(1, 2, 10), pt(2, 1.5, 20)], 5);
    ex.observe(r, pt(3, 1.25, 30), 5);
    assert.equal(sample(await ex.text(), 'lora_studio_run_tokens', { run_id: 'r', run_name: 'r' }), 60);
    ex.setState(r, 'completed');
    ex.forget('r');
    assert.doesNotMatch(await ex.text(), /run_id="r"/);
  });

  test('a NaN loss (no trained tokens) keeps the previous loss', async () => {
    const ex = new RunMetricsExporter();
    const r = { id: 'n', name: 'n' };
    ex.observe(r, pt(1, 4, 10));
    ex.observe(r, pt(2, Number.NaN, 0, { skipped: true }));
    const text = await ex.text();
    assert.equal(sample(text, 'lora_studio_run_loss', { run_id: 'n', run_name: 'n' }), 4);
    assert.equal(sample(text, 'lora_studio_run_step', { run_id: 'n', run_name: 'n' }), 2);
  });
});

describe('endpoint', () => {
  test('serves /metrics on 127.0.0.1; other paths are 404; a taken port is named', async () => {
    const ex = new RunMetricsExporter();
    ex.observe({ id: 'h', name: 'http' }, pt(4, 1.5, 40), 8);
    const ep = await servePrometheus(ex, { port: 0 });
    try {
      assert.equal(ep.host, '127.0.0.1');
      assert.match(ep.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const res = await fetch(ep.url);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
      const body = await res.text();
      assert.equal(body, await ex.text());
      assert.equal(sample(body, 'lora_studio_run_step', { run_id: 'h', run_name: 'http' }), 4);
      assert.equal((await fetch(`http://127.0.0.1:${ep.port}/`)).status, 404);
      assert.equal((await fetch(ep.url, { method: 'POST' })).status, 405);
      await assert.rejects(servePrometheus(ex, { port: ep.port }), new RegExp(`127\\.0\\.0\\.1:${ep.port}: the port is in use`));
    } finally {
      await ep.close();
    }
  });

  test('not reachable on other interfaces', async () => {
    const ex = new RunMetricsExporter();
    const ep = await servePrometheus(ex, { port: 0 });
    try {
      const outside = Object.values(networkInterfaces())
        .flat()
        .find((i) => i && i.family === 'IPv4' && !i.internal);
      // Without a non-loopback interface there is nothing to reach it from; the bound address says it all.
      assert.equal(ep.host, '127.0.0.1');
      if (outside) {
        const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
          const s = connect(ep.port, outside.address);
          s.once('connect', () => {
            s.destroy();
            resolve(null);
          });
          s.once('error', (e: NodeJS.ErrnoException) => resolve(e));
        });
        assert.equal(err?.code, 'ECONNREFUSED', `reachable on ${outside.address}`);
      }
    } finally {
      await ep.close();
    }
  });

  test('a bad port is refused by name', async () => {
    await assert.rejects(servePrometheus(new RunMetricsExporter(), { port: 70000 }), /from 0 to 65535, got 70000/);
  });
});
