/**
 * Where runs live: their records, state history, metrics and events in the studio database (db.ts), and one folder
 * per run (runs/<id>/) that the engine writes checkpoints/ and adapter/ into.
 *
 * Runs made before the database existed (runs/<id>/run.json + metrics.jsonl) are imported once, when the store
 * opens; one that was still going then is marked failed (it can be resumed from its checkpoints).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MetricPoint, RunState, RunSummary } from '../../common/protocol.ts';
import { newRunRecord, type RunRecord, type StudioDb } from './db.ts';
import type { StudioHome } from './home.ts';
import { isSafeId } from './ids.ts';
import { isRunState, isTerminal } from './run-state.ts';

/** Writes to a sibling file first, then renames, so a crash never leaves half a JSON file behind. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export class RunStore {
  readonly db: StudioDb;
  private readonly runsDir: string;

  constructor(home: StudioHome, db: StudioDb) {
    this.db = db;
    this.runsDir = home.runs;
    this.importLegacy();
  }

  /** Folder of a run: the engine writes checkpoints/ and adapter/ under it. */
  runDir(id: string): string {
    if (!isSafeId(id)) throw new Error(`invalid run id ${JSON.stringify(id)}`);
    return join(this.runsDir, id);
  }

  ensureRunDir(id: string): string {
    const dir = this.runDir(id);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new Error(`cannot create the run folder ${dir}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    return dir;
  }

  /**
   * runs/<id>/run.json: the run as the UI sees it (name, notes, tags, config, state), next to its checkpoints, so
   * the folder describes itself (and a studio that lost its database imports it again). Written on every state
   * change and every rename; a folder that is gone (the run was deleted) is not made again.
   */
  writeRunJson(run: RunRecord): void {
    const dir = this.runDir(run.id);
    if (!existsSync(dir)) return;
    try {
      writeFileAtomic(join(dir, 'run.json'), `${JSON.stringify(RunStore.summary(run), null, 2)}\n`);
    } catch {
      // The database is the record; a full disk here must not fail the run (disk-full.test.ts).
    }
  }

  get(id: string): RunRecord | null {
    return isSafeId(id) ? this.db.getRun(id) : null;
  }

  /** What the UI gets: the record without internals, with the queue position filled in. */
  static summary(run: RunRecord, queuePosition: number | null = null): RunSummary {
    return {
      id: run.id,
      name: run.name,
      notes: run.notes,
      tags: [...run.tags],
      state: run.state,
      config: run.config,
      createdAt: run.createdAt,
      updatedAt: run.updatedAt,
      step: run.step,
      totalSteps: run.totalSteps,
      lastLoss: run.lastLoss,
      tokensPerSecond: run.tokensPerSecond,
      etaMs: run.etaMs,
      error: run.error,
      adapterId: run.adapterId,
      backend: run.backend,
      priority: run.priority,
      device: run.device,
      queuePosition,
      resumeCount: run.resumeCount,
      checkpointStep: run.checkpointStep,
      checkpointPath: run.checkpointPath,
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
    };
  }

  private importLegacy(): void {
    let names: string[];
    try {
      names = readdirSync(this.runsDir);
    } catch {
      return;
    }
    for (const name of names) {
      const file = join(this.runsDir, name, 'run.json');
      if (!isSafeId(name) || !existsSync(file) || this.db.getRun(name)) continue;
      let run: RunSummary;
      try {
        run = JSON.parse(readFileSync(file, 'utf8')) as RunSummary;
      } catch {
        continue; // an unreadable run.json hides that run rather than taking the studio down
      }
      if (!run || run.id !== name || !isRunState(run.state)) continue;
      const state: RunState = run.state;
      this.db.tx(() => {
        this.db.insertRun(newRunRecord({ ...run, state }), `imported from ${file}`);
        this.db.appendMetrics(name, readJsonl(join(this.runsDir, name, 'metrics.jsonl')));
        if (!isTerminal(state) && state !== 'paused') {
          this.db.transition(name, 'failed', {
            reason: 'interrupted before the studio database existed',
            patch: { etaMs: null, error: `the studio stopped while this run was ${state}; resume it to continue from its last checkpoint` },
          });
        }
      });
    }
  }
}

function readJsonl(file: string): MetricPoint[] {
  if (!existsSync(file)) return [];
  const byStep = new Map<number, MetricPoint>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      const p = JSON.parse(line) as MetricPoint;
      if (Number.isInteger(p.step)) byStep.set(p.step, p);
    } catch {
      // a line cut short by a crash mid-append; every complete line is still good
    }
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}
