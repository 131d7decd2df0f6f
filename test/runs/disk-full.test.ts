/**
 * A checkpoint onto a full disk: the run folder sits on a real small file system (a tmpfs mount of fixed size, or a
 * loop-mounted ext2 image where tmpfs cannot be mounted), filled so that one checkpoint fits and the next does not.
 * The run must fail with a message naming the checkpoint path and the reason, the previous checkpoint must be
 * intact (same bytes, loadable), nothing half-written may be left, and after space is freed the run resumes from
 * that checkpoint and completes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { RunConfigInput, RunSummary, StudioEventMessage } from '../../common/protocol.ts';
import { readHfConfig } from '../../engine/io/hf-config.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { loadCheckpoint } from '../../engine/train/checkpoint.ts';
import { openHome } from '../../host/services/home.ts';
import { createStudioServices, type StudioServices } from '../../host/services/studio-services.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lora-diskfull-'));
const mounted: string[] = [];
const opened: StudioServices[] = [];
after(async () => {
  for (const s of opened) await s.close();
  for (const m of mounted.reverse()) execFileSync('umount', ['-l', m]);
  rmSync(tmp, { recursive: true, force: true });
});

/** Mounts a file system of `bytes` at dir: tmpfs if allowed, else an ext2 image on a loop device. Says why when neither works. */
function mountSmall(dir: string, bytes: number): string {
  const tries: string[] = [];
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'pipe' });
    mounted.push(dir);
    return 'tmpfs';
  } catch (e) {
    tries.push(`tmpfs: ${(e as { stderr?: Buffer }).stderr?.toString().trim() || String(e)}`);
  }
  try {
    const image = join(tmp, 'small.img');
    writeFileSync(image, Buffer.alloc(bytes));
    execFileSync('mkfs.ext2', ['-q', '-F', image], { stdio: 'pipe' });
    execFileSync('mount', ['-o', 'loop', image, dir], { stdio: 'pipe' });
    mounted.push(dir);
    return 'ext2 on a loop device';
  } catch (e) {
    tries.push(`loop: ${(e as { stderr?: Buffer }).stderr?.toString().trim() || String(e)}`);
  }
  throw new Error(`this test needs a small real file system and could mount none (it must run as root with mount allowed): ${tries.join('; ')}`);
}

/** Fills the file system at dir until about `leave` bytes are free. */
function fillLeaving(dir: string, leave: number): void {
  const st = statfsSync(dir);
  const free = Number(st.bavail) * Number(st.bsize);
  assert.ok(free > leave, `only ${free} bytes free on ${dir}`);
  writeFileSync(join(dir, 'filler.bin'), Buffer.alloc(free - leave));
}

function waitFor(s: StudioServices, until: (m: StudioEventMessage) => boolean, what: string, ms = 120_000): Promise<StudioEventMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${what}`));
    }, ms);
    const off = s.onEvent((m) => {
      if (!until(m)) return;
      clearTimeout(timer);
      off();
      resolve(m);
    });
  });
}

test('a checkpoint onto a full disk fails the run naming the path and why; the previous checkpoint survives', async () => {
  const home = openHome(join(tmp, 'home'));
  const how = mountSmall(home.runs, 1024 * 1024);
  // One checkpoint of this run takes ~9 pages (33 KB); leave room for exactly one.
  fillLeaving(home.runs, 60 * 1024);

  const s = createStudioServices({ home, host: 'web' });
  opened.push(s);
  const config: RunConfigInput = {
    modelPath: SAMPLE_MODEL_DIR,
    datasetPath: SAMPLE_DATASET_PATH,
    lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'] },
    train: { learningRate: 3e-3, steps: 40, batchSize: 2, maxSeqLen: 96, checkpointEverySteps: 3 },
  };
  const firstCheckpoint = waitFor(s, (m) => m.event === 'run.log' && /^checkpoint at step 3:/.test((m.data as { message: string }).message), 'the first checkpoint');
  const run = await s.handle('runs.start', { config });
  const runDir = join(home.runs, run.id);
  const ckDir = join(runDir, 'checkpoints');
  await firstCheckpoint;
  // Its bytes now, while training goes on.
  const step3 = join(ckDir, 'step-3');
  const files = readdirSync(step3).sort();
  const before = new Map(files.map((f) => [f, readFileSync(join(step3, f))]));
  await s.whenIdle();

  const failed = await s.handle('runs.get', { id: run.id });
  assert.equal(failed.state, 'failed', `on ${how}`);
  assert.equal(failed.checkpointStep, 3);
  const message = failed.error ?? '';
  assert.ok(message.includes(`cannot write the checkpoint ${join(ckDir, 'step-6')}`), message);
  assert.match(message, /the disk is full \(ENOSPC: no space left on device\)/);
  assert.ok(message.includes(`the previous checkpoint ${step3} is intact`), message);
  assert.ok(failed.step >= 6 && failed.step < 9, `failed at the step-6 checkpoint, step ${failed.step}`);

  // The previous checkpoint: same files, same bytes, and it loads.
  assert.deepEqual(readdirSync(ckDir), ['step-3'], 'nothing half-written is left next to it');
  assert.deepEqual(readdirSync(step3).sort(), files);
  for (const f of files) assert.ok(readFileSync(join(step3, f)).equals(before.get(f)!), `${f} changed`);
  const ck = loadCheckpoint(step3, readHfConfig(SAMPLE_MODEL_DIR));
  assert.equal(ck.state.step, 3);
  const events = await s.handle('runs.events', { id: run.id });
  assert.ok(events.some((e) => e.level === 'error' && e.message.includes('ENOSPC')), 'the event log says why');

  // Free the space: the run resumes from step 3 and completes.
  rmSync(join(home.runs, 'filler.bin'));
  const resumed = await s.handle('runs.resume', { id: run.id });
  assert.ok(resumed.state === 'queuing' || resumed.state === 'executing', resumed.state);
  await s.whenIdle();
  const done: RunSummary = await s.handle('runs.get', { id: run.id });
  assert.equal(done.state, 'completed', done.error ?? '');
  assert.equal(done.resumeCount, 1);
  const metrics = await s.handle('runs.metrics', { id: run.id });
  assert.deepEqual(metrics.map((p) => p.step), Array.from({ length: 40 }, (_, i) => i + 1));
  assert.ok(existsSync(join(runDir, 'adapter', 'adapter_model.safetensors')));
});
