/**
 * The studio database: a run survives a close and reopen field for field, metrics replayed after a resume never
 * duplicate, the state machine is enforced inside the database, commands are taken exactly once across processes'
 * connections, and the schema upgrades (and refuses a newer one).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { MetricPoint, RunSummary } from '../../common/protocol.ts';
import { DEFAULT_RUN_CONFIG } from '../../common/protocol.ts';
import { dbPathOf, MIGRATIONS, newRunRecord, openStudioDb, SCHEMA_VERSION, StudioDb, type RunRecord } from '../../host/services/db.ts';
import { IllegalTransitionError } from '../../host/services/run-state.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lora-db-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const home = (): string => join(tmp, `home-${++n}`);

function summary(id: string, extra: Partial<RunSummary> = {}): RunSummary {
  const at = new Date(Date.UTC(2026, 10, 27, 12, 0, n)).toISOString();
  return {
    id,
    name: `run ${id}`,
    state: 'pending',
    config: { ...DEFAULT_RUN_CONFIG, modelPath: '/m', datasetPath: '/d.jsonl', name: id },
    createdAt: at,
    updatedAt: at,
    step: 0,
    totalSteps: 40,
    lastLoss: null,
    tokensPerSecond: null,
    etaMs: null,
    error: null,
    adapterId: null,
    backend: null,
    ...extra,
  };
}

function point(step: number, loss: number): MetricPoint {
  return { step, loss, learningRate: 1e-3, tokens: 100 + step, tokensPerSecond: 50, elapsedMs: step * 10, gradNorm: 0.5 };
}

describe('runs', () => {
  test('a run round-trips through close and reopen, every field', () => {
    const root = home();
    const run: RunRecord = newRunRecord({
      ...summary('r1', { step: 7, lastLoss: 2.25, tokensPerSecond: 123.5, etaMs: 4000, error: 'e', adapterId: 'a1', backend: 'cpu' }),
      priority: 3,
      device: 'webgpu:0',
      resumeCount: 2,
      checkpointStep: 6,
      checkpointPath: '/runs/r1/checkpoints/step-6',
      startedAt: '2026-11-27T12:00:01.000Z',
      finishedAt: null,
    });
    const db = openStudioDb(root);
    db.insertRun(run, 'created in a test');
    db.close();
    const again = openStudioDb(root);
    assert.deepEqual(again.getRun('r1'), run);
    assert.deepEqual(again.listRuns().map((r) => r.id), ['r1']);
    assert.equal(again.getRun('nope'), null);
    assert.throws(() => again.requireRun('nope'), /no run with id "nope" in .*studio\.db/);
    assert.throws(() => again.insertRun(run), /run r1 already exists/);
    again.close();
  });

  test('WAL mode, foreign keys, schema version', () => {
    const db = openStudioDb(home());
    assert.equal(db.db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.db.pragma('foreign_keys', { simple: true }), 1);
    assert.equal(db.schemaVersion, SCHEMA_VERSION);
    assert.throws(() => db.appendMetrics('ghost', [point(1, 1)]), /FOREIGN KEY/);
    db.close();
  });

  test('transitions follow the state machine, atomically with their history', () => {
    const db = openStudioDb(home());
    db.insertRun(newRunRecord(summary('r')));
    db.transition('r', 'validating', { reason: 'checking' });
    db.transition('r', 'queuing');
    assert.equal(db.getRun('r')?.queueSeq !== null, true);
    db.transition('r', 'executing', { patch: { startedAt: 'now', backend: 'cpu' } });
    assert.equal(db.getRun('r')?.queueSeq, null);
    assert.throws(() => db.transition('r', 'completed'), (e: unknown) => e instanceof IllegalTransitionError && /from executing to completed/.test(e.message));
    assert.equal(db.getRun('r')?.state, 'executing', 'a refused move changes nothing');
    assert.throws(() => db.transition('r', 'paused', { from: 'queuing' }), /run r is executing, not queuing; nothing was changed/);
    db.transition('r', 'finalizing');
    const done = db.transition('r', 'completed', { patch: { adapterId: 'ad' } });
    assert.equal(done.adapterId, 'ad');
    assert.deepEqual(
      db.stateHistory('r').map((h) => [h.from, h.to, h.reason]),
      [
        [null, 'pending', null],
        ['pending', 'validating', 'checking'],
        ['validating', 'queuing', null],
        ['queuing', 'executing', null],
        ['executing', 'finalizing', null],
        ['finalizing', 'completed', null],
      ],
    );
    db.close();
  });

  test('queued runs come out by priority, then queue order', () => {
    const db = openStudioDb(home());
    for (const [id, prio] of [['a', 0], ['b', 2], ['c', 0], ['d', 2]] as const) {
      db.insertRun(newRunRecord({ ...summary(id), priority: prio }));
      db.transition(id, 'validating');
      db.transition(id, 'queuing');
    }
    assert.deepEqual(db.queuedRuns().map((r) => r.id), ['b', 'd', 'a', 'c']);
    db.insertRun(newRunRecord({ ...summary('front'), state: 'executing' }));
    db.transition('front', 'queuing', { patch: { queueSeq: 0 } });
    db.updateRun('front', { priority: 2 });
    assert.deepEqual(db.queuedRuns().map((r) => r.id), ['front', 'b', 'd', 'a', 'c']);
    db.close();
  });

  test('deleting a run deletes its history, metrics and events', () => {
    const db = openStudioDb(home());
    db.insertRun(newRunRecord(summary('gone')));
    db.appendMetrics('gone', [point(1, 1)]);
    db.addEvent('gone', 'info', 'hello');
    assert.equal(db.deleteRun('gone'), true);
    assert.equal(db.metricCount('gone'), 0);
    assert.deepEqual(db.events('gone'), []);
    assert.deepEqual(db.stateHistory('gone'), []);
    db.close();
  });
});

describe('metrics', () => {
  test('replaying steps after a checkpoint replaces them: no duplicates, newest values win', () => {
    const db = openStudioDb(home());
    db.insertRun(newRunRecord(summary('m')));
    const first = Array.from({ length: 12 }, (_, i) => point(i + 1, 10 - i * 0.1));
    db.appendMetrics('m', first);
    // Crash after step 12, resume from the checkpoint at step 8: steps 9.. are trained again.
    const replay = Array.from({ length: 8 }, (_, i) => point(i + 9, 5 - i * 0.1));
    db.appendMetrics('m', replay);
    const all = db.metrics('m');
    assert.equal(all.length, 16);
    assert.deepEqual(all.map((p) => p.step), Array.from({ length: 16 }, (_, i) => i + 1));
    assert.deepEqual(all.slice(0, 8), first.slice(0, 8));
    assert.deepEqual(all.slice(8), replay);
    assert.equal(db.metricCount('m'), 16);
    assert.deepEqual(db.metrics('m', 14).map((p) => p.step), [15, 16]);
    assert.deepEqual(db.metrics('m', 0, 3).map((p) => p.step), [1, 2, 3]);
    assert.equal(db.deleteMetricsAfter('m', 10), 6);
    assert.deepEqual(db.metrics('m').map((p) => p.step).slice(-1), [10]);
    db.close();
  });

  test('non-finite numbers survive (a skipped step has gradNorm NaN)', () => {
    const db = openStudioDb(home());
    db.insertRun(newRunRecord(summary('nan')));
    const p: MetricPoint = { ...point(1, Number.NaN), gradNorm: Number.NaN, lossScale: Number.POSITIVE_INFINITY, skipped: true, validationLoss: Number.NEGATIVE_INFINITY };
    db.appendMetrics('nan', [p]);
    const [back] = db.metrics('nan');
    assert.ok(Number.isNaN(back.loss) && Number.isNaN(back.gradNorm));
    assert.equal(back.lossScale, Number.POSITIVE_INFINITY);
    assert.equal(back.validationLoss, Number.NEGATIVE_INFINITY);
    assert.equal(back.skipped, true);
    db.updateRun('nan', { lastLoss: Number.NaN });
    assert.equal(db.getRun('nan')?.lastLoss, null);
    db.close();
  });

  test('memory figures round-trip; a point stored before they were measured reads back without them', () => {
    const root = home();
    const db = openStudioDb(root);
    db.insertRun(newRunRecord(summary('mem')));
    // Step 1 as an older studio wrote it: the data column is the point's JSON, without rssBytes / deviceBytes.
    db.db.prepare('INSERT INTO metrics (run_id, step, data) VALUES (?, ?, ?)').run('mem', 1, JSON.stringify(point(1, 2)));
    const cpu: MetricPoint = { ...point(2, 1.9), rssBytes: 812_345_678 };
    const gpu: MetricPoint = { ...point(3, 1.8), rssBytes: 901_000_000, deviceBytes: 3 * 2 ** 30 + 5 };
    db.appendMetrics('mem', [cpu, gpu]);
    db.close();
    const back = openStudioDb(root);
    const [old, two, three] = back.metrics('mem');
    assert.deepEqual(old, point(1, 2));
    assert.ok(!('rssBytes' in old) && !('deviceBytes' in old));
    assert.deepEqual(two, cpu);
    assert.deepEqual(three, gpu);
    back.close();
  });

  test('a step that is not an integer is refused, naming the run', () => {
    const db = openStudioDb(home());
    db.insertRun(newRunRecord(summary('bad')));
    assert.throws(() => db.appendMetrics('bad', [point(1.5, 1)]), /run bad has a step that is not an integer: 1\.5/);
    assert.equal(db.metricCount('bad'), 0, 'the batch is one transaction');
    db.close();
  });
});

describe('events, settings, adapters', () => {
  test('events come back in order after an id', () => {
    const db = openStudioDb(home());
    db.insertRun(newRunRecord(summary('ev')));
    const a = db.addEvent('ev', 'info', 'loading', null);
    const b = db.addEvent('ev', 'warn', 'slow step', 3);
    assert.deepEqual(db.events('ev').map((e) => [e.level, e.step, e.message]), [['info', null, 'loading'], ['warn', 3, 'slow step']]);
    assert.deepEqual(db.events('ev', a.id).map((e) => e.id), [b.id]);
    db.close();
  });

  test('settings and adapters round-trip', () => {
    const root = home();
    const db = openStudioDb(root);
    db.setSetting('checkpointEveryMinutes', 10);
    db.setSetting('concurrency', { cpu: 2 });
    db.setSetting('gone', true);
    db.setSetting('gone', undefined);
    db.insertRun(newRunRecord(summary('ra')));
    db.upsertAdapter({ id: 'ad', runId: 'ra', name: 'A', path: '/a', createdAt: 'x', summary: { r: 8 } });
    db.close();
    const again = openStudioDb(root);
    assert.deepEqual(again.allSettings(), { checkpointEveryMinutes: 10, concurrency: { cpu: 2 } });
    assert.equal(again.getSetting('missing'), undefined);
    assert.deepEqual(again.listAdapters(), [{ id: 'ad', runId: 'ra', name: 'A', path: '/a', createdAt: 'x', summary: { r: 8 } }]);
    again.deleteRun('ra');
    assert.equal(again.listAdapters()[0].runId, null, 'an adapter outlives its run');
    again.close();
  });
});

describe('two connections (the CLI and a running studio)', () => {
  test('a command is taken exactly once, and its result is seen by the other connection', () => {
    const root = home();
    const studio = openStudioDb(root);
    const cli = openStudioDb(root);
    studio.insertRun(newRunRecord(summary('c')));
    const cmd = cli.enqueueCommand('c', 'pause', 'cli');
    const taken = studio.takeCommands();
    assert.deepEqual(taken.map((c) => [c.id, c.action, c.runId]), [[cmd.id, 'pause', 'c']]);
    assert.deepEqual(studio.takeCommands(), []);
    assert.deepEqual(cli.takeCommands(), []);
    assert.equal(cli.withdrawCommand(cmd.id, 'too late'), false, 'a taken command cannot be withdrawn');
    studio.completeCommand(cmd.id, true, 'paused');
    const seen = cli.getCommand(cmd.id);
    assert.equal(seen?.ok, true);
    assert.equal(seen?.result, 'paused');
    const other = cli.enqueueCommand('c', 'cancel', 'cli');
    assert.equal(cli.withdrawCommand(other.id, 'gave up'), true);
    assert.deepEqual(studio.takeCommands(), []);
    studio.close();
    cli.close();
  });

  test('instances: a live one is seen, a dead pid is cleaned up', () => {
    const db = openStudioDb(home());
    db.registerInstance({ id: 'me', kind: 'web' });
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    db.registerInstance({ id: 'dead', kind: 'electron', pid: Number(dead.stdout) });
    assert.deepEqual(db.liveInstances().map((i) => i.id), ['me']);
    assert.deepEqual(db.instances().map((i) => i.id), ['me']);
    assert.deepEqual(db.liveInstances(15_000, Date.now() + 60_000), [], 'a stale heartbeat is not live');
    db.close();
  });
});

describe('schema versions', () => {
  test('a version-1 database is upgraded in place, its runs kept', () => {
    const root = home();
    const Database = createRequire(import.meta.url)('better-sqlite3') as new (f: string) => { exec(s: string): void; pragma(s: string): void; prepare(s: string): { run(...a: unknown[]): void }; close(): void };
    mkdirSync(root, { recursive: true });
    const raw = new Database(dbPathOf(root));
    raw.exec(MIGRATIONS[0]);
    raw.pragma('user_version = 1');
    raw.prepare("INSERT INTO runs (id, name, config, state, created_at, updated_at, total_steps) VALUES ('old', 'old run', '{}', 'completed', 'a', 'b', 5)").run();
    raw.close();
    const db = openStudioDb(root);
    assert.equal(db.schemaVersion, MIGRATIONS.length);
    assert.equal(db.getRun('old')?.name, 'old run');
    db.setSetting('k', 1);
    db.close();
  });

  test('a database from a newer studio is refused, not rewritten', () => {
    const root = home();
    const db = openStudioDb(root);
    db.db.pragma(`user_version = ${SCHEMA_VERSION + 5}`);
    db.close();
    assert.throws(() => openStudioDb(root), new RegExp(`schema version ${SCHEMA_VERSION + 5}, written by a newer LoRA Studio; this one understands up to version ${SCHEMA_VERSION}`));
  });

  test('a read-only open of a missing database says which file', () => {
    assert.throws(() => new StudioDb(join(tmp, 'nowhere', 'studio.db'), { readonly: true }), /cannot open the studio database .*nowhere/);
  });
});
