/**
 * kill -9 of a studio mid-run: a child process runs the studio services and trains the sample model with
 * checkpoints; it is SIGKILLed after a checkpoint, some steps later. A second studio on the same data folder finds
 * the interrupted run, resumes it from that checkpoint and completes it. On the cpu backend the result must be
 * bit-identical to a run that was never interrupted: the adapter's bytes and every stored metric (loss, learning
 * rate, tokens, gradient norm) — with each step stored exactly once.
 */
import assert from 'node:assert/strict';
import { listCheckpoints } from '../../engine/train/checkpoint.ts';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import type { MetricPoint, RunConfigInput } from '../../common/protocol.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { openStudioDb, type RunRecord } from '../../host/services/db.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lora-crash-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const child = fileURLToPath(new URL('./studio-child.ts', import.meta.url));

const STEPS = 60;
const CONFIG: RunConfigInput = {
  name: 'crash test',
  modelPath: SAMPLE_MODEL_DIR,
  datasetPath: SAMPLE_DATASET_PATH,
  // Dropout on: its RNG state must come back from the checkpoint too.
  lora: { r: 4, alpha: 8, dropout: 0.1, targets: ['q_proj', 'v_proj'] },
  // Steps of 8 × 128 tokens and a checkpoint every 8: the child kills itself when its database holds two steps past
  // the newest checkpoint on disk, which needs the engine to be at most ~5 steps ahead of the services. Tiny steps
  // (2 × 96) let a loaded CI machine's engine run further ahead than a checkpoint interval, and the run ended unkilled.
  train: { learningRate: 3e-3, steps: STEPS, batchSize: 8, maxSeqLen: 128, checkpointEverySteps: 8, seed: 7 },
};

interface Studio {
  /** Resolves with the first line for which `until` returns true. */
  waitFor(until: (line: Record<string, unknown>) => boolean, what: string, ms?: number): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

function studio(home: string, config: RunConfigInput | null, env: Record<string, string> = {}): Studio {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, home, ...(config ? [JSON.stringify(config)] : [])], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const lines: Record<string, unknown>[] = [];
  const waiters: { until: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  createInterface({ input: proc.stdout }).on('line', (text) => {
    const line = JSON.parse(text) as Record<string, unknown>;
    lines.push(line);
    for (const w of waiters.splice(0)) {
      if (w.until(line)) w.resolve(line);
      else waiters.push(w);
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    exited,
    stderr: () => err,
    waitFor(until, what, ms = 120_000) {
      const seen = lines.find(until);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; stderr: ${err.slice(-2000)}`)), ms);
        void exited.then(({ code, signal }) => reject(new Error(`the studio exited (${code ?? signal}) before ${what}; stderr: ${err.slice(-2000)}`)));
        waiters.push({
          until,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
      });
    },
  };
}

function readRun(home: string): { run: RunRecord; metrics: MetricPoint[]; history: { from: string | null; to: string; reason: string | null }[] } {
  const db = openStudioDb(home);
  try {
    const [run] = db.listRuns();
    return { run, metrics: db.metrics(run.id), history: db.stateHistory(run.id) };
  } finally {
    db.close();
  }
}

/** What must be bit-identical between runs (times and throughput are not). */
const numerics = (p: MetricPoint) => ({ step: p.step, loss: p.loss, learningRate: p.learningRate, tokens: p.tokens, gradNorm: p.gradNorm, skipped: p.skipped });

test('a studio killed with SIGKILL mid-run resumes the run on the next start, bit-identical to an uninterrupted one', async () => {
  // The reference: the same run, never interrupted.
  const refHome = join(tmp, 'reference');
  const ref = studio(refHome, CONFIG);
  assert.deepEqual(await ref.exited, { code: 0, signal: null }, ref.stderr());
  const reference = readRun(refHome);
  assert.equal(reference.run.state, 'completed', reference.run.error ?? '');

  // The victim: killed a few steps after a checkpoint, so those steps must be trained again after the restart. It
  // kills itself (studio-child.ts): watched from here, a fast machine finishes the run before the kill lands.
  const home = join(tmp, 'crashed');
  const first = studio(home, CONFIG, { LORA_CRASH_AFTER_CHECKPOINT: '8' });
  assert.deepEqual(await first.exited, { code: null, signal: 'SIGKILL' }, first.stderr());
  const dead = readRun(home);
  // The newest checkpoint is the one on disk: the engine may have written one the database has not recorded yet, and
  // a resume rightly takes it.
  const onDisk = listCheckpoints(join(home, 'runs', dead.run.id))[0]?.step ?? -1;
  assert.ok(dead.metrics.length > onDisk + 1, `steps after the checkpoint were stored (${dead.metrics.length} after step ${onDisk})`);

  assert.equal(dead.run.state, 'executing', 'the database says it was executing when the studio died');
  assert.ok(onDisk >= 8, `checkpoint written: step ${onDisk}`);
  assert.ok(dead.metrics.length < STEPS, `killed before the end (${dead.metrics.length} steps)`);
  const resumeFrom = onDisk;

  // The next start finds it and finishes it by itself.
  const second = studio(home, null);
  const resumed = await second.waitFor((l) => typeof l.log === 'string' && /^resumed from the checkpoint at step/.test(l.log), 'the resume');
  assert.match(String(resumed.log), new RegExp(`at step ${resumeFrom}; \\d+ later steps? (is|are) trained again`));
  const truncated = await second.waitFor((l) => l.truncatedAfter !== undefined, 'the truncation notice');
  assert.equal(truncated.truncatedAfter, resumeFrom);
  assert.deepEqual(await second.exited, { code: 0, signal: null }, second.stderr());

  const after = readRun(home);
  assert.equal(after.run.state, 'completed', after.run.error ?? '');
  assert.equal(after.run.resumeCount, 1);
  assert.equal(after.run.step, STEPS);
  const back = after.history.find((h) => h.from === 'executing' && h.to === 'queuing');
  assert.match(back?.reason ?? '', /studio stopped while this run was executing .*resuming from its checkpoint at step/);

  // Every step once, and the curve is the uninterrupted one.
  assert.deepEqual(after.metrics.map((p) => p.step), Array.from({ length: STEPS }, (_, i) => i + 1));
  assert.deepEqual(after.metrics.map(numerics), reference.metrics.map(numerics));
  // Points before the checkpoint are the ones the first studio stored (kept, not recomputed).
  assert.deepEqual(after.metrics.slice(0, resumeFrom), dead.metrics.slice(0, resumeFrom));

  // The adapter, byte for byte.
  const adapter = (h: string, id: string, f: string) => readFileSync(join(h, 'adapters', id, f));
  assert.ok(after.run.adapterId && reference.run.adapterId);
  for (const f of ['adapter_model.safetensors', 'adapter_config.json']) {
    assert.ok(adapter(home, after.run.adapterId, f).equals(adapter(refHome, reference.run.adapterId, f)), `${f} differs from the uninterrupted run`);
  }
});
