/**
 * The run folder deleted while its run executes (a cleanup script, a user tidying up): the run must fail with a
 * message that says the folder is gone and where it was, not hang or report a bare ENOENT; the studio goes on.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RunConfigInput, RunSummary } from '../../common/protocol.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { tempStudios } from '../helpers/temp-studio.ts';

const { services } = tempStudios('lora-run-gone-');

test('deleting the run folder under a running run fails it saying so; the next run still trains', async () => {
  const s = services('home');
  const config = (steps: number): RunConfigInput => ({
    modelPath: SAMPLE_MODEL_DIR,
    datasetPath: SAMPLE_DATASET_PATH,
    lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'] },
    train: { learningRate: 3e-3, steps, batchSize: 2, maxSeqLen: 64, checkpointEverySteps: 3 },
  });
  // Long enough that the native kernels cannot finish it before the folder goes.
  const run = await s.handle('runs.start', { config: config(2000) });
  const dir = join(s.home.runs, run.id);
  for (let r: RunSummary = run; r.step < 1; r = await s.handle('runs.get', { id: run.id })) {
    assert.notEqual(r.state, 'failed', r.error ?? '');
    await new Promise((res) => setTimeout(res, 20));
  }
  // The engine may be writing a checkpoint into it at this moment: retry as rm -rf would have to.
  for (let tries = 0; ; tries++) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 5 });
      break;
    } catch (e) {
      // Files the engine wrote between the listing and the rmdir: list again, for up to ~2 s.
      if (tries >= 100 || (e as NodeJS.ErrnoException).code !== 'ENOTEMPTY') throw e;
      await new Promise((res) => setTimeout(res, 20));
    }
  }
  await s.whenIdle();
  const failed = await s.handle('runs.get', { id: run.id });
  assert.equal(failed.state, 'failed');
  assert.ok((failed.error ?? '').includes(`the run folder ${dir} was deleted while the run was training`), failed.error ?? '');
  assert.match(failed.error ?? '', /Start the run again/);
  assert.ok(failed.step < 2000, `it stopped (step ${failed.step})`);
  const events = await s.handle('runs.events', { id: run.id });
  assert.ok(events.some((e) => e.level === 'error' && e.message.includes('was deleted')), 'the event log says why');
  const next = await s.handle('runs.start', { config: config(2) });
  await s.whenIdle();
  assert.equal((await s.handle('runs.get', { id: next.id })).state, 'completed');
});
