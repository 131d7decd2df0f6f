/**
 * A damaged studio.db (overwritten, cut short, emptied) or one unreadable row: the studio still starts, says what
 * happened and where, keeps the damaged file aside as studio.db.broken-<time>, and rebuilds the runs list from the
 * run folders (runs/<id>/run.json, written at every state change).
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { RunConfigInput, RunSummary } from '../../common/protocol.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { dbPathOf, type SqliteDatabase } from '../../host/services/db.ts';
import { createStudioServices, type StudioServices } from '../../host/services/studio-services.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lora-dbrecover-'));
const opened: StudioServices[] = [];
after(async () => {
  for (const s of opened) await s.close();
  rmSync(tmp, { recursive: true, force: true });
});
const open = (home: string): StudioServices => {
  const s = createStudioServices({ home, host: 'web' });
  opened.push(s);
  return s;
};

function config(steps: number, name: string): RunConfigInput {
  return {
    name,
    modelPath: SAMPLE_MODEL_DIR,
    datasetPath: SAMPLE_DATASET_PATH,
    lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'] },
    train: { learningRate: 3e-3, steps, batchSize: 2, maxSeqLen: 64, checkpointEverySteps: 1 },
  };
}

/** A studio home with one completed run and one that was executing when the studio closed. */
const original = join(tmp, 'original');
let done: RunSummary;
let interrupted: RunSummary;
before(async () => {
  const s = createStudioServices({ home: original, host: 'web' });
  const a = await s.handle('runs.start', { config: config(2, 'finished one') });
  await s.whenIdle();
  done = await s.handle('runs.get', { id: a.id });
  assert.equal(done.state, 'completed', done.error ?? '');
  const b = await s.handle('runs.start', { config: config(500, 'long one') });
  for (let r = b; r.step < 2; r = await s.handle('runs.get', { id: b.id })) await new Promise((res) => setTimeout(res, 20));
  await s.close();
  // Closing left it queued to continue at the next start; its folder's run.json says so.
  interrupted = JSON.parse(readFileSync(join(original, 'runs', b.id, 'run.json'), 'utf8')) as RunSummary;
  assert.equal(interrupted.state, 'queuing');
});

function copyHome(name: string): string {
  const home = join(tmp, name);
  cpSync(original, home, { recursive: true });
  return home;
}

const damages: [string, (file: string) => void, RegExp][] = [
  ['overwritten with other bytes', (f) => writeFileSync(f, Buffer.from('this is a text file, not a database '.repeat(200))), /not a database/],
  ['cut short', (f) => truncateSync(f, Math.floor(readFileSync(f).length * 0.4)), /malformed|integrity check/],
  ['emptied to zero bytes', (f) => truncateSync(f, 0), /empty \(0 bytes\)/],
];

for (const [what, damage, why] of damages) {
  test(`a studio.db ${what}: the studio starts, keeps it aside, and rebuilds the runs from their folders`, async () => {
    const home = copyHome(what.replace(/\W+/g, '-'));
    const file = dbPathOf(home);
    damage(file);
    const damaged = readFileSync(file);
    const s = open(home);
    assert.equal(s.notices.length, 1, s.notices.join('\n'));
    const notice = s.notices[0];
    assert.ok(notice.includes(`the studio database ${file} could not be used`), notice);
    assert.match(notice, why);
    const kept = /kept as (\S+) and/.exec(notice)?.[1] ?? '';
    assert.ok(kept.startsWith(`${file}.broken-`), notice);
    assert.ok(readFileSync(kept).equals(damaged), 'the damaged file is kept as it was');
    assert.match(notice, /2 runs were rebuilt from their folders/);
    const runs = await s.handle('runs.list', {});
    const finished = runs.find((r) => r.id === done.id);
    assert.ok(finished, 'the finished run is listed again');
    assert.equal(finished.state, 'completed');
    assert.equal(finished.name, 'finished one');
    assert.deepEqual(finished.config, done.config);
    assert.equal(finished.adapterId, done.adapterId);
    const long = runs.find((r) => r.id === interrupted.id);
    assert.ok(long, 'the interrupted run is listed again');
    assert.equal(long.state, 'failed');
    assert.match(long.error ?? '', /the studio stopped while this run was queuing; resume it to continue from its last checkpoint/);
    assert.ok((long.checkpointStep ?? 0) >= 2, 'its checkpoint is known again');
    // The new database works: a setting sticks across a restart, with no notice the second time.
    await s.handle('settings.set', { checkpointEverySteps: 9 });
    await s.close();
    const again = open(home);
    assert.deepEqual(again.notices, []);
    assert.equal((await again.handle('settings.get', {})).checkpointEverySteps, 9);
    assert.equal((await again.handle('runs.list', {})).length, 2);
  });
}

test('one unreadable row does not stop start-up; the others are listed and the bad one is named', async () => {
  const home = copyHome('bad-rows');
  const Database = createRequire(import.meta.url)('better-sqlite3') as new (file: string) => SqliteDatabase;
  const raw = new Database(dbPathOf(home));
  raw.prepare("UPDATE runs SET state = 'exploded' WHERE id = ?").run(interrupted.id);
  raw.prepare("INSERT INTO runs (id, name, config, state, created_at, updated_at, total_steps) VALUES ('run-bad-json', 'x', '{not json', 'completed', '2026-01-01', '2026-01-01', 3)").run();
  raw.close();
  const s = open(home);
  const runs = await s.handle('runs.list', {});
  assert.deepEqual(runs.map((r) => r.id), [done.id]);
  const file = dbPathOf(home);
  assert.ok(s.notices.some((n) => n.includes(`${file}: run ${interrupted.id} has an unknown state "exploded"`)), s.notices.join('\n'));
  assert.ok(s.notices.some((n) => n.includes(`${file}: run run-bad-json has a config that is not valid JSON`)), s.notices.join('\n'));
  assert.ok(existsSync(file) && !s.notices.some((n) => n.includes('broken-')), 'a bad row is not a damaged file');
  // The studio works: a new setting is stored.
  await s.handle('settings.set', { checkpointEverySteps: 4 });
  assert.equal((await s.handle('settings.get', {})).checkpointEverySteps, 4);
});
