/**
 * Runs through the services, on the sample model: the queue order with priorities and the per-device limit, pause
 * and resume (bit-identical to an uninterrupted run), stop-and-save, cancel, refused moves, the start-up watchdog,
 * closing and reopening the studio mid-run, the Prometheus endpoint, settings, the memory estimate, and the CLI
 * acting on a running studio.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { RunConfigInput, RunState, RunSummary, StudioEventMessage } from '../../common/protocol.ts';
import { readHfConfig } from '../../engine/io/hf-config.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { nativeStatus } from '../../engine/backend/cpu/native.ts';
import { configuredThreads } from '../../engine/backend/cpu/thread-pool.ts';
import { estimateTrainingMemory } from '../../engine/train/memory-estimate.ts';
import { runAction } from '../../host/cli/runs.ts';
import { createStudioServices, type StudioServices } from '../../host/services/studio-services.ts';
import { assertPeftAdapter, readFolder } from '../helpers/peft-folder.ts';
import { refusal, tempStudios } from '../helpers/temp-studio.ts';

const { tmp, services } = tempStudios('lora-runs-');
// The estimate follows the kernels the engine will run (the native ones when built).
const kernels = nativeStatus().native !== null ? 'native' : 'portable';

function config(train: Partial<RunConfigInput['train']> = {}, name?: string): RunConfigInput {
  return {
    ...(name ? { name } : {}),
    modelPath: SAMPLE_MODEL_DIR,
    datasetPath: SAMPLE_DATASET_PATH,
    lora: { r: 4, alpha: 8, dropout: 0.1, targets: ['q_proj', 'v_proj'] },
    train: { learningRate: 3e-3, steps: 12, batchSize: 2, maxSeqLen: 96, seed: 3, ...train },
  };
}

async function until(s: StudioServices, id: string, ok: (r: RunSummary) => boolean, what: string): Promise<RunSummary> {
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
    const r = await s.handle('runs.get', { id });
    if (ok(r)) return r;
    if (r.state === 'failed') throw new Error(`run failed while waiting for ${what}: ${r.error}`);
    await new Promise((res) => setTimeout(res, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function adapterBytes(s: StudioServices, run: RunSummary): Buffer {
  assert.ok(run.adapterId, `run ${run.id} has no adapter (${run.state}, ${run.error})`);
  return readFileSync(join(s.home.adapters, run.adapterId, 'adapter_model.safetensors'));
}

describe('queue', () => {
  test('one run per device at a time; higher priority first, then first come first served', async () => {
    const s = services('queue');
    const executing: string[] = [];
    let concurrent = 0;
    let most = 0;
    s.onEvent((m: StudioEventMessage) => {
      if (m.event !== 'run.updated') return;
      const r = m.data as RunSummary;
      if (r.state === 'executing' && !executing.includes(r.id)) {
        executing.push(r.id);
        concurrent++;
        most = Math.max(most, concurrent);
      }
      if (r.state === 'completed') concurrent--;
    });
    const a = await s.handle('runs.start', { config: config({ steps: 4 }, 'a') });
    const b = await s.handle('runs.start', { config: config({ steps: 4 }, 'b') });
    const c = await s.handle('runs.start', { config: config({ steps: 4 }, 'c'), priority: 5 });
    const waiting = await until(s, b.id, (r) => r.state === 'queuing' && r.queuePosition === 2, 'b to wait behind c');
    assert.equal(waiting.queuePosition, 2);
    assert.equal((await s.handle('runs.get', { id: c.id })).queuePosition, 1);
    await s.whenIdle();
    assert.deepEqual(executing, [a.id, c.id, b.id]);
    assert.equal(most, 1);
    for (const id of [a.id, b.id, c.id]) assert.equal((await s.handle('runs.get', { id })).state, 'completed');
  });

  test('with two slots per device, two runs execute at once', async () => {
    const s = services('two-slots');
    await s.handle('settings.set', { maxConcurrentRunsPerDevice: 2 });
    // Counted from the events, not sampled: the native kernels can finish a short run between two polls.
    const executing = new Set<string>();
    let most = 0;
    s.onEvent((m: StudioEventMessage) => {
      if (m.event !== 'run.updated') return;
      const r = m.data as RunSummary;
      if (r.state === 'executing') executing.add(r.id);
      else executing.delete(r.id);
      most = Math.max(most, executing.size);
    });
    const a = await s.handle('runs.start', { config: config({ steps: 120 }) });
    const b = await s.handle('runs.start', { config: config({ steps: 120 }) });
    await s.whenIdle();
    assert.equal(most, 2, 'both runs were executing at the same time');
    for (const id of [a.id, b.id]) assert.equal((await s.handle('runs.get', { id })).state, 'completed');
  });
});

describe('pause, resume, stop and save, cancel', () => {
  test('a paused run resumes from its checkpoint and ends bit-identical to an uninterrupted one', async () => {
    const s = services('pause');
    const ref = await s.handle('runs.start', { config: config({ steps: 200 }) });
    await s.whenIdle();
    const reference = await s.handle('runs.get', { id: ref.id });

    const run = await s.handle('runs.start', { config: config({ steps: 200 }) });
    // Paused from the event of step 4 itself: polling could miss a run that the native kernels finish in a second.
    // Progress is pushed every 100 ms and a step of this toy takes a few milliseconds, so the run is long (200
    // steps) for the pause to land before its end even on a machine several times faster than this one.
    let pausing: Promise<RunSummary> | null = null;
    s.onEvent((m: StudioEventMessage) => {
      const r = m.data as RunSummary;
      if (m.event === 'run.updated' && r.id === run.id && r.step >= 4 && pausing === null) pausing = s.handle('runs.pause', { id: run.id });
    });
    await until(s, run.id, () => pausing !== null, 'step 4');
    assert.equal((await pausing!).state, 'executing', 'it stops at the next step boundary');
    const paused = await until(s, run.id, (r) => r.state === 'paused', 'the pause');
    assert.ok(paused.checkpointStep !== null && paused.checkpointStep! >= 4 && paused.checkpointStep! < 200, `checkpoint at ${paused.checkpointStep}`);
    assert.equal(paused.step, paused.checkpointStep);
    assert.equal(s.hasActiveRuns(), false);

    await s.handle('runs.resume', { id: run.id });
    await s.whenIdle();
    const done = await s.handle('runs.get', { id: run.id });
    assert.equal(done.state, 'completed', done.error ?? '');
    assert.equal(done.resumeCount, 1);
    assert.ok(adapterBytes(s, done).equals(adapterBytes(s, reference)), 'same adapter as the uninterrupted run');
    const steps = (await s.handle('runs.metrics', { id: run.id })).map((p) => p.step);
    assert.deepEqual(steps, Array.from({ length: 200 }, (_, i) => i + 1));
    const history = (await s.handle('runs.history', { id: run.id })).map((h) => h.to);
    assert.deepEqual(history, ['pending', 'validating', 'queuing', 'executing', 'paused', 'queuing', 'executing', 'finalizing', 'completed']);
  });

  test('stop and save ends the run early with the adapter of that step', async () => {
    const s = services('stop-save');
    const run = await s.handle('runs.start', { config: config({ steps: 400 }) });
    await until(s, run.id, (r) => r.step >= 3, 'step 3');
    await s.handle('runs.stopAndSave', { id: run.id });
    await s.whenIdle();
    const done = await s.handle('runs.get', { id: run.id });
    assert.equal(done.state, 'completed', done.error ?? '');
    assert.ok(done.step >= 3 && done.step < 400);
    const [adapter] = await s.handle('adapters.list', {});
    assert.equal(adapter.runId, run.id);
    assertPeftAdapter(readFolder(adapter.path), SAMPLE_MODEL_DIR);
    const ck = join(s.home.runs, run.id, 'checkpoints', `step-${done.step}`, 'adapter_model.safetensors');
    assert.ok(readFileSync(ck).equals(adapterBytes(s, done)), 'the adapter is the one of the step it stopped at');
    const history = (await s.handle('runs.history', { id: run.id })).map((h) => [h.to, h.reason]);
    assert.match(String(history.find((h) => h[0] === 'finalizing')?.[1]), /stopped and saved by the user at step/);
  });

  test('cancel: waiting runs at once, the executing one at its next step; refused moves say why', async () => {
    const s = services('cancel');
    const a = await s.handle('runs.start', { config: config({ steps: 400 }) });
    const b = await s.handle('runs.start', { config: config() });
    await until(s, b.id, (r) => r.state === 'queuing', 'b queued');
    assert.equal((await s.handle('runs.pause', { id: b.id })).state, 'paused');
    assert.equal((await s.handle('runs.cancel', { id: b.id })).state, 'cancelled');
    await until(s, a.id, (r) => r.step >= 1, 'a to train');
    await s.handle('runs.cancel', { id: a.id });
    await s.whenIdle();
    const cancelled = await s.handle('runs.get', { id: a.id });
    assert.equal(cancelled.state, 'cancelled');
    assert.equal(cancelled.adapterId, null);
    assert.match((await refusal(() => s.handle('runs.resume', { id: a.id }))).info.message, /is cancelled; only a paused or failed run can be resumed/);
    assert.match((await refusal(() => s.handle('runs.pause', { id: a.id }))).info.message, /is cancelled; only a waiting or executing run can be paused/);
    assert.match((await refusal(() => s.handle('runs.stopAndSave', { id: b.id }))).info.message, /only an executing run can be stopped and saved/);
    assert.match((await refusal(() => s.handle('runs.cancel', { id: a.id }))).info.message, /nothing to cancel/);
    const events = await s.handle('runs.events', { id: a.id });
    assert.ok(events.some((e) => /cancelling at the next step/.test(e.message)));
    assert.deepEqual(await s.handle('runs.events', { id: a.id, afterId: events.at(-1)!.id }), []);
  });
});

describe('watchdog and restarts', () => {
  test('a start-up that overruns its limit fails the run, saying which limit', async () => {
    const s = services('watchdog');
    await s.handle('settings.set', { startupTimeoutMinutes: 0.0002 });
    const run = await s.handle('runs.start', { config: config() });
    await s.whenIdle();
    const failed = await s.handle('runs.get', { id: run.id });
    assert.equal(failed.state, 'failed');
    assert.match(failed.error ?? '', /did not finish its first step within 12 ms/);
  });

  test('closing the studio mid-run checkpoints it; the next start finishes it', async () => {
    const home = join(tmp, 'reopen');
    const s1 = createStudioServices({ home, host: 'web' });
    const run = await s1.handle('runs.start', { config: config({ steps: 300 }) });
    // 300 steps: polled progress (pushed every 100 ms) must find the toy mid-way even on a much faster machine.
    await until(s1, run.id, (r) => r.step >= 5, 'step 5');
    await s1.close();
    const s2 = services('reopen');
    const waiting = await s2.handle('runs.get', { id: run.id });
    assert.ok(['queuing', 'executing'].includes(waiting.state), waiting.state);
    assert.ok(waiting.checkpointStep !== null && waiting.checkpointStep! >= 5, `checkpoint when closing: ${waiting.checkpointStep}`);
    await s2.whenIdle();
    const done = await s2.handle('runs.get', { id: run.id });
    assert.equal(done.state, 'completed', done.error ?? '');
    assert.deepEqual((await s2.handle('runs.metrics', { id: run.id })).map((p) => p.step), Array.from({ length: 300 }, (_, i) => i + 1));
  });

  test('without auto-resume, a run closed mid-way waits paused', async () => {
    const home = join(tmp, 'no-auto');
    const s1 = createStudioServices({ home, host: 'web' });
    await s1.handle('settings.set', { autoResume: false });
    const run = await s1.handle('runs.start', { config: config({ steps: 300 }) });
    await until(s1, run.id, (r) => r.step >= 2, 'step 2');
    await s1.close();
    const s2 = services('no-auto');
    assert.equal((await s2.handle('runs.get', { id: run.id })).state, 'paused' satisfies RunState);
    assert.equal(s2.hasActiveRuns(), false);
  });
});

describe('settings, Prometheus, memory estimate', () => {
  test('settings are validated by name and kept', async () => {
    const s = services('settings');
    const defaults = await s.handle('settings.get', {});
    assert.equal(defaults.autoResume, true);
    assert.equal(defaults.maxConcurrentRunsPerDevice, 1);
    assert.equal(defaults.prometheusPort, null);
    const e = await refusal(() => s.handle('settings.set', { maxConcurrentRunsPerDevice: 0, checkpointEveryMinutes: -1 }));
    const fields = (e.info.fieldErrors ?? []).map((f) => f.field).sort();
    assert.deepEqual(fields, ['checkpointEveryMinutes', 'maxConcurrentRunsPerDevice']);
    assert.match((await refusal(() => s.handle('settings.set', { colour: 'blue' }))).info.message, /unknown setting/);
    assert.equal((await s.handle('settings.set', { checkpointEveryMinutes: 2.5 })).checkpointEveryMinutes, 2.5);
    assert.equal((await s.handle('settings.get', {})).checkpointEveryMinutes, 2.5);
  });

  test('the Prometheus endpoint follows the setting and exports the runs', async () => {
    const s = services('prometheus');
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const run = await s.handle('runs.start', { config: config({ steps: 5 }) });
    await s.whenIdle();
    await s.handle('settings.set', { prometheusPort: port });
    let text = '';
    for (let i = 0; i < 50 && !text; i++) {
      text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => '');
      if (!text) await new Promise((r) => setTimeout(r, 20));
    }
    const last = (await s.handle('runs.metrics', { id: run.id })).at(-1)!;
    assert.match(text, new RegExp(`lora_studio_run_step\\{run_id="${run.id}",run_name="[^"]*"\\} 5`));
    assert.ok(text.includes(`lora_studio_run_state{run_id="${run.id}"`) && new RegExp(`state="completed"\\} 1`).test(text));
    const loss = new RegExp(`lora_studio_run_loss\\{run_id="${run.id}"[^}]*\\} (\\S+)`).exec(text);
    assert.equal(Number(loss?.[1]), last.loss);
    await s.handle('settings.set', { prometheusPort: null });
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`));
  });

  test('the cpu threads setting reaches the engine of the next run, and the estimate', async () => {
    const s = services('threads');
    const lora = { r: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'v_proj'] as ('q_proj' | 'v_proj')[] };
    const train = { learningRate: 1e-3, steps: 10, batchSize: 4, maxSeqLen: 256 };
    const auto = (await s.handle('runs.estimateMemory', { modelPath: SAMPLE_MODEL_DIR, lora, train })).estimate.total;
    await s.handle('settings.set', { cpuThreads: 3 });
    const three = (await s.handle('runs.estimateMemory', { modelPath: SAMPLE_MODEL_DIR, lora, train })).estimate.total;
    assert.equal(three, estimateTrainingMemory(readHfConfig(SAMPLE_MODEL_DIR), { lora, train }, { threads: 3, kernels }).total);
    assert.equal(auto, estimateTrainingMemory(readHfConfig(SAMPLE_MODEL_DIR), { lora, train }, { threads: configuredThreads(), kernels }).total);
    const run = await s.handle('runs.start', { config: config({ steps: 2 }) });
    await until(s, run.id, (r) => r.state === 'completed', 'the run');
    const events = await s.handle('runs.events', { id: run.id });
    assert.ok(events.some((e) => /cpu backend on 3 threads/.test(e.message)), events.map((e) => e.message).join('\n'));
    assert.equal((await refusal(() => s.handle('settings.set', { cpuThreads: 0 }))).info.fieldErrors?.[0]?.field, 'cpuThreads');
  });

  test('runs.estimateMemory is the engine estimate for the model folder, plus the machine memory', async () => {
    const s = services('estimate');
    const lora = { r: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'v_proj'] as ('q_proj' | 'v_proj')[] };
    const train = { learningRate: 1e-3, steps: 10, batchSize: 4, maxSeqLen: 256, gradientCheckpointing: true };
    const r = await s.handle('runs.estimateMemory', { modelPath: SAMPLE_MODEL_DIR, lora, train });
    // The cpu estimate counts the cpu thread pool's workers as the engine will start them.
    assert.deepEqual(r.estimate, estimateTrainingMemory(readHfConfig(SAMPLE_MODEL_DIR), { lora, train }, { threads: configuredThreads(), kernels }));
    assert.ok(r.systemMemoryBytes > 0 && r.freeMemoryBytes > 0);
    const bad = await refusal(() => s.handle('runs.estimateMemory', { modelPath: join(tmp, 'nothing'), lora, train }));
    assert.equal(bad.info.field, 'modelPath');
  });
});

describe('the CLI and a running studio', () => {
  test('pause, resume and stop-save from the command line reach the studio that runs the folder', async () => {
    const s = services('cli-live');
    const home = s.home.root;
    const run = await s.handle('runs.start', { config: config({ steps: 400 }) });
    await until(s, run.id, (r) => r.step >= 2, 'step 2');
    const out = { stdout: { write: () => true }, stderr: { write: () => true } };
    const paused = await runAction('pause', run.id, { home, wait: '30' }, out);
    assert.equal(paused.via, 'studio');
    assert.equal(paused.pid, process.pid);
    await until(s, run.id, (r) => r.state === 'paused', 'the pause');
    const resumed = await runAction('resume', run.id, { home }, out);
    assert.match(resumed.message, /queued to continue from its last checkpoint/);
    await until(s, run.id, (r) => r.state === 'executing' && r.step >= 4, 'the resumed run to train');
    await runAction('stop-save', run.id, { home }, out);
    await s.whenIdle();
    const done = await s.handle('runs.get', { id: run.id });
    assert.equal(done.state, 'completed', done.error ?? '');
    assert.ok(done.step < 400);
    await assert.rejects(runAction('resume', run.id, { home }, out), /is completed; only a paused or failed run can be resumed/);
  });
});
