/**
 * The events' and replies' schemas against what the web host really sends: a short run on the sample model, a setting
 * changed, a Playground answer and a lab job, over the event socket; every message whose event has a schema parses
 * with it, and the others are the few events documented as schema-less (common/event-schemas.ts). Then the small
 * replies (common/reply-schemas.ts) of the same studio, as the HTTP API answers them, parse with theirs.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { STUDIO_EVENT_SCHEMAS } from '../../common/event-schemas.ts';
import { REPLY_SCHEMAS, type SchemaReplyMethod } from '../../common/reply-schemas.ts';
import type { StudioEventMessage } from '../../common/protocol.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { startWebHost, type WebHost } from '../../host/web-host.ts';

/** The events common/event-schemas.ts says have no schema. */
const WITHOUT_SCHEMA = new Set(['run.updated', 'quant.done', 'quant.failed', 'external.updated']);

const tmp = mkdtempSync(join(tmpdir(), 'lora-event-schemas-'));
let host: WebHost;
let ws: WebSocket;
const messages: StudioEventMessage[] = [];
let runId = '';

async function api<T>(method: string, params: unknown): Promise<T> {
  const r = await fetch(`http://127.0.0.1:${host.port}/api/${method}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-studio-token': host.token }, body: JSON.stringify(params) });
  const body = (await r.json()) as { ok: boolean; result?: T; error?: { message: string } };
  assert.ok(body.ok, `${method}: ${body.error?.message}`);
  return body.result as T;
}

async function until(what: string, ok: () => boolean, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

before(async () => {
  host = await startWebHost({ home: join(tmp, 'home'), port: 0, rendererDir: tmp, allow: [tmp] });
  ws = new WebSocket(`ws://127.0.0.1:${host.port}/events?token=${host.token}`, { headers: { origin: `http://127.0.0.1:${host.port}` } });
  ws.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString('utf8')) as StudioEventMessage));
  await new Promise<void>((resolve, reject) => {
    ws.on('open', () => resolve());
    ws.on('error', reject);
  });
});

after(async () => {
  ws.close();
  await host.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('event schemas', () => {
  test("every event the web host sends for a real run, a setting, a Playground answer and a lab job parses with its schema", async () => {
    const run = await api<{ id: string }>('runs.start', {
      config: { modelPath: SAMPLE_MODEL_DIR, datasetPath: SAMPLE_DATASET_PATH, lora: { r: 2, alpha: 4, dropout: 0, targets: ['q_proj', 'v_proj'] }, train: { learningRate: 1e-3, steps: 3, batchSize: 1, maxSeqLen: 64 } },
    });
    runId = run.id;
    await api('settings.set', { checkpointEveryMinutes: 9 });
    await until('the run to complete', () => messages.some((m) => m.event === 'run.updated' && (m.data as { id: string; state: string }).id === run.id && (m.data as { state: string }).state === 'completed'));

    const { jobId } = await api<{ jobId: string }>('generate.start', { modelPath: SAMPLE_MODEL_DIR, prompt: 'The jury said', promptFormat: 'raw', maxNewTokens: 3, temperature: 0, topP: 1, seed: 1, backend: 'cpu' });
    await until('the Playground job to end', () => messages.some((m) => m.event === 'generate.ended' && (m.data as { jobId: string }).jobId === jobId));

    const quant = await api<{ jobId: string }>('quant.start', { modelPath: SAMPLE_MODEL_DIR, formats: ['q8_0'] });
    await until('the lab job to end', () => messages.some((m) => (m.event === 'quant.done' || m.event === 'quant.failed') && (m.data as { job: { id: string } }).job.id === quant.jobId));
    await host.services.whenIdle();

    const seen = new Map<string, number>();
    for (const m of messages) {
      seen.set(m.event, (seen.get(m.event) ?? 0) + 1);
      if (WITHOUT_SCHEMA.has(m.event)) continue;
      const schema = (STUDIO_EVENT_SCHEMAS as Record<string, (typeof STUDIO_EVENT_SCHEMAS)[keyof typeof STUDIO_EVENT_SCHEMAS] | undefined>)[m.event];
      assert.ok(schema, `the web host sent ${m.event}, which has no schema and is not listed as schema-less`);
      const parsed = schema.safeParse(m.data);
      assert.ok(parsed.success, `${m.event} ${JSON.stringify(m.data).slice(0, 300)}: ${parsed.success ? '' : JSON.stringify(parsed.error.issues)}`);
    }
    // The run and the other requests really produced the events the schemas are about.
    for (const e of ['run.updated', 'run.log', 'run.metrics', 'settings.changed', 'adapters.changed', 'generate.started', 'generate.output', 'generate.ended', 'quant.progress']) {
      assert.ok((seen.get(e) ?? 0) > 0, `no ${e} event came (${[...seen.keys()].join(', ')})`);
    }
    const points = messages.filter((m) => m.event === 'run.metrics').flatMap((m) => (m.data as { points: unknown[] }).points);
    assert.equal(points.length >= 3, true, `${points.length} metric points for 3 steps`);
  });

  test('the small replies, as the HTTP API answers them, parse with their schemas', async () => {
    assert.ok(runId, 'the run of the first test');
    mkdirSync(join(tmp, 'saved'));
    const adapters = await api<{ id: string }[]>('adapters.list', {});
    assert.equal(adapters.length, 1, 'the run registered its adapter');
    const asked: [SchemaReplyMethod, unknown][] = [
      ['app.info', {}],
      ['settings.get', {}],
      ['settings.set', { checkpointEveryMinutes: 8 }],
      ['adapters.list', {}],
      ['adapters.rename', { id: adapters[0].id, name: 'renamed' }],
      ['adapters.saveAs', { id: adapters[0].id, destination: join(tmp, 'saved') }],
      ['adapters.exportGguf', { id: adapters[0].id }],
      ['runs.metrics', { id: runId }],
      ['runs.events', { id: runId }],
      ['runs.history', { id: runId }],
      ['runs.evalSamples', { id: runId }],
      ['quant.formats', {}],
      ['backends.probe', {}],
      ['generate.cancel', { jobId: 'no-such-job' }],
      ['models.pullCancel', { jobId: 'no-such-job' }],
    ];
    for (const [method, params] of asked) {
      const result = await api<unknown>(method, params);
      const parsed = REPLY_SCHEMAS[method].safeParse(result);
      assert.ok(parsed.success, `${method} ${JSON.stringify(result).slice(0, 300)}: ${parsed.success ? '' : JSON.stringify(parsed.error.issues)}`);
    }
    assert.equal(REPLY_SCHEMAS['runs.history'].safeParse([{ from: null, to: 'sleeping', at: 'now', reason: null }]).success, false);
  });

  test('a wrong event payload is refused by its schema', () => {
    assert.equal(STUDIO_EVENT_SCHEMAS['run.log'].safeParse({ runId: 'r', level: 'loud', message: 'x' }).success, false);
    assert.equal(STUDIO_EVENT_SCHEMAS['run.metrics'].safeParse({ runId: 'r', points: [{ step: 0 }] }).success, false);
    assert.equal(STUDIO_EVENT_SCHEMAS['quant.progress'].safeParse({ jobId: 'j', phase: 'weights', done: 1, total: 2, format: 'q8_0', fraction: 2 }).success, false);
    assert.equal(STUDIO_EVENT_SCHEMAS['generate.output'].safeParse({ jobId: 'j', variant: 'adapter', text: 'a', tokens: 1, tokensPerSecond: null, prefillMs: null, stop: 'tired' }).success, false);
  });
});
