/**
 * The quantization lab through the studio services, as the lab page drives it: a job runs in its own worker and
 * reports progress, then its report; cancel stops a running job (and a queued one) without a report; wrong paths
 * are refused with the path and the request field named, and a failure inside the worker arrives as 'quant.failed'.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { QuantJobSummary, QuantProgress, StudioEventMessage, StudioErrorInfo } from '../../common/protocol.ts';
import { createStudioServices, type StudioServices } from '../../host/services/studio-services.ts';
import { StudioError } from '../../host/services/errors.ts';
import { tinyHfConfig, writeRandomModel } from '../../engine/io/make-model.ts';
import { ensureSample } from '../../engine/io/sample.ts';

let home: string;
let services: StudioServices;
let sampleModel: string;
let bigModel: string;
const events: StudioEventMessage[] = [];

before(async () => {
  home = mkdtempSync(join(tmpdir(), 'quant-lab-'));
  services = createStudioServices({ home, host: 'web', allowedDirs: [tmpdir()] });
  services.onEvent((m) => events.push(m));
  sampleModel = (await ensureSample()).modelDir;
  // Big enough that the weight pass takes a good fraction of a second, so a cancel lands in the middle of it.
  bigModel = join(home, 'bigger-model');
  writeRandomModel(bigModel, tinyHfConfig('llama', { hidden_size: 256, intermediate_size: 768, num_hidden_layers: 8, num_attention_heads: 4, num_key_value_heads: 4, head_dim: 64 }), { seed: 7 });
});

after(async () => {
  await services?.close();
  rmSync(home, { recursive: true, force: true });
});

function eventsOf(jobId: string): StudioEventMessage[] {
  return events.filter((m) => {
    const d = m.data as { jobId?: string; job?: QuantJobSummary };
    return d.jobId === jobId || d.job?.id === jobId;
  });
}

function ended(jobId: string, timeoutMs = 60_000): Promise<StudioEventMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`job ${jobId} did not end within ${timeoutMs} ms`));
    }, timeoutMs);
    const check = (m: StudioEventMessage): boolean => {
      if ((m.event === 'quant.done' || m.event === 'quant.failed') && (m.data as { job: QuantJobSummary }).job.id === jobId) {
        clearTimeout(timer);
        off();
        resolve(m);
        return true;
      }
      return false;
    };
    const off = services.onEvent(check);
    for (const m of events) if (check(m)) return;
  });
}

async function refusal(p: Promise<unknown>): Promise<StudioErrorInfo> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof StudioError, `expected a StudioError, got ${String(e)}`);
    return e.info;
  }
  assert.fail('the request was accepted');
}

test('a job runs in the worker: progress, then done, then the report', { timeout: 60_000 }, async () => {
  const { jobId, job } = await services.handle('quant.start', { modelPath: sampleModel, formats: ['q8_0', 'q4_0'], useSampleCalib: true });
  assert.ok(job.state === 'queued' || job.state === 'running');
  const end = await ended(jobId);
  assert.equal(end.event, 'quant.done', JSON.stringify(end.data));

  const mine = eventsOf(jobId);
  const progress = mine.filter((m) => m.event === 'quant.progress').map((m) => m.data as QuantProgress);
  const doneAt = mine.findIndex((m) => m.event === 'quant.done');
  assert.ok(progress.length >= 3, `expected several progress events, got ${progress.length}`);
  assert.ok(mine.findIndex((m) => m.event === 'quant.progress') < doneAt, 'progress comes before done');
  assert.equal(mine.filter((m) => m.event === 'quant.done').length, 1);
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i].fraction >= progress[i - 1].fraction, `progress went back at event ${i}`);
  const phases = [...new Set(progress.map((p) => p.phase))];
  assert.deepEqual(phases, ['loading', 'weights', 'calibration']);
  assert.ok(progress.at(-1)!.fraction > 0.9 && progress.at(-1)!.fraction <= 1);

  const { job: final, report } = await services.handle('quant.get', { jobId });
  assert.equal(final.state, 'done');
  assert.ok(report, 'a finished job has its report');
  const config = JSON.parse(readFileSync(join(sampleModel, 'config.json'), 'utf8')) as { num_hidden_layers: number; hidden_size: number };
  assert.equal(report.model.layers, config.num_hidden_layers);
  assert.equal(report.model.hiddenSize, config.hidden_size);
  assert.deepEqual(report.formats.map((f) => f.key), ['q8_0', 'q4_0']);
  for (const f of report.formats) {
    assert.equal(f.cells.length, config.num_hidden_layers);
    for (const row of f.cells) assert.equal(row.length, 7);
    assert.ok(f.output, `${f.key} has output metrics with calibration`);
  }
  assert.equal(report.calibration?.source, 'built-in sample');
  // 4 bits per weight lose more than 8 — a property of the formats, not of this code.
  assert.ok(report.formats[1].overall.relErr > report.formats[0].overall.relErr);
});

test('cancel stops a running job (no report) and a queued one; the next job still runs', { timeout: 60_000 }, async () => {
  const all = ['f16', 'int8', 'int4-g128', 'nf4', 'q8_0', 'q4_0', 'q4_1'];
  const running = await services.handle('quant.start', { modelPath: bigModel, formats: all });
  const queued = await services.handle('quant.start', { modelPath: bigModel, formats: ['q8_0'] });
  assert.equal(queued.job.state, 'queued', 'one job at a time: the second waits');

  const cancelledQueued = await services.handle('quant.cancel', { jobId: queued.jobId });
  assert.equal(cancelledQueued.state, 'cancelled');

  // Cancel as soon as the weight pass is under way.
  await new Promise<void>((resolve) => {
    const check = (m: StudioEventMessage): boolean => {
      const p = m.data as QuantProgress;
      if (m.event === 'quant.progress' && p.jobId === running.jobId && p.phase === 'weights') {
        off();
        resolve();
        return true;
      }
      return false;
    };
    const off = services.onEvent(check);
    for (const m of events) if (check(m)) return;
  });
  const t0 = Date.now();
  const summary = await services.handle('quant.cancel', { jobId: running.jobId });
  assert.equal(summary.state, 'cancelled');
  assert.ok(Date.now() - t0 < 2500, `the worker stopped by itself, before the grace period (${Date.now() - t0} ms)`);

  const mine = eventsOf(running.jobId);
  assert.equal(mine.filter((m) => m.event === 'quant.done').length, 0, 'a cancelled job never reports done');
  const failed = mine.filter((m) => m.event === 'quant.failed');
  assert.equal(failed.length, 1);
  assert.equal((failed[0].data as { job: QuantJobSummary }).job.state, 'cancelled');
  const weightSteps = mine.filter((m) => m.event === 'quant.progress' && (m.data as QuantProgress).phase === 'weights').map((m) => m.data as QuantProgress);
  assert.ok(weightSteps.at(-1)!.done < weightSteps.at(-1)!.total, 'it stopped before the end of the weight pass');
  const got = await services.handle('quant.get', { jobId: running.jobId });
  assert.equal(got.report, null);
  assert.equal(eventsOf(queued.jobId).filter((m) => m.event === 'quant.progress').length, 0, 'the cancelled queued job never started');

  const next = await services.handle('quant.start', { modelPath: sampleModel, formats: ['q4_1'] });
  assert.equal((await ended(next.jobId)).event, 'quant.done');
});

test('wrong paths and formats are refused naming the path and the field', { timeout: 30_000 }, async () => {
  const missing = join(home, 'no-such-model');
  const a = await refusal(services.handle('quant.start', { modelPath: missing, formats: ['q8_0'] }));
  assert.equal(a.field, 'modelPath');
  assert.match(a.message, new RegExp(missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));

  const notModel = join(home, 'empty-folder');
  mkdirSync(notModel, { recursive: true });
  const b = await refusal(services.handle('quant.start', { modelPath: notModel, formats: ['q8_0'] }));
  assert.equal(b.field, 'modelPath');
  assert.ok(b.message.includes(notModel), b.message);

  const c = await refusal(services.handle('quant.start', { modelPath: sampleModel, formats: ['q3_k'] }));
  assert.equal(c.field, 'formats.0');

  const calib = join(home, 'no-such-text.txt');
  const d = await refusal(services.handle('quant.start', { modelPath: sampleModel, formats: ['q8_0'], calibPath: calib }));
  assert.equal(d.field, 'calibPath');
  assert.ok(d.message.includes(calib), d.message);

  const e = await refusal(services.handle('quant.get', { jobId: 'quant-nope' }));
  assert.equal(e.field, 'jobId');
});

test('a failure inside the worker arrives as quant.failed naming the file', { timeout: 30_000 }, async () => {
  const notAdapter = join(home, 'not-an-adapter');
  mkdirSync(notAdapter, { recursive: true });
  writeFileSync(join(notAdapter, 'README.txt'), 'not an adapter');
  const { jobId } = await services.handle('quant.start', { modelPath: sampleModel, formats: ['q8_0'], adapterPath: notAdapter });
  const end = await ended(jobId);
  assert.equal(end.event, 'quant.failed');
  const job = (end.data as { job: QuantJobSummary }).job;
  assert.equal(job.state, 'failed');
  assert.equal(job.error?.field, 'adapterPath');
  assert.ok(job.error?.message.includes(notAdapter), job.error?.message);
});

test('finished reports outlive the studio: listed and identical after a restart; broken files are skipped', { timeout: 60_000 }, async () => {
  const { jobId } = await services.handle('quant.start', { modelPath: sampleModel, formats: ['int8'] });
  assert.equal((await ended(jobId)).event, 'quant.done');
  const before = await services.handle('quant.get', { jobId });
  assert.ok(before.report);
  const listed = await services.handle('quant.list', {});
  assert.equal(listed[0].id, jobId, 'newest first');
  assert.ok(listed.some((j) => j.state === 'cancelled'), 'this session lists its cancelled jobs too');

  // A stray, half-written summary must not keep the studio from starting.
  writeFileSync(join(home, 'quant-reports', 'quant-broken.job.json'), '{"id": "quant-broken", "sta');
  const other = createStudioServices({ home, host: 'web', allowedDirs: [tmpdir()] });
  try {
    const afterRestart = await other.handle('quant.list', {});
    assert.ok(afterRestart.every((j) => j.state === 'done'), 'only finished reports are stored');
    assert.ok(afterRestart.some((j) => j.id === jobId));
    assert.ok(!afterRestart.some((j) => j.id === 'quant-broken'));
    const again = await other.handle('quant.get', { jobId });
    assert.deepEqual(again.report, before.report);
    assert.deepEqual(again.job, before.job);
  } finally {
    await other.close();
  }
});
