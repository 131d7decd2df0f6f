/**
 * The reply and event schemas (common/reply-schemas.ts, common/event-schemas.ts) against what a real web host sends:
 * a short run on the sample model, a setting changed, a Playground answer and a lab job, over the event socket; every
 * message parses with its event's schema. Then every method of the protocol is asked over the HTTP API, as the UI
 * would use it (a run started, queued, paused, resumed, cancelled, stopped and saved, deleted; a model pulled from a
 * local stand-in for the Hugging Face Hub and found in the cache; a bundle exported and its output followed and
 * imported; adapters exported, saved, imported and deleted; lab jobs run and cancelled), and each answer parses with
 * its method's reply schema. Only the Electron-only methods (native dialogs and drag) are not asked, and the test
 * says so by name.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { STUDIO_EVENT_SCHEMAS } from '../../common/event-schemas.ts';
import { REPLY_SCHEMAS, type SchemaReplyMethod } from '../../common/reply-schemas.ts';
import { STUDIO_METHODS, type RunConfigInput, type StudioEventMessage, type StudioMethod, type StudioResult } from '../../common/protocol.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { startWebHost, type WebHost } from '../../host/web-host.ts';
import { startHubServer, type HubServer } from '../helpers/hub-server.ts';

/** Methods only the desktop app answers (native pickers, a native drag): the web host refuses them. */
const ELECTRON_ONLY = new Set<StudioMethod>(['dialog.pickFolder', 'dialog.pickFile', 'adapters.startDrag']);

const tmp = mkdtempSync(join(tmpdir(), 'lora-event-schemas-'));
let host: WebHost;
let hub: HubServer;
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
  // The sample model as a Hub repo on a local server; the studio's HF cache, HF home and Ollama store are this
  // test's own folders (the studio reads them from the environment, as it reads the user's).
  const files: Record<string, Buffer> = {};
  for (const f of readdirSync(SAMPLE_MODEL_DIR)) files[f] = readFileSync(join(SAMPLE_MODEL_DIR, f));
  hub = await startHubServer({ 'studio-tests/sample': { commit: 'c0ffee0c0ffee0c0ffee0c0ffee0c0ffee0c0ffe', files } }, []);
  Object.assign(process.env, { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: join(tmp, 'hub'), HF_HOME: join(tmp, 'hf-home'), OLLAMA_MODELS: join(tmp, 'ollama') });
  delete process.env.HF_TOKEN;
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
  await hub.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** Every message so far parses with its event's schema; how many of each came. */
function checkEvents(): Map<string, number> {
  const seen = new Map<string, number>();
  for (const m of messages) {
    seen.set(m.event, (seen.get(m.event) ?? 0) + 1);
    const schema = (STUDIO_EVENT_SCHEMAS as Record<string, (typeof STUDIO_EVENT_SCHEMAS)[keyof typeof STUDIO_EVENT_SCHEMAS] | undefined>)[m.event];
    assert.ok(schema, `the web host sent ${m.event}, which has no schema`);
    const parsed = schema.safeParse(m.data);
    assert.ok(parsed.success, `${m.event} ${JSON.stringify(m.data).slice(0, 300)}: ${parsed.success ? '' : JSON.stringify(parsed.error.issues)}`);
    assert.deepEqual(JSON.parse(JSON.stringify(parsed.data)), m.data, `${m.event}: the event has fields its schema does not describe`);
  }
  return seen;
}

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

    const seen = checkEvents();
    // The run and the other requests really produced the events the schemas are about.
    for (const e of ['run.updated', 'run.log', 'run.metrics', 'settings.changed', 'adapters.changed', 'generate.started', 'generate.output', 'generate.ended', 'quant.progress', 'quant.done']) {
      assert.ok((seen.get(e) ?? 0) > 0, `no ${e} event came (${[...seen.keys()].join(', ')})`);
    }
    const points = messages.filter((m) => m.event === 'run.metrics').flatMap((m) => (m.data as { points: unknown[] }).points);
    assert.equal(points.length >= 3, true, `${points.length} metric points for 3 steps`);
  });

  test('every reply, as the HTTP API answers it, parses with its schema', async () => {
    assert.ok(runId, 'the run of the first test');
    const asked = new Set<StudioMethod>();
    async function ask<M extends SchemaReplyMethod>(method: M, params: unknown): Promise<StudioResult<M>> {
      const result = await api<unknown>(method, params);
      const parsed = REPLY_SCHEMAS[method].safeParse(result);
      assert.ok(parsed.success, `${method} ${JSON.stringify(result).slice(0, 300)}: ${parsed.success ? '' : JSON.stringify(parsed.error.issues)}`);
      // Nothing in the reply is outside its schema (zod drops unknown keys, so a field the schema lacks would differ).
      assert.deepEqual(JSON.parse(JSON.stringify(parsed.data)), result, `${method}: the reply has fields its schema does not describe`);
      asked.add(method);
      return result as StudioResult<M>;
    }
    const event = <T>(name: string, ok: (data: T) => boolean) => until(name, () => messages.some((m) => m.event === name && ok(m.data as T)));
    const lora = { r: 2, alpha: 4, dropout: 0, targets: ['q_proj', 'v_proj'] as ('q_proj' | 'v_proj')[] };
    const config = (steps: number): RunConfigInput => ({ modelPath: SAMPLE_MODEL_DIR, datasetPath: SAMPLE_DATASET_PATH, lora, train: { learningRate: 1e-3, steps, batchSize: 1, maxSeqLen: 64 } });

    await ask('app.info', {});
    await ask('settings.get', {});
    await ask('settings.set', { checkpointEveryMinutes: 8 });
    await ask('backends.probe', {});

    // Models: the sample, one inspected, one pulled from the stand-in Hub and then found in the cache.
    await ask('models.sample', {});
    await ask('models.inspect', { path: SAMPLE_MODEL_DIR });
    const pull = await ask('models.pull', { repo: 'studio-tests/sample' });
    await event<{ jobId: string; error: unknown }>('models.pullEnded', (d) => d.jobId === pull.jobId);
    await ask('models.pullCancel', { jobId: pull.jobId });
    const found = await ask('models.discover', {});
    assert.ok(found.models.some((m) => m.store === 'hf-cache' && m.name === 'studio-tests/sample'), JSON.stringify(found));

    // Datasets.
    await ask('datasets.sample', {});
    await ask('datasets.inspect', { path: SAMPLE_DATASET_PATH, modelPath: SAMPLE_MODEL_DIR, maxSeqLen: 64 });
    await ask('datasets.upload', { fileName: 'two.jsonl', content: '{"text": "one"}\n{"text": "two"}\n' });

    // The first test's run, read every way.
    await ask('runs.list', {});
    await ask('runs.get', { id: runId });
    await ask('runs.metrics', { id: runId });
    await ask('runs.events', { id: runId });
    await ask('runs.history', { id: runId });
    await ask('runs.evalSamples', { id: runId });
    await ask('runs.update', { id: runId, notes: 'schema checked', tags: ['schemas'] });
    await ask('runs.estimateMemory', { modelPath: SAMPLE_MODEL_DIR, lora, train: { learningRate: 1e-3, steps: 3, batchSize: 1, maxSeqLen: 64 } });

    // A long run executing and one waiting behind it: the queue's moves.
    const long = await ask('runs.start', { config: config(5000) });
    const waiting = await ask('runs.start', { config: config(3) });
    await ask('runs.setPriority', { id: waiting.id, priority: 1 });
    assert.equal((await ask('runs.pause', { id: waiting.id })).state, 'paused');
    assert.equal((await ask('runs.resume', { id: waiting.id })).state, 'queuing');
    assert.equal((await ask('runs.cancel', { id: waiting.id })).state, 'cancelled');
    await until('the long run to train a step', () => messages.some((m) => m.event === 'run.updated' && (m.data as { id: string; step: number }).id === long.id && (m.data as { step: number }).step >= 1));
    await ask('runs.stopAndSave', { id: long.id });
    await host.services.whenIdle();
    assert.equal((await ask('runs.delete', { id: waiting.id, deleteAdapter: true })).deleted, true);

    // Adapters of the first run: listed, renamed, saved, exported three ways, the saved copy imported and deleted.
    const adapters = await ask('adapters.list', {});
    const adapter = adapters.find((a) => a.runId === runId);
    assert.ok(adapter, 'the first run registered its adapter');
    await ask('adapters.rename', { id: adapter.id, name: 'renamed' });
    mkdirSync(join(tmp, 'saved'));
    const saved = await ask('adapters.saveAs', { id: adapter.id, destination: join(tmp, 'saved') });
    await ask('adapters.exportGguf', { id: adapter.id });
    await ask('adapters.exportOllama', { id: adapter.id });
    mkdirSync(join(tmp, 'merged'));
    await ask('adapters.exportMerged', { id: adapter.id, format: 'gguf-f16', destination: join(tmp, 'merged') });
    const imported = await ask('adapters.import', { path: saved.path, modelPath: SAMPLE_MODEL_DIR, name: 'imported copy' });
    assert.equal((await ask('adapters.delete', { id: imported.adapter.id })).deleted, true);

    // A cluster bundle of the first run; its output folder (as train.py writes it) followed and its adapter imported.
    mkdirSync(join(tmp, 'bundles'));
    const bundle = await ask('runs.exportBundle', { id: runId, destination: join(tmp, 'bundles'), launcher: 'single-gpu' });
    const out = join(bundle.path, 'output');
    mkdirSync(out, { recursive: true });
    const point = { step: 1, loss: 2.5, learningRate: 1e-3, tokens: 10, tokensPerSecond: 100, elapsedMs: 100, gradNorm: 1 };
    writeFileSync(join(out, 'metrics.jsonl'), `${JSON.stringify(point)}\n`);
    cpSync(adapter.path, join(out, 'adapter'), { recursive: true });
    writeFileSync(join(out, 'status.json'), JSON.stringify({ format: 'lora-studio-external-run', runId: 'cluster-1', state: 'completed', step: 1, totalSteps: 1, name: 'cluster run', adapterDir: 'adapter' }));
    const followed = await ask('external.follow', { path: out, autoImport: false });
    assert.equal(followed.state, 'completed');
    await ask('external.list', {});
    await ask('external.metrics', { id: followed.id });
    await ask('external.importAdapter', { id: followed.id, name: 'from the cluster' });
    await ask('external.unfollow', { id: followed.id });

    // The lab: the formats, a job run to its end and read back, another cancelled.
    await ask('quant.formats', {});
    const job = await ask('quant.start', { modelPath: SAMPLE_MODEL_DIR, formats: ['q4_0'], useSampleCalib: true, calibTokens: 64, calibSeqLen: 32 });
    await event<{ job: { id: string } }>('quant.done', (d) => d.job.id === job.jobId);
    const got = await ask('quant.get', { jobId: job.jobId });
    assert.ok(got.report !== null && got.report.calibration !== null, 'the report, with calibration');
    const second = await ask('quant.start', { modelPath: SAMPLE_MODEL_DIR, formats: ['q8_0'] });
    await ask('quant.cancel', { jobId: second.jobId });
    await event<{ job: { id: string } }>('quant.failed', (d) => d.job.id === second.jobId);
    await ask('quant.list', {});

    // The Playground.
    const gen = await ask('generate.start', { modelPath: SAMPLE_MODEL_DIR, adapterPath: adapter.path, compareBase: true, prompt: 'Name a colour.', promptFormat: 'chat', maxNewTokens: 3, temperature: 0, topP: 1, seed: 1, backend: 'cpu' });
    await event<{ jobId: string }>('generate.ended', (d) => d.jobId === gen.jobId);
    await ask('generate.cancel', { jobId: gen.jobId });
    await host.services.whenIdle();

    const notAsked = STUDIO_METHODS.filter((m) => !asked.has(m) && !ELECTRON_ONLY.has(m));
    assert.deepEqual(notAsked, [], 'every method the web host answers was asked');
    // And every event all this pushed parses with its schema, the ones only these requests cause among them.
    const seen = checkEvents();
    for (const e of ['run.removed', 'models.pullProgress', 'models.pullEnded', 'external.updated', 'external.metrics', 'external.removed', 'quant.done']) {
      assert.ok((seen.get(e) ?? 0) > 0, `no ${e} event came (${[...seen.keys()].join(', ')})`);
    }
    assert.equal(REPLY_SCHEMAS['runs.history'].safeParse([{ from: null, to: 'sleeping', at: 'now', reason: null }]).success, false);
  });

  test('a wrong event payload is refused by its schema', () => {
    assert.equal(STUDIO_EVENT_SCHEMAS['run.log'].safeParse({ runId: 'r', level: 'loud', message: 'x' }).success, false);
    assert.equal(STUDIO_EVENT_SCHEMAS['run.metrics'].safeParse({ runId: 'r', points: [{ step: 0 }] }).success, false);
    assert.equal(STUDIO_EVENT_SCHEMAS['quant.progress'].safeParse({ jobId: 'j', phase: 'weights', done: 1, total: 2, format: 'q8_0', fraction: 2 }).success, false);
    assert.equal(STUDIO_EVENT_SCHEMAS['run.updated'].safeParse({ id: 'r', name: 'r', state: 'running' }).success, false);
    assert.equal(STUDIO_EVENT_SCHEMAS['generate.output'].safeParse({ jobId: 'j', variant: 'adapter', text: 'a', tokens: 1, tokensPerSecond: null, prefillMs: null, stop: 'tired' }).success, false);
  });
});
