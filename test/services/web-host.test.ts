/**
 * The web host as a browser (or an attacker) meets it: the token, the Origin and Host checks, path traversal, the
 * event socket and the adapter download — over real HTTP against the real services.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { unzipSync } from 'fflate';
import WebSocket from 'ws';
import type { StudioEventMessage } from '../../common/protocol.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { AdapterStore } from '../../host/services/adapter-store.ts';
import { openHome } from '../../host/services/home.ts';
import { startWebHost, type WebHost } from '../../host/web-host.ts';
import { assertPeftAdapter, writeTestAdapter } from '../helpers/peft-folder.ts';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json(): { ok: boolean; result?: unknown; error?: { message: string; field?: string } };
}

/** Raw HTTP, so paths like /../x reach the server exactly as written (fetch would normalise them). */
function send(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf, json: () => JSON.parse(buf.toString('utf8')) as ReturnType<Reply['json']> });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const tmp = mkdtempSync(join(tmpdir(), 'lora-web-host-'));
const home = openHome(join(tmp, 'home'));
const rendererDir = join(tmp, 'renderer');
let host: WebHost;
let api: (method: string, params: unknown, headers?: Record<string, string>) => Promise<Reply>;

before(async () => {
  mkdirSync(join(rendererDir, 'assets'), { recursive: true });
  writeFileSync(join(rendererDir, 'index.html'), '<!doctype html><title>LoRA Studio</title><div id="root"></div>');
  writeFileSync(join(rendererDir, 'assets', 'app.js'), 'console.log("studio");');
  writeFileSync(join(rendererDir, 'assets', 'app.css'), 'body{}');
  writeFileSync(join(tmp, 'secret.txt'), 'outside the served folder');
  symlinkSync(join(tmp, 'secret.txt'), join(rendererDir, 'assets', 'link.txt'));
  // The test's own files (a folder that is not a model, adapters to import) lie in its temp folder, allowed as --allow would.
  host = await startWebHost({ home: home.root, port: 0, rendererDir, allow: [tmp] });
  api = (method, params, headers = { 'x-studio-token': host.token }) =>
    send(host.port, 'POST', `/api/${method}`, { 'content-type': 'application/json', ...headers }, JSON.stringify(params));
});

after(async () => {
  await host.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('web host', () => {
  test('binds 127.0.0.1 and prints a URL carrying a long random token', () => {
    assert.equal(host.host, '127.0.0.1');
    assert.match(host.url, new RegExp(`^http://127\\.0\\.0\\.1:${host.port}/\\?token=[A-Za-z0-9_-]{40,}$`));
    assert.ok(host.url.endsWith(host.token));
  });

  test('a request without the token is refused with a message saying so', async () => {
    const r = await api('app.info', {}, {});
    assert.equal(r.status, 401);
    assert.equal(r.json().ok, false);
    assert.match(r.json().error?.message ?? '', /token/);
  });

  test('a wrong token is refused', async () => {
    const r = await api('app.info', {}, { 'x-studio-token': `${host.token.slice(0, -1)}x` });
    assert.equal(r.status, 403);
    assert.match(r.json().error?.message ?? '', /wrong token/);
  });

  test('another Origin is refused even with the right token', async () => {
    const r = await api('app.info', {}, { 'x-studio-token': host.token, origin: 'http://evil.example' });
    assert.equal(r.status, 403);
    assert.match(r.json().error?.message ?? '', /origin "http:\/\/evil\.example" is not allowed/);
  });

  test('a Host that is not loopback (DNS rebinding) is refused', async () => {
    const r = await api('app.info', {}, { 'x-studio-token': host.token, host: `evil.example:${host.port}`, origin: `http://evil.example:${host.port}` });
    assert.equal(r.status, 403);
  });

  test('the right token from the same origin gets the reply, by header or by ?token=', async () => {
    const r = await api('app.info', {}, { 'x-studio-token': host.token, origin: `http://127.0.0.1:${host.port}` });
    assert.equal(r.status, 200);
    const body = r.json();
    assert.equal(body.ok, true);
    const info = body.result as { host: string; home: string };
    assert.equal(info.host, 'web');
    assert.equal(info.home, home.root);
    const q = await send(host.port, 'POST', `/api/runs.list?token=${host.token}`, {}, '{}');
    assert.equal(q.status, 200);
    assert.deepEqual(q.json(), { ok: true, result: [] });
  });

  test('refusals from the services keep their field, and bad requests say what is wrong', async () => {
    const notModel = join(tmp, 'not-a-model');
    mkdirSync(notModel);
    const r = await api('models.inspect', { path: notModel });
    assert.equal(r.status, 400);
    assert.equal(r.json().error?.field, 'path');
    assert.match(r.json().error?.message ?? '', /config\.json/);
    assert.equal((await api('no.such.method', {})).status, 404);
    const bad = await send(host.port, 'POST', '/api/app.info', { 'x-studio-token': host.token }, '{not json');
    assert.equal(bad.status, 400);
    assert.match(bad.json().error?.message ?? '', /not JSON/);
    const desktop = await api('dialog.pickFolder', {});
    assert.match(desktop.json().error?.message ?? '', /only in the desktop app/);
  });

  test('settings.set with a "__proto__" key is refused like any unknown setting, and changes nothing', async () => {
    const before = (await api('settings.get', {})).json().result;
    for (const body of ['{"__proto__": {"checkpointEverySteps": 3}}', '{"checkpointEverySteps": 5, "__proto__": 1}', '{"constructor": {"prototype": {}}}']) {
      const r = await send(host.port, 'POST', '/api/settings.set', { 'x-studio-token': host.token, 'content-type': 'application/json' }, body);
      assert.equal(r.status, 400, body);
      assert.match(r.json().error?.message ?? '', /unknown setting/, body);
    }
    assert.equal((await send(host.port, 'POST', '/api/settings.set', { 'x-studio-token': host.token }, '{"colour": "blue"}')).status, 400);
    assert.deepEqual((await api('settings.get', {})).json().result, before);
    assert.equal(({} as Record<string, unknown>).checkpointEverySteps, undefined, 'no prototype was touched');
  });

  test('a body over 300 MiB gets the 413 and its message before the connection closes', async () => {
    const reply = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: host.port, method: 'POST', path: '/api/datasets.upload', headers: { host: `127.0.0.1:${host.port}`, 'x-studio-token': host.token, 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      });
      req.on('error', reject);
      // 301 MiB in 1 MiB pieces, as a browser uploading a big file would send it.
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      let sent = 0;
      const pump = (): void => {
        while (sent < 301) {
          sent++;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    assert.equal(reply.status, 413);
    assert.match((JSON.parse(reply.text) as { error: { message: string } }).error.message, /request body is over 300 MiB/);
    // And the host still answers.
    assert.equal((await api('app.info', {})).status, 200);
  });

  test('serves the built UI with the right MIME types', async () => {
    const index = await send(host.port, 'GET', '/');
    assert.equal(index.status, 200);
    assert.equal(index.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(index.body.toString(), /LoRA Studio/);
    assert.equal((await send(host.port, 'GET', '/assets/app.js')).headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal((await send(host.port, 'GET', '/assets/app.css')).headers['content-type'], 'text/css; charset=utf-8');
    assert.equal((await send(host.port, 'GET', '/assets/missing.js')).status, 404);
  });

  test('never serves a file outside the UI folder', async () => {
    for (const path of ['/../secret.txt', '/assets/../../secret.txt', '/%2e%2e/secret.txt', '/assets/%2e%2e%2f%2e%2e%2fsecret.txt', '/..%5csecret.txt', '/assets/link.txt', '/%00index.html']) {
      const r = await send(host.port, 'GET', path);
      assert.ok(r.status === 403 || r.status === 404, `${path} answered ${r.status}`);
      assert.doesNotMatch(r.body.toString(), /outside the served folder/, path);
    }
  });

  test('the event socket needs the token and the same origin, then pushes events', async () => {
    const refused = (url: string, headers: Record<string, string> = {}) =>
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(url, { headers });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => reject(new Error(`${url} was accepted`)));
        ws.on('error', () => undefined);
      });
    const base = `ws://127.0.0.1:${host.port}/events`;
    assert.equal(await refused(base), 401);
    assert.equal(await refused(`${base}?token=nope`), 403);
    assert.equal(await refused(`${base}?token=${host.token}`, { origin: 'http://evil.example' }), 403);

    const ws = new WebSocket(`${base}?token=${host.token}`, { headers: { origin: `http://127.0.0.1:${host.port}` } });
    const messages: StudioEventMessage[] = [];
    ws.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString('utf8')) as StudioEventMessage));
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () => resolve());
      ws.on('error', reject);
    });
    // Starting a run (then cancelling it) makes the services push run.updated events.
    const started = await api('runs.start', {
      config: { modelPath: SAMPLE_MODEL_DIR, datasetPath: SAMPLE_DATASET_PATH, lora: { r: 2, alpha: 4, dropout: 0, targets: ['q_proj'] }, train: { learningRate: 1e-3, steps: 1, batchSize: 1, maxSeqLen: 96 } },
    });
    assert.equal(started.status, 200, JSON.stringify(started.json()));
    const runId = (started.json().result as { id: string }).id;
    await api('runs.cancel', { id: runId });
    await host.services.whenIdle();
    const deadline = Date.now() + 5000;
    while (!messages.some((m) => m.event === 'run.updated' && (m.data as { id: string }).id === runId) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    ws.close();
    const states = messages.filter((m) => m.event === 'run.updated' && (m.data as { id: string }).id === runId).map((m) => (m.data as { state: string }).state);
    assert.equal(states[0], 'pending');
  });

  test('the adapter download is a zip of a PEFT folder, and needs the token', async () => {
    const source = join(tmp, 'trained-adapter');
    writeTestAdapter(source, SAMPLE_MODEL_DIR, 4, ['q_proj', 'v_proj', 'down_proj']);
    const adapter = new AdapterStore(home).register({ id: 'adapter-web-test', name: 'Web test / adapter', runId: null, sourceDir: source });

    assert.equal((await send(host.port, 'GET', `/download/adapter/${adapter.id}.zip`)).status, 401);
    assert.equal((await send(host.port, 'GET', `/download/adapter/no-such.zip?token=${host.token}`)).status, 404);
    assert.equal((await send(host.port, 'GET', `/download/adapter/%E0%A4%A.zip?token=${host.token}`)).status, 400, 'a malformed id is a bad request, not a crash');
    const r = await send(host.port, 'GET', `/download/adapter/${adapter.id}.zip?token=${host.token}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/zip');
    assert.match(String(r.headers['content-disposition']), /^attachment; filename="Web test - adapter\.zip"/);
    const files = unzipSync(new Uint8Array(r.body));
    assert.deepEqual(Object.keys(files).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
    const parsed = assertPeftAdapter(files, SAMPLE_MODEL_DIR);
    assert.equal(parsed.r, 4);
    assert.deepEqual(parsed.targets, ['q_proj', 'v_proj', 'down_proj']);
  });
});
