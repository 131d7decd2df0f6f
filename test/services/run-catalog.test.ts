/**
 * Managing runs through the services, on a real studio home and database: a generated name that tells runs apart,
 * rename/notes/tags kept in the database and the run's run.json (and surviving a restart), refusals naming the
 * field by its label, delete refused while a run trains (naming why), a dry run that measures, a delete that
 * removes the folder and every row and tells other windows, the adapter kept or removed, and adapter delete.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { RunConfigInput, RunSummary, StudioEventMessage } from '../../common/protocol.ts';
import { runMatches } from '../../common/run-info.ts';
import { deleteRunCli, updateRun } from '../../host/cli/runs.ts';
import { dbPathOf, MIGRATIONS, openStudioDb, SCHEMA_VERSION } from '../../host/services/db.ts';
import { createStudioServices } from '../../host/services/studio-services.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { refusal, tempStudios } from '../helpers/temp-studio.ts';

const { tmp, services } = tempStudios('lora-catalog-');

function config(steps: number, name?: string): RunConfigInput {
  return {
    ...(name ? { name } : {}),
    modelPath: SAMPLE_MODEL_DIR,
    datasetPath: SAMPLE_DATASET_PATH,
    lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'] },
    train: { learningRate: 3e-3, steps, batchSize: 2, maxSeqLen: 96 },
  };
}

async function until(what: string, fn: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('names, notes and tags', () => {
  test('generated names differ; rename, notes and tags go to the database and run.json, and survive a restart', async () => {
    const s = services('meta');
    const a = await s.handle('runs.start', { config: config(2) });
    const b = await s.handle('runs.start', { config: config(2) });
    await s.whenIdle();
    assert.notEqual(a.name, b.name, 'two runs with the same settings must not share a generated name');
    assert.equal(b.name, `${a.name} (2)`);

    const events: StudioEventMessage[] = [];
    s.onEvent((m) => events.push(m));
    const renamed = await s.handle('runs.update', { id: a.id, name: '  baseline lr 3e-3 ', notes: 'first try\nloss flat after 2 steps', tags: ['baseline', 'smoke', 'Baseline'] });
    assert.equal(renamed.name, 'baseline lr 3e-3');
    assert.equal(renamed.notes, 'first try\nloss flat after 2 steps');
    assert.deepEqual(renamed.tags, ['baseline', 'smoke'], 'tags are kept once each, compared without case');
    assert.ok(events.some((m) => m.event === 'run.updated' && (m.data as RunSummary).id === a.id && (m.data as RunSummary).name === 'baseline lr 3e-3'));
    const file = JSON.parse(readFileSync(join(s.home.runs, a.id, 'run.json'), 'utf8')) as RunSummary;
    assert.equal(file.name, 'baseline lr 3e-3');
    assert.deepEqual(file.tags, ['baseline', 'smoke']);
    assert.equal(file.state, 'completed');
    // Only the tags change: the name stays.
    assert.equal((await s.handle('runs.update', { id: a.id, tags: [] })).name, 'baseline lr 3e-3');

    const empty = await refusal(() => s.handle('runs.update', { id: a.id, name: '   ' }));
    assert.equal(empty.info.field, 'name');
    assert.match(empty.info.message, /Run name cannot be empty/);
    const comma = await refusal(() => s.handle('runs.update', { id: a.id, tags: ['a,b'] }));
    assert.match(comma.info.message, /a tag cannot hold a comma/);
    assert.match((await refusal(() => s.handle('runs.update', { id: a.id }))).info.message, /nothing to change/);
    assert.match((await refusal(() => s.handle('runs.update', { id: 'run-nope', name: 'x' }))).info.message, /no run with id "run-nope"/);

    await s.handle('runs.update', { id: b.id, tags: ['sweep'] });
    const list = await s.handle('runs.list', {});
    assert.deepEqual(list.filter((r) => runMatches(r, { tags: ['SWEEP'] })).map((r) => r.id), [b.id]);
    assert.deepEqual(list.filter((r) => runMatches(r, { text: 'baseline 3e-3' })).map((r) => r.id), [a.id]);

    await s.close();
    const again = createStudioServices({ home: s.home, host: 'web' });
    try {
      const back = await again.handle('runs.get', { id: a.id });
      assert.equal(back.name, 'baseline lr 3e-3');
      assert.equal(back.notes, 'first try\nloss flat after 2 steps');
      assert.deepEqual((await again.handle('runs.get', { id: b.id })).tags, ['sweep']);
    } finally {
      await again.close();
    }
  });

  test('a database of schema version 2 is upgraded: its runs get empty notes and tags', () => {
    const root = join(tmp, 'schema');
    mkdirSync(root, { recursive: true });
    const Database = createRequire(import.meta.url)('better-sqlite3') as new (file: string) => { exec(sql: string): void; pragma(s: string): unknown; prepare(sql: string): { run(...a: unknown[]): unknown }; close(): void };
    const old = new Database(dbPathOf(root));
    old.exec(MIGRATIONS[0]!);
    old.exec(MIGRATIONS[1]!);
    old.pragma('user_version = 2');
    const now = new Date().toISOString();
    old.prepare("INSERT INTO runs (id, name, config, state, created_at, updated_at, total_steps) VALUES ('old-run', 'from before', ?, 'completed', ?, ?, 5)").run(JSON.stringify({ ...config(5), datasetFormat: 'auto', backend: 'cpu' }), now, now);
    old.close();
    const db = openStudioDb(root);
    try {
      assert.equal(db.schemaVersion, SCHEMA_VERSION);
      const run = db.requireRun('old-run');
      assert.equal(run.name, 'from before');
      assert.equal(run.notes, '');
      assert.deepEqual(run.tags, []);
      assert.deepEqual(db.updateRun('old-run', { tags: ['kept'] }).tags, ['kept']);
    } finally {
      db.close();
    }
  });
});

describe('delete', () => {
  test('refused while training (naming why); a dry run measures; delete removes folder, rows and tells every window', async () => {
    const s = services('delete');
    const long = await s.handle('runs.start', { config: config(500, 'long one') });
    await until('the long run to train a step', async () => (await s.handle('runs.get', { id: long.id })).step >= 1);
    const busy = await refusal(() => s.handle('runs.delete', { id: long.id }));
    assert.equal(busy.info.field, 'id');
    assert.match(busy.info.message, /run "long one" \(run-[^)]+\) is training \(step \d+ of 500\); cancel or pause it first/);
    assert.ok(existsSync(join(s.home.runs, long.id)), 'a refused delete removes nothing');
    await s.handle('runs.cancel', { id: long.id });
    await s.whenIdle();

    const done = await s.handle('runs.start', { config: config(2, 'keeper') });
    await s.whenIdle();
    const finished = await s.handle('runs.get', { id: done.id });
    assert.equal(finished.state, 'completed', finished.error ?? '');
    const adapterId = finished.adapterId;
    assert.ok(adapterId);

    const dry = await s.handle('runs.delete', { id: done.id, dryRun: true });
    assert.equal(dry.deleted, false);
    assert.ok(dry.runBytes > 0, 'the run folder holds the engine output');
    assert.equal(dry.adapterId, adapterId);
    assert.ok(dry.adapterBytes > 0);
    assert.equal(dry.freedBytes, dry.runBytes, 'the adapter stays unless asked');
    assert.ok(existsSync(join(s.home.runs, done.id)));

    const events: StudioEventMessage[] = [];
    s.onEvent((m) => events.push(m));
    const gone = await s.handle('runs.delete', { id: done.id });
    assert.equal(gone.deleted, true);
    assert.equal(gone.freedBytes, dry.runBytes);
    assert.equal(existsSync(join(s.home.runs, done.id)), false);
    assert.match((await refusal(() => s.handle('runs.get', { id: done.id }))).info.message, /no run with id/);
    assert.ok(events.some((m) => m.event === 'run.removed' && (m.data as { id: string }).id === done.id));
    const db = openStudioDb(s.home.root);
    try {
      for (const table of ['runs', 'metrics', 'events', 'state_history']) {
        const col = table === 'runs' ? 'id' : 'run_id';
        assert.equal((db.db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${col} = ?`).get(done.id) as { n: number }).n, 0, `${table} rows of the run`);
      }
    } finally {
      db.close();
    }
    // The adapter outlives its run, no longer linked to it.
    const kept = (await s.handle('adapters.list', {})).find((a) => a.id === adapterId);
    assert.ok(kept);
    assert.equal(kept.runId, null);

    // Deleting the cancelled run with its (absent) adapter, and a run with its adapter.
    assert.equal((await s.handle('runs.delete', { id: long.id, deleteAdapter: true })).adapterId, null);
    const both = await s.handle('runs.start', { config: config(2, 'both go') });
    await s.whenIdle();
    const bothAdapter = (await s.handle('runs.get', { id: both.id })).adapterId;
    assert.ok(bothAdapter);
    const r = await s.handle('runs.delete', { id: both.id, deleteAdapter: true });
    assert.equal(r.adapterDeleted, true);
    assert.equal(r.freedBytes, r.runBytes + r.adapterBytes);
    assert.equal(existsSync(join(s.home.adapters, bothAdapter)), false);
    assert.ok(!(await s.handle('adapters.list', {})).some((a) => a.id === bothAdapter));
  });

  test('an adapter is deleted on its own: dry run measures, delete removes its folder; a second delete names the id', async () => {
    const s = services('adapter-delete');
    const run = await s.handle('runs.start', { config: config(2) });
    await s.whenIdle();
    const adapterId = (await s.handle('runs.get', { id: run.id })).adapterId;
    assert.ok(adapterId);
    const size = (await s.handle('adapters.list', {})).find((a) => a.id === adapterId)?.sizeBytes;
    const dry = await s.handle('adapters.delete', { id: adapterId, dryRun: true });
    assert.equal(dry.freedBytes, size);
    assert.ok(existsSync(join(s.home.adapters, adapterId)));
    const events: StudioEventMessage[] = [];
    s.onEvent((m) => events.push(m));
    const gone = await s.handle('adapters.delete', { id: adapterId });
    assert.equal(gone.deleted, true);
    assert.ok((gone.freedBytes ?? 0) >= (size ?? 0));
    assert.equal(existsSync(join(s.home.adapters, adapterId)), false);
    assert.ok(events.some((m) => m.event === 'adapters.changed' && (m.data as { id: string }[]).every((a) => a.id !== adapterId)));
    assert.match((await refusal(() => s.handle('adapters.delete', { id: adapterId }))).info.message, /no adapter with id/);
    // The run stays, its adapter shown as gone.
    assert.equal((await s.handle('runs.get', { id: run.id })).state, 'completed');
  });
});

describe('the CLI and a running studio', () => {
  test('rename and delete from the command line go through the studio, which tells its windows; delete while training is refused', async () => {
    const s = services('cli-live');
    const home = s.home.root;
    const out = { stdout: { write: () => true }, stderr: { write: () => true } };
    const events: StudioEventMessage[] = [];
    s.onEvent((m) => events.push(m));
    const long = await s.handle('runs.start', { config: config(500, 'cli long') });
    await until('a step', async () => (await s.handle('runs.get', { id: long.id })).step >= 1);
    const renamed = await updateRun(long.id, { name: 'renamed while training' }, { home }, out);
    assert.equal(renamed.via, 'studio');
    assert.equal(renamed.run.name, 'renamed while training');
    assert.ok(events.some((m) => m.event === 'run.updated' && (m.data as RunSummary).name === 'renamed while training'));
    await assert.rejects(deleteRunCli(long.id, { home }, out), /run "renamed while training" .* is training \(step \d+ of 500\)/);
    await s.handle('runs.cancel', { id: long.id });
    await s.whenIdle();
    const gone = await deleteRunCli(long.id, { home }, out);
    assert.equal(gone.via, 'studio');
    assert.match(gone.message, /deleted: .* freed/);
    assert.ok(events.some((m) => m.event === 'run.removed' && (m.data as { id: string }).id === long.id));
    assert.deepEqual(await s.handle('runs.list', {}), []);
  });
});
