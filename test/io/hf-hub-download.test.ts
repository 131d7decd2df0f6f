/**
 * Downloads from the Hugging Face Hub's HTTP API into the HF cache layout, against a local server speaking that API
 * (test/helpers/hub-server.ts; no test reaches the internet): the layout huggingface_hub itself reads back
 * (scan_cache_dir, try_to_load_from_cache, transformers' AutoConfig offline) and our discovery lists as trainable;
 * resume after a cut connection with a Range request; 401/403/404 named; a cancel that leaves only .incomplete;
 * the services' job events and the CLI; two processes pulling one model (the second waits on the first's lock, and a
 * dead owner's lock is taken over).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { StudioEventMessage } from '../../common/protocol.ts';
import { discoverModels } from '../../engine/io/model-discovery.ts';
import { HubPullError, pullFromHub, type HubPullProgress } from '../../engine/io/hf-hub-download.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import { pythonPath, repoRoot } from '../helpers/python.ts';
import { startHubServer, type HubServer } from '../helpers/hub-server.ts';
import { tempStudios } from '../helpers/temp-studio.ts';

const COMMIT = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const GGUF_COMMIT = 'f0e1d2c3b4a5968778695a4b3c2d1e0f12345678';
const tmp = mkdtempSync(join(tmpdir(), 'hub-pull-'));
let server: HubServer;
let sampleFiles: Record<string, Buffer> = {};
const gguf = randomBytes(300_000);

before(async () => {
  const dir = (await ensureSample()).modelDir;
  sampleFiles = Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
  const files = { ...sampleFiles, 'README.md': Buffer.from('# tiny\n'), 'pytorch_model.bin': Buffer.from('not fetched'), 'onnx/model.onnx': Buffer.from('not fetched') };
  server = await startHubServer(
    {
      'studio-tests/tiny': { commit: COMMIT, files },
      'studio-tests/tiny-gated': { commit: COMMIT, files, access: 'gated' },
      'studio-tests/tiny-private': { commit: COMMIT, files, access: 'private' },
      'studio-tests/tiny-GGUF': { commit: GGUF_COMMIT, files: { 'tiny.Q4_0.gguf': gguf, 'tiny.Q8_0.gguf': gguf.subarray(0, 1000), 'Q2_K/tiny.Q2_K.gguf': gguf.subarray(0, 2000), 'README.md': Buffer.from('#') } },
      'studio-tests/evil': { commit: GGUF_COMMIT, files: { '../../../escape.gguf': gguf.subarray(0, 10) } },
    },
    ['hf_good_token'],
  );
});
after(async () => {
  await server.close();
  rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
/** A fresh cache and environment: HF_ENDPOINT at the local server, no token anywhere. */
function envFor(extra: Record<string, string> = {}): Record<string, string> {
  const hub = join(tmp, `hub-${++n}`);
  return { HF_ENDPOINT: server.endpoint, HF_HUB_CACHE: hub, HF_HOME: join(tmp, `hf-home-${n}`), ...extra };
}

async function refused(p: Promise<unknown>): Promise<HubPullError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof HubPullError, `expected a HubPullError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a refusal');
}

function runPython(code: string, env: Record<string, string>): string {
  // Offline: these checks read the cache only (a synchronous child would stall this process's server anyway).
  const r = spawnSync(pythonPath(), ['-c', code], { encoding: 'utf8', env: { ...process.env, ...env, HF_HUB_OFFLINE: '1' }, timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('a pull writes the HF cache layout huggingface_hub and transformers read, and discovery lists it as trainable', async () => {
  const env = envFor();
  const progress: HubPullProgress[] = [];
  const r = await pullFromHub({ repo: 'studio-tests/tiny' }, { env, onProgress: (p) => progress.push(p) });
  const repoDir = join(env.HF_HUB_CACHE!, 'models--studio-tests--tiny');
  assert.equal(r.commit, COMMIT);
  assert.equal(r.path, join(repoDir, 'snapshots', COMMIT));
  assert.deepEqual(r.files.sort(), Object.keys(sampleFiles).sort(), 'the model files only: no README, .bin or subfolder');
  assert.equal(readFileSync(join(repoDir, 'refs', 'main'), 'utf8'), COMMIT);
  for (const f of r.files) {
    const pointer = join(r.path, f);
    assert.ok(lstatSync(pointer).isSymbolicLink(), `${f} is a link into blobs/`);
    assert.match(readlinkSync(pointer), /^\.\.[/\\]\.\.[/\\]blobs[/\\][0-9a-f]{40,64}$/);
    assert.deepEqual(readFileSync(pointer), sampleFiles[f]);
  }
  assert.ok(!readdirSync(join(repoDir, 'blobs')).some((b) => b.endsWith('.incomplete')));
  // Progress: every file, ending at the total.
  const last = progress.at(-1)!;
  const total = Object.values(sampleFiles).reduce((s, b) => s + b.length, 0);
  assert.equal(last.total, total);
  assert.equal(last.bytes, total);
  assert.deepEqual([...new Set(progress.map((p) => p.file))].sort(), r.files.sort());
  assert.equal(r.downloadedBytes, total);
  // huggingface_hub and transformers, offline, see the same files.
  const out = runPython(
    [
      'import json, os',
      'from huggingface_hub import scan_cache_dir, try_to_load_from_cache',
      'from transformers import AutoConfig',
      'info = scan_cache_dir(os.environ["HF_HUB_CACHE"])',
      'repo = [r for r in info.repos if r.repo_id == "studio-tests/tiny"][0]',
      'rev = list(repo.revisions)[0]',
      'cfg = AutoConfig.from_pretrained("studio-tests/tiny", cache_dir=os.environ["HF_HUB_CACHE"], local_files_only=True)',
      'print(json.dumps({"warnings": [str(w) for w in info.warnings], "commit": rev.commit_hash, "refs": sorted(rev.refs), "files": sorted(f.file_name for f in rev.files), "config": try_to_load_from_cache("studio-tests/tiny", "config.json", cache_dir=os.environ["HF_HUB_CACHE"]), "layers": cfg.num_hidden_layers}))',
    ].join('\n'),
    env,
  );
  const py = JSON.parse(out) as { warnings: string[]; commit: string; refs: string[]; files: string[]; config: string; layers: number };
  assert.deepEqual(py.warnings, []);
  assert.equal(py.commit, COMMIT);
  assert.deepEqual(py.refs, ['main']);
  assert.deepEqual(py.files, r.files.sort());
  assert.equal(py.config, join(r.path, 'config.json'));
  assert.equal(py.layers, (JSON.parse(sampleFiles['config.json']!.toString('utf8')) as { num_hidden_layers: number }).num_hidden_layers);
  const found = discoverModels({ env, home: join(tmp, 'nohome') }).models.find((m) => m.name === 'studio-tests/tiny');
  assert.ok(found, 'discovery lists the pulled model');
  assert.equal(found.problem, undefined);
  assert.equal(found.path, r.path);
  // Pulling again fetches nothing.
  const again = await pullFromHub({ repo: 'studio-tests/tiny' }, { env });
  assert.equal(again.downloadedBytes, 0);
});

test('one chosen .gguf of a GGUF repo; a missing one names the ones there are', async () => {
  const env = envFor();
  const r = await pullFromHub({ repo: 'studio-tests/tiny-GGUF', file: 'tiny.Q4_0.gguf' }, { env });
  assert.deepEqual(r.files, ['tiny.Q4_0.gguf']);
  assert.equal(r.path, join(env.HF_HUB_CACHE!, 'models--studio-tests--tiny-GGUF', 'snapshots', GGUF_COMMIT, 'tiny.Q4_0.gguf'));
  assert.deepEqual(readFileSync(r.path), gguf);
  // The blob is named by its sha256, as the Hub's X-Linked-Etag says for LFS files.
  assert.ok(existsSync(join(env.HF_HUB_CACHE!, 'models--studio-tests--tiny-GGUF', 'blobs', (await import('node:crypto')).createHash('sha256').update(gguf).digest('hex'))));
  const e = await refused(pullFromHub({ repo: 'studio-tests/tiny-GGUF', file: 'tiny.Q2_K.gguf' }, { env }));
  assert.equal(e.message, 'studio-tests/tiny-GGUF has no file tiny.Q2_K.gguf; its GGUF files: tiny.Q4_0.gguf, tiny.Q8_0.gguf, Q2_K/tiny.Q2_K.gguf');
  const whole = await refused(pullFromHub({ repo: 'studio-tests/tiny-GGUF' }, { env }));
  assert.match(whole.message, /holds GGUF files, not a transformers model: choose one \(tiny\.Q4_0\.gguf, tiny\.Q8_0\.gguf, Q2_K\/tiny\.Q2_K\.gguf\)/);
  // One in a sub-folder: linked from snapshots/<commit>/Q2_K/ back to the blob, as huggingface_hub links it.
  const sub = await pullFromHub({ repo: 'studio-tests/tiny-GGUF', file: 'Q2_K/tiny.Q2_K.gguf' }, { env });
  assert.equal(sub.path, join(env.HF_HUB_CACHE!, 'models--studio-tests--tiny-GGUF', 'snapshots', GGUF_COMMIT, 'Q2_K', 'tiny.Q2_K.gguf'));
  assert.match(readlinkSync(sub.path), /^\.\.[/\\]\.\.[/\\]\.\.[/\\]blobs[/\\][0-9a-f]{64}$/);
  assert.deepEqual(readFileSync(sub.path), gguf.subarray(0, 2000));
  // A server listing a name that climbs out of the snapshot is refused before anything is written.
  const evil = await refused(pullFromHub({ repo: 'studio-tests/evil', file: '../../../escape.gguf' }, { env }));
  assert.match(evil.message, /lists the file name "\.\.\/\.\.\/\.\.\/escape\.gguf", which is not a plain path inside the repository/);
  assert.ok(!existsSync(join(env.HF_HUB_CACHE!, 'escape.gguf')) && !existsSync(join(env.HF_HUB_CACHE!, '..', 'escape.gguf')));
});

test('a cut connection keeps the part as .incomplete, never as the blob, and the next pull resumes it with a Range request', async () => {
  const env = envFor();
  server.holdOnce('model.safetensors', 20_000);
  let cut = false;
  const pulling = pullFromHub({ repo: 'studio-tests/tiny' }, {
    env,
    onProgress: (p) => {
      // Dropped once some of the file is on disk.
      if (!cut && p.file === 'model.safetensors' && p.fileBytes > 0) {
        cut = true;
        server.cut();
      }
    },
  });
  const e = await refused(pulling);
  assert.match(e.message, /the connection broke while fetching model\.safetensors|model\.safetensors ended at/);
  assert.match(e.message, /pull again to resume/);
  const blobs = join(env.HF_HUB_CACHE!, 'models--studio-tests--tiny', 'blobs');
  const partial = readdirSync(blobs).filter((b) => b.endsWith('.incomplete'));
  assert.equal(partial.length, 1);
  const kept = lstatSync(join(blobs, partial[0]!)).size;
  assert.ok(kept > 0 && kept < sampleFiles['model.safetensors']!.length, `kept ${kept} bytes`);
  assert.ok(!existsSync(join(blobs, partial[0]!.replace(/\.incomplete$/, ''))), 'no blob under the final name');
  assert.ok(!existsSync(join(env.HF_HUB_CACHE!, 'models--studio-tests--tiny', 'snapshots', COMMIT, 'model.safetensors')), 'no link to a half file');
  const alreadyComplete = readdirSync(blobs).filter((b) => !b.endsWith('.incomplete')).reduce((sum, b) => sum + lstatSync(join(blobs, b)).size, 0);
  const before = server.seen.length;
  const r = await pullFromHub({ repo: 'studio-tests/tiny' }, { env });
  // The Range goes to the resolve URL and, through its redirect, to the LFS storage that sends the bytes.
  const ranges = server.seen.slice(before).filter((s) => s.method === 'GET' && s.range && s.path.startsWith('/lfs/'));
  assert.deepEqual(ranges.map((s) => s.range), [`bytes=${kept}-`]);
  assert.deepEqual(readFileSync(join(r.path, 'model.safetensors')), sampleFiles['model.safetensors']);
  assert.equal(r.downloadedBytes, Object.values(sampleFiles).reduce((sum, b) => sum + b.length, 0) - kept - alreadyComplete, 'only the missing bytes travel');
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const childScript = join(repoRoot, 'test/io/hub-pull-child.ts');

test('two processes pulling one model at once: one fetches each blob, the other waits on its lock and finds it whole', async () => {
  const env = envFor();
  server.holdOnce('model.safetensors', 20_000);
  const before = server.seen.length;
  const lfsGets = () => server.seen.slice(before).filter((x) => x.method === 'GET' && x.path.startsWith('/lfs/'));
  const child = spawn(process.execPath, ['--import', 'tsx', childScript, 'studio-tests/tiny'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  // The child is part-way through model.safetensors (the server holds the rest).
  for (const end = Date.now() + 60_000; lfsGets().length === 0; await sleep(50)) if (Date.now() > end) assert.fail(`the child never fetched the weights: ${err}`);
  const locks = join(env.HF_HUB_CACHE!, '.locks', 'models--studio-tests--tiny');
  assert.ok(readdirSync(locks).some((f) => f.endsWith('.lora-studio.lock')), 'the child holds the blob\'s lock');
  // This process pulls the same model meanwhile: it waits on the lock instead of appending to the same part.
  let settled = false;
  const mine = pullFromHub({ repo: 'studio-tests/tiny' }, { env }).finally(() => (settled = true));
  await sleep(1000);
  assert.equal(settled, false, 'the second pull waits while the first fetches');
  assert.equal(lfsGets().length, 1, 'the weights are requested once');
  server.release();
  assert.equal(await exited, 0, err);
  const r = await mine;
  assert.equal(lfsGets().length, 1, 'still once: the waiter found the blob whole');
  assert.equal(r.downloadedBytes, 0, 'the waiter fetched nothing');
  assert.deepEqual(readFileSync(join(r.path, 'model.safetensors')), sampleFiles['model.safetensors']);
  assert.equal((JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { commit?: string }).commit, r.commit);
  assert.deepEqual(readdirSync(locks).filter((f) => f.endsWith('.lora-studio.lock')), [], 'no lock left behind');
});

test('a lock left by a process that died mid-download is taken over', async () => {
  const env = envFor();
  const dead = spawnSync(process.execPath, ['-e', '']).pid; // exited: nothing runs under this pid now
  const etag = createHash('sha256').update(sampleFiles['model.safetensors']!).digest('hex');
  const locks = join(env.HF_HUB_CACHE!, '.locks', 'models--studio-tests--tiny');
  mkdirSync(locks, { recursive: true });
  writeFileSync(join(locks, `${etag}.lora-studio.lock`), JSON.stringify({ pid: dead, host: hostname(), since: new Date().toISOString() }));
  const r = await pullFromHub({ repo: 'studio-tests/tiny' }, { env });
  assert.deepEqual(readFileSync(join(r.path, 'model.safetensors')), sampleFiles['model.safetensors']);
  assert.deepEqual(readdirSync(locks), [], 'the stale lock is gone');
});

test('401 without a token, 403 with a token refused for a gated repo, 404 for a missing repo, each named; a good token downloads', async () => {
  const env = envFor();
  const gated = await refused(pullFromHub({ repo: 'studio-tests/tiny-gated' }, { env }));
  assert.match(gated.message, /^studio-tests\/tiny-gated is a gated repository: Hugging Face answered 401 without a token\. Accept its terms at http:\/\/127\.0\.0\.1:\d+\/studio-tests\/tiny-gated, then give a token/);
  assert.equal(gated.field, 'token');
  const wrong = await refused(pullFromHub({ repo: 'studio-tests/tiny-gated' }, { env, token: 'hf_wrong' }));
  assert.match(wrong.message, /is a gated repository and your Hugging Face token has no access to it yet/);
  const priv = await refused(pullFromHub({ repo: 'studio-tests/tiny-private' }, { env }));
  assert.match(priv.message, /^Hugging Face answered 401 for studio-tests\/tiny-private: the repository is private or gated, or does not exist/);
  const missing = await refused(pullFromHub({ repo: 'studio-tests/nope' }, { env, token: 'hf_good_token' }));
  assert.match(missing.message, /^studio-tests\/nope was not found on http:\/\/127\.0\.0\.1:\d+ \(404\): check the name/);
  assert.equal(missing.field, 'repo');
  const badId = await refused(pullFromHub({ repo: 'just-a-name' }, { env }));
  assert.match(badId.message, /is not a Hugging Face model id: write it as org\/name/);
  // HF_TOKEN is sent as a bearer token, as huggingface_hub sends it.
  const before = server.seen.length;
  const ok = await pullFromHub({ repo: 'studio-tests/tiny-gated' }, { env: { ...env, HF_TOKEN: 'hf_good_token' } });
  assert.ok(server.seen.slice(before).every((s) => s.path.startsWith('/lfs/') || s.authorization === 'Bearer hf_good_token'));
  assert.equal(ok.commit, COMMIT);
});

test('the models.pull service: progress and ended events; a cancel leaves only the .incomplete part; the CLI pulls and names a 404', async () => {
  const env = envFor();
  const saved = { ...process.env };
  Object.assign(process.env, env);
  const { services } = tempStudios('hub-pull-services-');
  const studio = services('a');
  const events: StudioEventMessage[] = [];
  studio.onEvent((m) => events.push(m));
  const ended = (jobId: string): Promise<StudioEventMessage<'models.pullEnded'>> =>
    new Promise((resolve) => {
      const check = (): boolean => {
        const e = events.find((m) => m.event === 'models.pullEnded' && (m.data as { jobId: string }).jobId === jobId);
        if (e) resolve(e as StudioEventMessage<'models.pullEnded'>);
        return !!e;
      };
      if (check()) return;
      const off = studio.onEvent(() => check() && off());
    });
  try {
    // Cancel while model.safetensors is held part-way.
    server.holdOnce('model.safetensors', 10_000);
    const { jobId } = await studio.handle('models.pull', { repo: 'studio-tests/tiny' });
    await new Promise<void>((resolve) => {
      const off = studio.onEvent((m) => {
        if (m.event === 'models.pullProgress' && (m.data as { file: string; fileBytes: number }).file === 'model.safetensors' && (m.data as { fileBytes: number }).fileBytes > 0) {
          off();
          resolve();
        }
      });
    });
    const again = await studio.handle('models.pull', { repo: 'studio-tests/tiny' }).catch((e: Error) => e);
    assert.match(String((again as Error).message), /already being downloaded/);
    assert.deepEqual(await studio.handle('models.pullCancel', { jobId }), { cancelled: true });
    const end = await ended(jobId);
    assert.equal(end.data.cancelled, true);
    assert.equal(end.data.result, null);
    assert.match(end.data.error!.message, /download cancelled; the part fetched stays in .*\.incomplete/);
    const repoDir = join(env.HF_HUB_CACHE!, 'models--studio-tests--tiny');
    const blobs = readdirSync(join(repoDir, 'blobs'));
    const partial = blobs.filter((b) => b.endsWith('.incomplete'));
    assert.equal(partial.length, 1);
    assert.ok(!blobs.includes(partial[0]!.replace(/\.incomplete$/, '')), 'the half file is never under its final name');
    assert.ok(!existsSync(join(repoDir, 'snapshots', COMMIT, 'model.safetensors')));
    assert.ok(!existsSync(join(repoDir, 'refs', 'main')), 'no ref to an unfinished snapshot');
    server.release();
    // Pulled again through the services: it completes (resuming) and the ended event carries the path.
    const second = await studio.handle('models.pull', { repo: 'studio-tests/tiny' });
    const done = await ended(second.jobId);
    assert.equal(done.data.error, null);
    assert.equal(done.data.result!.path, join(repoDir, 'snapshots', COMMIT));
    const progress = events.filter((m) => m.event === 'models.pullProgress' && (m.data as { jobId: string }).jobId === second.jobId);
    assert.ok(progress.length >= Object.keys(sampleFiles).length);
    // A field error comes back at once.
    await assert.rejects(studio.handle('models.pull', { repo: '' }), /type a Hugging Face model id/);
  } finally {
    for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k];
    Object.assign(process.env, saved);
  }
  // The CLI, as a separate process against the same server (spawned asynchronously: this process serves it).
  const cli = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [join(repoRoot, 'bin/lora-studio.mjs'), 'models', 'pull', ...args], { env: { PATH: process.env.PATH ?? '', HOME: join(tmp, 'cli-home'), LORA_STUDIO_FROM_SOURCE: '1', ...envFor() }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  const ok = await cli(['studio-tests/tiny-GGUF', '--file', 'tiny.Q4_0.gguf']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /models--studio-tests--tiny-GGUF[/\\]snapshots[/\\]f0e1d2c3b4a5968778695a4b3c2d1e0f12345678[/\\]tiny\.Q4_0\.gguf/);
  const missing = await cli(['studio-tests/nope']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^lora-studio: Hugging Face answered 401 for studio-tests\/nope: the repository is private or gated, or does not exist/m);
});

