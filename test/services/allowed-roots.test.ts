/**
 * The web host's allowed roots (host/services/allowed-roots.ts), over real HTTP: a path outside the studio's
 * folders is refused with a message naming it and how to allow it — reading (/etc/passwd through datasets.inspect,
 * any model path) and writing (adapters.saveAs into a folder elsewhere, also through a link inside the home) — and
 * `--allow DIR` admits exactly that folder. The desktop services keep the user's own file access.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { z } from 'zod';
import { REQUEST_PARAM_SCHEMAS } from '../../common/request-schemas.ts';
import { RunConfigSchema } from '../../common/run-config.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { AdapterStore } from '../../host/services/adapter-store.ts';
import { PATH_FIELDS } from '../../host/services/allowed-roots.ts';
import { openHome, type StudioHome } from '../../host/services/home.ts';
import { createStudioServices } from '../../host/services/studio-services.ts';
import { startWebHost, type WebHost } from '../../host/web-host.ts';
import { writeTestAdapter } from '../helpers/peft-folder.ts';

// Outside every root: not the temp folder other tests allow, not the home, not a cache.
const outside = mkdtempSync('/var/tmp/lora-outside-');
const homeParent = mkdtempSync('/var/tmp/lora-roots-home-');
const hosts: WebHost[] = [];
after(async () => {
  for (const h of hosts) await h.close();
  rmSync(outside, { recursive: true, force: true });
  rmSync(homeParent, { recursive: true, force: true });
});

let home: StudioHome;
const adapterId = 'adapter-roots-test';
before(() => {
  home = openHome(join(homeParent, 'home'));
  const source = join(homeParent, 'source-adapter');
  writeTestAdapter(source, SAMPLE_MODEL_DIR);
  new AdapterStore(home).register({ id: adapterId, name: 'roots test', runId: null, sourceDir: source });
  mkdirSync(join(outside, 'data'));
  writeFileSync(join(outside, 'data', 'chat.jsonl'), `${JSON.stringify({ text: 'hello there, this is a line of text' })}\n`);
  mkdirSync(join(outside, 'save-here'));
});

async function startHost(allow: string[] = []): Promise<{ call: (method: string, params: unknown) => Promise<{ status: number; ok: boolean; message: string; field?: string; result?: unknown }> }> {
  const host = await startWebHost({ home: home.root, port: 0, allow });
  hosts.push(host);
  return {
    async call(method, params) {
      const r = await fetch(`http://127.0.0.1:${host.port}/api/${method}`, { method: 'POST', headers: { 'x-studio-token': host.token, 'content-type': 'application/json' }, body: JSON.stringify(params) });
      const body = (await r.json()) as { ok: boolean; result?: unknown; error?: { message: string; field?: string } };
      return { status: r.status, ok: body.ok, message: body.error?.message ?? '', field: body.error?.field, result: body.result };
    },
  };
}

test('outside the roots: /etc/passwd, a model path and saveAs are refused, naming the path and --allow', async () => {
  const { call } = await startHost();
  const passwd = await call('datasets.inspect', { path: '/etc/passwd' });
  assert.equal(passwd.status, 400);
  assert.equal(passwd.field, 'path');
  assert.ok(passwd.message.startsWith('/etc/passwd is outside the folders this web studio may use ('), passwd.message);
  assert.ok(passwd.message.includes(home.root), passwd.message);
  assert.ok(passwd.message.endsWith('start the studio with: lora-studio serve --allow /etc'), passwd.message);
  assert.ok(!JSON.stringify(passwd).includes('root:x:0'), 'nothing of the file comes back');

  const data = await call('datasets.inspect', { path: join(outside, 'data', 'chat.jsonl'), modelPath: SAMPLE_MODEL_DIR });
  assert.equal(data.status, 400);
  assert.ok(data.message.endsWith(`--allow ${join(outside, 'data')}`), data.message);
  const model = await call('models.inspect', { path: '/usr/share' });
  assert.equal(model.status, 400);
  assert.match(model.message, /^\/usr\/share is outside/);
  const nested = await call('runs.start', { config: { modelPath: SAMPLE_MODEL_DIR, datasetPath: SAMPLE_DATASET_PATH, data: { validationPath: '/etc/hostname' }, lora: { r: 2, alpha: 4, dropout: 0, targets: ['q_proj'] }, train: { learningRate: 1e-3, steps: 1, batchSize: 1, maxSeqLen: 32 } } });
  assert.equal(nested.status, 400);
  assert.equal(nested.field, 'config.data.validationPath');
  // The Playground's second adapter, side by side with the first (it was not confined before this test's schema walk).
  const compare = await call('generate.start', { modelPath: SAMPLE_MODEL_DIR, adapterPath: join(home.root, 'adapters', adapterId), compareAdapterPath: join(outside, 'data'), prompt: 'hi', promptFormat: 'raw', maxNewTokens: 1, temperature: 0, topP: 1, seed: 1, backend: 'cpu' });
  assert.equal(compare.status, 400);
  assert.equal(compare.field, 'compareAdapterPath');

  const save = await call('adapters.saveAs', { id: adapterId, destination: join(outside, 'save-here') });
  assert.equal(save.status, 400);
  assert.equal(save.field, 'destination');
  assert.ok(save.message.endsWith(`--allow ${join(outside, 'save-here')}`), save.message);
  assert.deepEqual(readdirSync(join(outside, 'save-here')), [], 'nothing was written');

  // A link inside the home leads out of it: refused too.
  symlinkSync(join(outside, 'save-here'), join(home.root, 'escape'));
  const viaLink = await call('adapters.saveAs', { id: adapterId, destination: join(home.root, 'escape') });
  assert.equal(viaLink.status, 400, viaLink.message);
  assert.deepEqual(readdirSync(join(outside, 'save-here')), []);
  rmSync(join(home.root, 'escape'));
});

test('a relative path is refused as relative, even where the server’s own folder is allowed', async () => {
  const { call } = await startHost([]);
  const before = process.cwd();
  process.chdir(home.root); // resolved against the server's folder it would land inside the home
  try {
    const save = await call('adapters.saveAs', { id: adapterId, destination: 'relative/out' });
    assert.equal(save.status, 400);
    assert.equal(save.field, 'destination');
    assert.equal(save.message, 'choose a full path (got the relative path "relative/out", which the web studio would take relative to its own folder, not yours)');
    assert.equal(existsSync(join(home.root, 'relative')), false, 'nothing was written');
    // A hub id for adapters.import is not a path and still goes to the hub-cache lookup.
    const hub = await call('adapters.import', { path: 'some-org/some-adapter' });
    assert.ok(!hub.message.startsWith('choose a full path'), hub.message);
  } finally {
    process.chdir(before);
  }
});

test('inside the roots, and with --allow DIR: the same requests work', async () => {
  const plain = await startHost();
  assert.equal((await plain.call('models.inspect', { path: SAMPLE_MODEL_DIR })).status, 200, 'the sample is allowed');
  const inHome = await plain.call('adapters.saveAs', { id: adapterId, destination: home.datasets });
  assert.equal(inHome.status, 200, inHome.message);

  const { call } = await startHost([join(outside, 'data'), join(outside, 'save-here')]);
  const data = await call('datasets.inspect', { path: join(outside, 'data', 'chat.jsonl'), modelPath: SAMPLE_MODEL_DIR });
  assert.equal(data.status, 200, data.message);
  const save = await call('adapters.saveAs', { id: adapterId, destination: join(outside, 'save-here') });
  assert.equal(save.status, 200, save.message);
  assert.ok(existsSync(join((save.result as { path: string }).path, 'adapter_model.safetensors')));
  // Only what was allowed: a sibling folder is still refused.
  assert.equal((await call('datasets.inspect', { path: '/etc/passwd' })).status, 400);
});

test('the desktop services keep the user’s own file access', async () => {
  const desktop = createStudioServices({ home: join(homeParent, 'desktop-home'), host: 'electron' });
  try {
    const summary = await desktop.handle('datasets.inspect', { path: join(outside, 'data', 'chat.jsonl'), modelPath: SAMPLE_MODEL_DIR });
    assert.ok(summary.records >= 1);
  } finally {
    await desktop.close();
  }
});

test('lora-studio serve --allow: repeatable, each an existing folder, and named at start', async () => {
  const { spawn } = await import('node:child_process');
  const bin = join(import.meta.dirname, '..', '..', 'bin', 'lora-studio.mjs');
  const env = { ...process.env, LORA_STUDIO_HOME: join(homeParent, 'cli-home'), LORA_STUDIO_FROM_SOURCE: '1' };
  const run = (args: string[], until: RegExp | null): Promise<{ code: number | null; out: string }> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, [bin, 'serve', '--port', '0', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      const onData = (c: Buffer): void => {
        out += c.toString();
        if (until && until.test(out)) p.kill('SIGTERM');
      };
      p.stdout.on('data', onData);
      p.stderr.on('data', onData);
      p.on('exit', (code) => resolve({ code, out }));
    });
  const missing = await run(['--allow', '/no/such/folder'], null);
  assert.equal(missing.code, 1);
  assert.match(missing.out, /--allow \/no\/such\/folder: no such folder/);
  const ok = await run(['--allow', join(outside, 'data'), '--allow', join(outside, 'save-here')], /press Ctrl\+C/);
  assert.ok(ok.out.includes(`and ${join(outside, 'data')}, ${join(outside, 'save-here')} (add folders with --allow DIR)`), ok.out);
});

/** Every string field of a zod schema, by name (objects, arrays, optional/nullable/default wrappers, pipes, unions). */
function stringFields(schema: z.ZodType, out: Set<string>, key = '', depth = 0): Set<string> {
  const def = schema.def as unknown as Record<string, unknown> & { type: string };
  if (depth > 12) return out;
  const walk = (s: unknown, k = key) => stringFields(s as z.ZodType, out, k, depth + 1);
  if (def.type === 'string' && key) out.add(key);
  else if (def.type === 'object') for (const [k, v] of Object.entries((schema as z.ZodObject).shape)) walk(v, k);
  else if (def.type === 'array') walk(def.element);
  else if (def.type === 'union') for (const o of def.options as unknown[]) walk(o);
  else if (def.type === 'pipe') {
    walk(def.in);
    walk(def.out);
  }
  else if ('innerType' in def) walk(def.innerType);
  return out;
}

test('every request field that names a file or folder is one the web host confines', () => {
  // runs.start's config is checked by the run manager (a z.custom in the request schemas): walk its own schema too.
  const fields = stringFields(RunConfigSchema, new Set());
  for (const schema of Object.values(REQUEST_PARAM_SCHEMAS)) stringFields(schema as z.ZodType, fields);
  // Text fields whose names look like paths but are not on the services' disk.
  const NOT_PATHS: Record<string, string> = {
    fileName: "datasets.upload: the uploaded file's name, kept as a base name under the studio home",
    file: 'models.pull: a file inside the Hugging Face repo, not on this machine',
  };
  const looksLikePath = (k: string) => /path|dir|folder|file|destination/i.test(k);
  for (const k of fields) {
    if (!looksLikePath(k) || k in NOT_PATHS) continue;
    assert.ok(PATH_FIELDS.has(k), `the request field "${k}" looks like a path but allowed-roots.ts PATH_FIELDS does not confine it`);
  }
  for (const k of PATH_FIELDS) assert.ok(fields.has(k), `PATH_FIELDS names "${k}", which no request schema has`);
  for (const k of Object.keys(NOT_PATHS)) assert.ok(fields.has(k), `NOT_PATHS names "${k}", which no request schema has`);
});
