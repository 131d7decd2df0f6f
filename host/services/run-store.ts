/**
 * Where runs live: their records, state history, metrics and events in the studio database (db.ts), and one folder
 * per run (runs/<id>/) that the engine writes checkpoints/ and adapter/ into, with run.json: the run's record as of
 * its last state change, so the runs list can be rebuilt from the folders when the database is lost or damaged.
 *
 * Run folders the database does not know (runs/<id>/run.json, + metrics.jsonl from before the database existed)
 * are imported when the store opens; one that was still going then is marked failed (it can be resumed from its
 * checkpoints).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MetricPoint, RunState, RunSummary } from '../../common/protocol.ts';
import { decodeJson, encodeJson, newRunRecord, type RunRecord, type StudioDb } from './db.ts';
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

  /** How many run folders were imported when the store opened. */
  readonly imported: number;

  constructor(home: StudioHome, db: StudioDb, importReason = 'interrupted before the studio database existed') {
    this.db = db;
    this.runsDir = home.runs;
    this.imported = this.importRunFolders(importReason);
  }

  /**
   * Writes the run's record to runs/<id>/run.json (atomically), on every state change and every rename: the folder
   * describes itself (name, notes, tags, config, state) and a studio that lost its database rebuilds its runs list
   * from these. Best effort: a full disk or a vanished folder (a deleted run) must not stop the state change it
   * follows, and a deleted run's folder is not made again; the database stays the truth.
   */
  writeRunFile(run: RunRecord): boolean {
    const file = join(this.runDir(run.id), 'run.json');
    try {
      if (!existsSync(this.runDir(run.id))) return false;
      writeFileAtomic(file, `${encodeJson(run, 2)}\n`);
      return true;
    } catch (e) {
      console.warn(`lora-studio: cannot write ${file}: ${e instanceof Error ? e.message : String(e)}`);
      return false;
    }
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

  private importRunFolders(reason: string): number {
    let names: string[];
    let count = 0;
    try {
      names = readdirSync(this.runsDir);
    } catch {
      return 0;
    }
    for (const name of names) {
      const file = join(this.runsDir, name, 'run.json');
      if (!isSafeId(name) || !existsSync(file) || this.db.hasRun(name)) continue;
      let run: RunSummary;
      try {
        run = decodeJson(readFileSync(file, 'utf8')) as RunSummary;
        if (!isRunFile(run, name)) throw new Error(`not the record of run ${name}`);
      } catch (e) {
        // An unreadable run.json hides that run rather than taking the studio down.
        console.warn(`lora-studio: ${file} is not readable (${e instanceof Error ? e.message : String(e)}); that run is left out of the list`);
        continue;
      }
      const state: RunState = run.state;
      try {
        this.db.tx(() => {
          this.db.insertRun(newRunRecord({ ...run, state, queuePosition: null }), `imported from ${file}`);
          this.db.appendMetrics(name, readJsonl(join(this.runsDir, name, 'metrics.jsonl')));
          if (!isTerminal(state) && state !== 'paused') {
            this.db.transition(name, 'failed', {
              reason,
              patch: { etaMs: null, error: `the studio stopped while this run was ${state}; resume it to continue from its last checkpoint` },
            });
          }
        });
        count++;
      } catch (e) {
        console.warn(`lora-studio: cannot import ${file}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    return count;
  }
}

/** Enough of a run record to list and resume it: its id (the folder's name), a known state, a config, a name. */
function isRunFile(v: unknown, id: string): v is RunSummary {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return r.id === id && isRunState(r.state) && typeof r.name === 'string' && typeof r.config === 'object' && r.config !== null && typeof r.createdAt === 'string' && typeof r.updatedAt === 'string' && Number.isInteger(r.totalSteps) && Number.isInteger(r.step);
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
