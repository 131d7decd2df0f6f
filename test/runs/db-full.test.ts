/**
 * The studio database fills up in the middle of a run (SQLite answers SQLITE_FULL, as on a full disk; here the
 * database's own size limit, PRAGMA max_page_count, is set to the pages it has, on the studio's real connection).
 * The run must not stay "executing" with its slot held: it checkpoints, stops and fails, naming the database and
 * why; the next queued run gets the slot; and once there is room again the failure is written to the database and
 * the run resumes from its checkpoint to the end.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { RunConfigInput, RunSummary, StudioEventMessage } from '../../common/protocol.ts';
import { startEngine } from '../../engine/engine-host.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { AdapterStore } from '../../host/services/adapter-store.ts';
import { openStudioDb } from '../../host/services/db.ts';
import { openHome } from '../../host/services/home.ts';
import { RunManager } from '../../host/services/run-manager.ts';
import { RunStore } from '../../host/services/run-store.ts';
import { SettingsStore } from '../../host/services/settings.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lora-dbfull-'));
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(tmp, { recursive: true, force: true });
});

function config(steps: number, name: string): RunConfigInput {
  return {
    name,
    modelPath: SAMPLE_MODEL_DIR,
    datasetPath: SAMPLE_DATASET_PATH,
    lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'] },
    train: { learningRate: 3e-3, steps, batchSize: 2, maxSeqLen: 64, checkpointEverySteps: 2, seed: 1 },
  };
}

test('SQLITE_FULL mid-run: the run fails saying so, frees its slot, the queue moves on, and it resumes later', async () => {
  const home = openHome(join(tmp, 'home'));
  const db = openStudioDb(home.root);
  const settings = new SettingsStore(db);
  const events: StudioEventMessage[] = [];
  const listeners: ((m: StudioEventMessage) => void)[] = [];
  const manager = new RunManager({
    store: new RunStore(home, db),
    adapters: new AdapterStore(home),
    emit: (event, data) => {
      const m = { event, data } as StudioEventMessage;
      events.push(m);
      for (const l of listeners) l(m);
    },
    startEngine: () => startEngine(),
    settings: () => settings.get(),
  });
  cleanups.push(async () => {
    await manager.close();
    db.close();
  });
  const pages = (): number => Number(db.db.pragma('page_count', { simple: true }));
  const room = (): void => void db.db.pragma('max_page_count = 1073741823');

  const a = await manager.start(config(80, 'a'));
  const b = await manager.start(config(3, 'b'));
  let failedSeen: RunSummary | null = null;
  let bStartedWhileAExecuting = false;
  listeners.push((m) => {
    if (m.event !== 'run.updated') return;
    const r = m.data as RunSummary;
    if (r.id === b.id && r.state === 'executing' && manager.get(a.id).state === 'executing') bStartedWhileAExecuting = true;
    if (r.id === a.id && r.state === 'failed' && !failedSeen) {
      failedSeen = r;
      // The user frees space on seeing the failure; from here on the database takes writes again.
      room();
    }
  });
  // Fill the database while a is training: after its second metric, no new page may be added.
  await new Promise<void>((resolve) => {
    let filled = false;
    listeners.push((m) => {
      if (!filled && m.event === 'run.metrics' && (m.data as { runId: string }).runId === a.id) {
        filled = true;
        db.db.pragma(`max_page_count = ${pages()}`);
        resolve();
      }
    });
  });
  await manager.whenIdle();

  assert.ok(failedSeen, 'run a was announced as failed');
  const failed = manager.get(a.id);
  assert.equal(failed.state, 'failed');
  const error = failed.error ?? '';
  // Which write meets the full database first (a metric or the checkpoint event) depends on the kernels' speed.
  assert.ok(
    [`metrics`, `checkpoint event`].some((what) => error.includes(`the studio database ${db.path} could not store this run's ${what}`)),
    error,
  );
  assert.match(error, /SQLITE_FULL|database or disk is full/);
  assert.match(error, /free disk space, then resume the run/);
  assert.ok(failed.step < 80, `stopped early (step ${failed.step})`);
  assert.equal(bStartedWhileAExecuting, false, 'b waited for a slot');
  // The next queued run got the slot and finished.
  assert.equal(manager.get(b.id).state, 'completed', manager.get(b.id).error ?? '');
  // The failure is in the database itself, not only in memory.
  assert.equal(db.getRun(a.id)?.state, 'failed');
  assert.ok(db.events(a.id).some((e) => e.level === 'error' && e.message.includes('could not store')), 'the event log says why');

  // Resumed with room again: it continues from its checkpoint and completes, with every step's metric stored once.
  const checkpointStep = db.getRun(a.id)?.checkpointStep ?? 0;
  assert.ok(checkpointStep >= 2, `a checkpoint was kept (step ${checkpointStep})`);
  manager.resume(a.id);
  await manager.whenIdle();
  const done = manager.get(a.id);
  assert.equal(done.state, 'completed', done.error ?? '');
  assert.deepEqual(manager.metrics(a.id).map((p) => p.step), Array.from({ length: 80 }, (_, i) => i + 1));
});
