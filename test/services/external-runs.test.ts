/**
 * Following an external run on real files, the way train.py of an exported bundle writes them: metrics.jsonl grows a
 * line per step (the last line may be half-written when the studio reads), a relaunch starts the file again, a broken
 * line is named by file and line and skipped. First the reader itself, poll by poll; then the services: the
 * 'external.*' methods and events over a real home folder, the adapter imported when status.json says completed.
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ExternalRunSummary, MetricPoint, StudioEventMessage } from '../../common/protocol.ts';
import { ExternalRunReader } from '../../host/services/external-run-reader.ts';
import { tinyHfConfig, writeRandomModel } from '../../engine/io/make-model.ts';
import { writeTestAdapter } from '../helpers/peft-folder.ts';
import { refusal, tempStudios } from '../helpers/temp-studio.ts';

const { tmp, services } = tempStudios('lora-studio-external-');

/** One metrics.jsonl line as train.py writes it (JSON.stringify of a MetricPoint; no target tokens → loss null). */
function line(step: number, loss: number | null, extra: Partial<MetricPoint> = {}): string {
  return `${JSON.stringify({ step, loss, learningRate: 1e-3, tokens: loss === null ? 0 : 40, tokensPerSecond: 500, elapsedMs: step * 80, gradNorm: 0.5 + step / 100, ...extra })}\n`;
}

function runDir(name: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

const steps = (points: readonly MetricPoint[]): number[] => points.map((p) => p.step);

test('reader: appended lines come in order; a half-written last line waits for its newline', () => {
  const dir = runDir('append');
  const file = join(dir, 'metrics.jsonl');
  writeFileSync(file, line(1, 2.5) + line(2, 2.4));
  const r = new ExternalRunReader(dir);
  let p = r.poll();
  assert.deepEqual(steps(p.newPoints), [1, 2]);
  assert.equal(p.changed, true);
  assert.equal(p.reset, false);
  assert.equal(p.newPoints[1].loss, 2.4);

  // Step 3 whole, step 4 cut in the middle of a number, as a reader racing the writer sees it.
  const four = line(4, 2.2, { validationLoss: 2.35 });
  appendFileSync(file, line(3, 2.3) + four.slice(0, 17));
  p = r.poll();
  assert.deepEqual(steps(p.newPoints), [3], 'the half line is held back, not read as broken');
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.poll(), { changed: false, reset: false, newPoints: [] }, 'nothing new: nothing changes');

  appendFileSync(file, four.slice(17));
  p = r.poll();
  assert.deepEqual(steps(p.newPoints), [4]);
  assert.equal(p.newPoints[0].loss, 2.2);
  assert.equal(p.newPoints[0].validationLoss, 2.35);
  assert.deepEqual(steps(r.points), [1, 2, 3, 4]);
  assert.deepEqual(r.problems, []);
});

test('reader: a step without target tokens (loss null in JSON) reads back as NaN, like the studio’s own points', () => {
  const dir = runDir('null-loss');
  writeFileSync(join(dir, 'metrics.jsonl'), line(1, null) + line(2, 1.5, { skipped: true, lossScale: 32768 }));
  const r = new ExternalRunReader(dir);
  const [a, b] = r.poll().newPoints;
  assert.ok(Number.isNaN(a.loss));
  assert.equal(b.skipped, true);
  assert.equal(b.lossScale, 32768);
});

test('reader: a shorter file (a relaunch) or a new runId in status.json starts the series again', () => {
  const dir = runDir('truncate');
  const file = join(dir, 'metrics.jsonl');
  writeFileSync(file, line(1, 3) + line(2, 2.9) + line(3, 2.8));
  const r = new ExternalRunReader(dir);
  assert.deepEqual(steps(r.poll().newPoints), [1, 2, 3]);

  // The relaunch truncates and writes its first step (another loss: another run).
  writeFileSync(file, line(1, 3.1));
  let p = r.poll();
  assert.equal(p.reset, true);
  assert.deepEqual(steps(p.newPoints), [1]);
  assert.deepEqual(r.points.map((x) => x.loss), [3.1]);
  appendFileSync(file, line(2, 3.0));
  assert.deepEqual(steps(r.poll().newPoints), [2]);

  const status = (runId: string) => JSON.stringify({ format: 'lora-studio-external-run', runId, state: 'running', step: 2 });
  writeFileSync(join(dir, 'status.json'), status('first'));
  assert.equal(r.poll().reset, false, 'the first status names the run; nothing to reset');
  // A new run id with a file that happens to be as long: the id alone says it is another run.
  writeFileSync(join(dir, 'status.json.tmp'), status('second'));
  renameSync(join(dir, 'status.json.tmp'), join(dir, 'status.json'));
  writeFileSync(file, line(1, 4.1) + line(2, 4.0));
  p = r.poll();
  assert.equal(p.reset, true);
  assert.deepEqual(r.points.map((x) => x.loss), [4.1, 4.0]);
  assert.equal(r.status?.runId, 'second');
});

test('reader: a broken line is named by file and line and skipped; the good lines around it are kept', () => {
  const dir = runDir('bad-lines');
  writeFileSync(
    join(dir, 'metrics.jsonl'),
    line(1, 2) +
      '{"step": 2, "loss": 1.9,,}\n' +
      line(3, 1.8, { gradNorm: 'big' as unknown as number }) +
      '\n' +
      line(0, 1.7) +
      line(6, 1.6),
  );
  const r = new ExternalRunReader(dir);
  r.poll();
  assert.deepEqual(steps(r.points), [1, 6]);
  assert.equal(r.problems.length, 3, r.problems.join('\n'));
  assert.match(r.problems[0], /^metrics\.jsonl line 2: not valid JSON \(/);
  assert.match(r.problems[1], /^metrics\.jsonl line 3: gradNorm: /);
  // Line 4 is empty (allowed); line 5 has step 0.
  assert.match(r.problems[2], /^metrics\.jsonl line 5: step: /);

  appendFileSync(join(dir, 'metrics.jsonl'), 'not json either\n');
  r.poll();
  assert.match(r.problems[3], /^metrics\.jsonl line 7: not valid JSON/, 'line numbers go on across polls');

  writeFileSync(join(dir, 'status.json'), '{"format": "lora-studio-external-run", "runId": 7, "state": "running"}');
  r.poll();
  assert.match(r.problems[4], /^status\.json: runId: /);
});

/** Waits until `ok` holds for the events seen so far (the services read the folders every pollMs). */
async function until<T>(what: string, read: () => T, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = read();
    if (ok(v)) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('services: follow a metrics.jsonl, live points as events, a relaunch resets, completion imports the adapter, unfollow', async () => {
  const s = services('follow');
  const events: StudioEventMessage[] = [];
  s.onEvent((m) => events.push(m));
  const metricsOf = (id: string) => events.filter((e): e is StudioEventMessage<'external.metrics'> => e.event === 'external.metrics' && (e.data as { id: string }).id === id).map((e) => e.data);

  const e = await refusal(() => s.handle('external.follow', { path: join(tmp, 'no-such-run', 'metrics.jsonl') }));
  assert.equal(e.info.field, 'path');
  assert.equal(e.message, `${join(tmp, 'no-such-run', 'metrics.jsonl')} does not exist; choose the run's metrics.jsonl or the bundle's output folder (where train.py writes it)`);

  const dir = runDir('followed/output');
  const file = join(dir, 'metrics.jsonl');
  writeFileSync(file, line(1, 2.5) + line(2, 2.4));
  const run = await s.handle('external.follow', { path: file });
  assert.equal(run.path, dir, 'the metrics file stands for its folder');
  assert.equal(run.state, 'running');
  assert.equal(run.step, 2);
  assert.deepEqual(steps(await s.handle('external.metrics', { id: run.id })), [1, 2]);
  assert.equal((await s.handle('external.follow', { path: dir })).id, run.id, 'following the same folder again is the same run');

  appendFileSync(file, line(3, 2.3) + line(4, 2.2).slice(0, 10));
  await until('step 3 pushed', () => metricsOf(run.id).flatMap((u) => steps(u.points)), (xs) => xs.includes(3));
  assert.deepEqual(steps(await s.handle('external.metrics', { id: run.id, afterStep: 2 })), [3], 'the half-written step 4 is not served');

  writeFileSync(file, line(1, 3.3));
  const reset = await until('a reset pushed', () => metricsOf(run.id).find((u) => u.truncatedAfter === 0), (u) => u !== undefined);
  assert.deepEqual(reset?.points.map((p) => p.loss), [3.3]);

  // The run completes: status.json says so and output/adapter holds the PEFT folder; it comes into the Adapters list.
  const modelDir = join(tmp, 'follow-model');
  writeRandomModel(modelDir, tinyHfConfig('llama', { vocab_size: 64, hidden_size: 16, intermediate_size: 32, num_attention_heads: 2, num_key_value_heads: 1 }), { seed: 3, std: 0.2 });
  writeTestAdapter(join(dir, 'adapter'), modelDir);
  writeFileSync(join(dir, 'status.json'), JSON.stringify({ format: 'lora-studio-external-run', runId: 'r1', state: 'completed', step: 1, totalSteps: 1, name: 'cluster run', adapterDir: 'adapter' }));
  const done = await until(
    'the adapter imported',
    () => events.filter((m) => m.event === 'external.updated').map((m) => m.data as ExternalRunSummary).find((x) => x.id === run.id && x.adapterId !== null),
    (x) => x !== undefined,
  );
  assert.equal(done?.state, 'completed');
  const adapters = await s.handle('adapters.list', {});
  const imported = adapters.find((a) => a.id === done?.adapterId);
  assert.ok(imported, 'the adapter is in the Adapters list');
  assert.equal(imported.importedFrom, join(dir, 'adapter'));
  assert.deepEqual(imported.targets, ['q_proj', 'v_proj']);
  assert.ok(existsSync(join(imported.path, 'adapter_model.safetensors')), 'copied into the studio');

  const before = readFileSync(file, 'utf8');
  assert.deepEqual(await s.handle('external.unfollow', { id: run.id }), { id: run.id });
  assert.ok(events.some((m) => m.event === 'external.removed' && (m.data as { id: string }).id === run.id));
  assert.deepEqual(await s.handle('external.list', {}), []);
  assert.equal(readFileSync(file, 'utf8'), before, 'nothing on disk is touched');
  const gone = await refusal(() => s.handle('external.metrics', { id: run.id }));
  assert.equal(gone.info.field, 'id');
});
