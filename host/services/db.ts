/**
 * The studio database: runs, their configs, state history, per-step metrics, events, adapters, settings, and the
 * command channel the CLI uses to reach a running studio. One SQLite file (`<home>/studio.db`) through
 * better-sqlite3, in WAL mode so the desktop app, the web host and the CLI can read while one of them writes.
 *
 * Packaging: better-sqlite3 is a native module. Under Node 20 (tests, CLI, web host) the prebuilt binary in
 * node_modules works as is; inside Electron it must be rebuilt against Electron's Node ABI (`electron-rebuild`),
 * which electron-builder does by itself when it packages the app (npmRebuild, on by default). Version 12.x: 13.x
 * needs Node 22.
 *
 * The schema is versioned with PRAGMA user_version; `MIGRATIONS[i]` takes a database from version i to i + 1, each in
 * its own transaction. A database written by a newer studio (higher version) is refused, never rewritten.
 */
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { EvalSample, MetricPoint, RunConfig, RunState, RunSummary } from '../../common/protocol.ts';
import { assertTransition, isRunState } from './run-state.ts';

// ---------------------------------------------------------------------------------------------------------------
// The part of better-sqlite3 we use (the package ships no types, and @types/better-sqlite3 is not installed).

interface RunResult {
  changes: number;
  lastInsertRowid: number | bigint;
}
export interface SqliteStatement {
  run(...params: unknown[]): RunResult;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  exec(sql: string): unknown;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
  close(): unknown;
  readonly open: boolean;
  readonly inTransaction: boolean;
}
type SqliteConstructor = new (file: string, options?: { readonly?: boolean; fileMustExist?: boolean; timeout?: number }) => SqliteDatabase;

let sqliteCtor: SqliteConstructor | null = null;
function sqlite(): SqliteConstructor {
  if (!sqliteCtor) {
    try {
      sqliteCtor = createRequire(import.meta.url)('better-sqlite3') as SqliteConstructor;
    } catch (e) {
      throw new Error(
        `cannot load the SQLite driver better-sqlite3 (${e instanceof Error ? e.message : String(e)}); ` +
          'run npm install, and inside Electron rebuild it for Electron (electron-builder does this when packaging)',
        { cause: e },
      );
    }
  }
  return sqliteCtor;
}

// ---------------------------------------------------------------------------------------------------------------
// Schema

/** MIGRATIONS[i] moves a database from schema version i to i + 1. Append only; never edit a released one. */
export const MIGRATIONS: readonly string[] = [
  // 1: runs, their history, metrics and events.
  `
  CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    device TEXT NOT NULL DEFAULT 'cpu',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    queue_seq INTEGER,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER NOT NULL,
    last_loss REAL,
    tokens_per_second REAL,
    eta_ms INTEGER,
    error TEXT,
    adapter_id TEXT,
    backend TEXT,
    resume_count INTEGER NOT NULL DEFAULT 0,
    checkpoint_step INTEGER,
    checkpoint_path TEXT,
    started_at TEXT,
    finished_at TEXT
  );
  CREATE INDEX runs_by_state ON runs(state);
  CREATE TABLE state_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    from_state TEXT,
    to_state TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT
  );
  CREATE INDEX state_history_by_run ON state_history(run_id, id);
  CREATE TABLE metrics (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (run_id, step)
  );
  CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    level TEXT NOT NULL,
    step INTEGER,
    message TEXT NOT NULL
  );
  CREATE INDEX events_by_run ON events(run_id, id);
  `,
  // 2: adapters, settings, and the channel through which the CLI reaches a running studio.
  `
  CREATE TABLE adapters (
    id TEXT PRIMARY KEY,
    run_id TEXT REFERENCES runs(id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at TEXT NOT NULL,
    summary TEXT NOT NULL
  );
  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  CREATE TABLE commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    action TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL,
    taken_at TEXT,
    done_at TEXT,
    ok INTEGER,
    result TEXT
  );
  CREATE INDEX commands_open ON commands(done_at, id);
  CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    url TEXT
  );
  `,
  // 3: what a person writes about a run (notes, tags as a JSON list), and the arguments of a CLI command (rename…).
  `
  ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT '';
  ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
  ALTER TABLE commands ADD COLUMN args TEXT;
  `,
  // 4: the answers to a run's fixed evaluation prompts (config.evalPrompts), one per step and prompt.
  `
  CREATE TABLE eval_samples (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    prompt_index INTEGER NOT NULL,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    stop TEXT NOT NULL,
    UNIQUE (run_id, step, prompt_index)
  );
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** The database file of a studio home folder. */
export function dbPathOf(homeRoot: string): string {
  return join(homeRoot, 'studio.db');
}

// ---------------------------------------------------------------------------------------------------------------
// JSON that keeps NaN and ±Infinity (a skipped step has gradNorm NaN; plain JSON would turn it into null).

const NON_FINITE: Record<string, number> = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY };
const NON_FINITE_TAG = '\u0000num:';

export function encodeJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? `${NON_FINITE_TAG}${String(v)}` : v), indent);
}

export function decodeJson(text: string): unknown {
  return JSON.parse(text, (_k, v: unknown) => (typeof v === 'string' && v.startsWith(NON_FINITE_TAG) ? (NON_FINITE[v.slice(NON_FINITE_TAG.length)] ?? v) : v));
}

// ---------------------------------------------------------------------------------------------------------------
// Records

/** A run as the database holds it: what the UI sees plus what the queue and recovery need. */
export interface RunRecord extends RunSummary {
  notes: string;
  tags: string[];
  /** Higher runs first; equal priorities in the order they were queued. */
  priority: number;
  /** The device the run executes on ('cpu', 'webgpu:0' …); concurrency is counted per device. */
  device: string;
  /** Order of joining the queue (ties of priority); null when not waiting. */
  queueSeq: number | null;
  /** How many times the run continued from a checkpoint (crash recovery or resume after a pause). */
  resumeCount: number;
  checkpointStep: number | null;
  checkpointPath: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** Everything of a run but its id and state, which change only through insertRun/transition. */
export type RunPatch = Partial<Omit<RunRecord, 'id' | 'state' | 'createdAt' | 'queuePosition'>>;

export interface StateChange {
  id: number;
  runId: string;
  from: RunState | null;
  to: RunState;
  at: string;
  reason: string | null;
}

export type EventLevel = 'info' | 'warn' | 'error';
export interface RunEventRecord {
  id: number;
  runId: string;
  at: string;
  level: EventLevel;
  step: number | null;
  message: string;
}

export interface AdapterRecord {
  id: string;
  runId: string | null;
  name: string;
  path: string;
  createdAt: string;
  /** The AdapterSummary (or any JSON the adapter store wants back). */
  summary: unknown;
}

export const COMMAND_ACTIONS = ['cancel', 'pause', 'resume', 'stop-save'] as const;
/** Commands with arguments (a new name, tags) or that change more than the state; not one CLI verb each in a loop. */
export const MANAGE_ACTIONS = ['update', 'delete'] as const;
export type CommandAction = (typeof COMMAND_ACTIONS)[number] | (typeof MANAGE_ACTIONS)[number];
export interface CommandRecord {
  id: number;
  runId: string;
  action: CommandAction;
  /** The command's arguments (JSON), checked by whoever carries it out; null when it takes none. */
  args: unknown;
  source: string;
  createdAt: string;
  takenAt: string | null;
  doneAt: string | null;
  ok: boolean | null;
  /** The run's state after the command, or the reason it was refused. */
  result: string | null;
}

export interface InstanceRecord {
  id: string;
  pid: number;
  host: string;
  kind: string;
  startedAt: string;
  heartbeatAt: string;
  url: string | null;
}

// Column ↔ field names of runs (everything but config/state, which need decoding).
// queuePosition is computed from the queue, never stored.
const RUN_COLUMNS: Record<Exclude<keyof RunRecord, 'config' | 'state' | 'queuePosition' | 'tags'>, string> = {
  id: 'id',
  name: 'name',
  notes: 'notes',
  priority: 'priority',
  device: 'device',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  queueSeq: 'queue_seq',
  step: 'step',
  totalSteps: 'total_steps',
  lastLoss: 'last_loss',
  tokensPerSecond: 'tokens_per_second',
  etaMs: 'eta_ms',
  error: 'error',
  adapterId: 'adapter_id',
  backend: 'backend',
  resumeCount: 'resume_count',
  checkpointStep: 'checkpoint_step',
  checkpointPath: 'checkpoint_path',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
};

type Row = Record<string, unknown>;

function asRow(value: unknown): Row {
  if (typeof value !== 'object' || value === null) throw new Error('database: expected a row');
  return value as Row;
}
const str = (v: unknown): string => (typeof v === 'string' ? v : String(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : str(v));
const num = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));

/** SQLite stores NaN as NULL; a bound value must be a number, string, bigint, buffer or null. */
function bindable(v: unknown): unknown {
  if (v === undefined) return null;
  if (typeof v === 'number' && !Number.isFinite(v)) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return v;
}

function rowToRun(r: Row, file: string): RunRecord {
  const id = str(r.id);
  const state = r.state;
  if (!isRunState(state)) throw new Error(`${file}: run ${id} has an unknown state ${JSON.stringify(state)}`);
  let config: RunConfig;
  try {
    config = decodeJson(str(r.config)) as RunConfig;
  } catch (e) {
    throw new Error(`${file}: run ${id} has a config that is not valid JSON (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
  return {
    id,
    name: str(r.name),
    notes: r.notes === null || r.notes === undefined ? '' : str(r.notes),
    tags: decodeTags(r.tags),
    state,
    config,
    priority: num(r.priority),
    device: str(r.device),
    createdAt: str(r.created_at),
    updatedAt: str(r.updated_at),
    queueSeq: numOrNull(r.queue_seq),
    step: num(r.step),
    totalSteps: num(r.total_steps),
    lastLoss: numOrNull(r.last_loss),
    tokensPerSecond: numOrNull(r.tokens_per_second),
    etaMs: numOrNull(r.eta_ms),
    error: strOrNull(r.error),
    adapterId: strOrNull(r.adapter_id),
    backend: strOrNull(r.backend),
    resumeCount: num(r.resume_count),
    checkpointStep: numOrNull(r.checkpoint_step),
    checkpointPath: strOrNull(r.checkpoint_path),
    startedAt: strOrNull(r.started_at),
    finishedAt: strOrNull(r.finished_at),
  };
}

/** A stored tag list; anything unreadable reads as no tags rather than hiding the run. */
function decodeTags(v: unknown): string[] {
  if (typeof v !== 'string') return [];
  try {
    const parsed: unknown = JSON.parse(v);
    return Array.isArray(parsed) ? parsed.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    return [];
  }
}

function rowToCommand(r: Row): CommandRecord {
  let args: unknown = null;
  if (typeof r.args === 'string') {
    try {
      args = JSON.parse(r.args);
    } catch {
      args = null;
    }
  }
  return {
    id: num(r.id),
    runId: str(r.run_id),
    action: str(r.action) as CommandAction,
    args,
    source: str(r.source),
    createdAt: str(r.created_at),
    takenAt: strOrNull(r.taken_at),
    doneAt: strOrNull(r.done_at),
    ok: r.ok === null || r.ok === undefined ? null : num(r.ok) !== 0,
    result: strOrNull(r.result),
  };
}

function rowToInstance(r: Row): InstanceRecord {
  return { id: str(r.id), pid: num(r.pid), host: str(r.host), kind: str(r.kind), startedAt: str(r.started_at), heartbeatAt: str(r.heartbeat_at), url: strOrNull(r.url) };
}

/** A run with these defaults filled in; callers give what they know. */
export function newRunRecord(base: RunSummary & Partial<RunRecord>): RunRecord {
  return {
    notes: '',
    tags: [],
    priority: 0,
    device: 'cpu',
    queueSeq: null,
    resumeCount: 0,
    checkpointStep: null,
    checkpointPath: null,
    startedAt: null,
    finishedAt: null,
    ...base,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The database

export interface OpenDbOptions {
  readonly?: boolean;
  /** Milliseconds to wait for another process's write lock before failing (default 5 s). */
  busyTimeoutMs?: number;
}

export class StudioDb {
  readonly path: string;
  readonly db: SqliteDatabase;
  /** Rows that could not be read (named once each); the runs list goes on without them. */
  readonly problems: string[] = [];
  private readonly stmts = new Map<string, SqliteStatement>();

  constructor(path: string, options: OpenDbOptions = {}) {
    this.path = path;
    if (!options.readonly) mkdirSync(dirname(path), { recursive: true });
    const Database = sqlite();
    try {
      this.db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false, timeout: options.busyTimeoutMs ?? 5000 });
    } catch (e) {
      throw new Error(`cannot open the studio database ${path}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    try {
      if (!options.readonly) {
        // WAL: readers (the CLI, another window's host) never block the writer, and a crash loses at most the last
        // transaction. NORMAL sync is durable across process crashes (kill -9), which is what runs must survive.
        this.db.pragma('journal_mode = WAL');
        this.db.pragma('synchronous = NORMAL');
      }
      this.db.pragma('foreign_keys = ON');
      migrate(this.db, path, options.readonly ?? false);
    } catch (e) {
      this.db.close();
      throw e;
    }
  }

  get schemaVersion(): number {
    return num(this.db.pragma('user_version', { simple: true }));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Runs fn in one transaction (nested calls join the outer one). */
  tx<R>(fn: () => R): R {
    if (this.db.inTransaction) return fn();
    return this.db.transaction(fn)();
  }

  private stmt(sql: string): SqliteStatement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  // --- runs ------------------------------------------------------------------------------------------------------

  /** Adds a run in its first state (recorded in the history as coming from nothing). */
  insertRun(run: RunRecord, reason: string | null = null): void {
    if (!isRunState(run.state)) throw new Error(`insertRun: unknown state ${JSON.stringify(run.state)} for run ${run.id}`);
    const cols = ['config', 'state', 'tags', ...Object.values(RUN_COLUMNS)];
    const values: unknown[] = [encodeJson(run.config), run.state, JSON.stringify(run.tags ?? []), ...Object.keys(RUN_COLUMNS).map((k) => bindable(run[k as keyof typeof RUN_COLUMNS]))];
    this.tx(() => {
      try {
        this.stmt(`INSERT INTO runs (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(...values);
      } catch (e) {
        if (e instanceof Error && /UNIQUE|PRIMARY KEY/i.test(e.message)) throw new Error(`run ${run.id} already exists in ${this.path}`, { cause: e });
        throw e;
      }
      this.stmt('INSERT INTO state_history (run_id, from_state, to_state, at, reason) VALUES (?, NULL, ?, ?, ?)').run(run.id, run.state, run.createdAt, reason);
    });
  }

  getRun(id: string): RunRecord | null {
    const r = this.stmt('SELECT * FROM runs WHERE id = ?').get(id);
    return r === undefined ? null : rowToRun(asRow(r), this.path);
  }

  /** Whether a row for this run exists (readable or not). */
  hasRun(id: string): boolean {
    return this.stmt('SELECT 1 FROM runs WHERE id = ?').get(id) !== undefined;
  }

  /** A run that must exist; the error names the id and the database. */
  requireRun(id: string): RunRecord {
    const run = this.getRun(id);
    if (!run) throw new Error(`no run with id ${JSON.stringify(id)} in ${this.path}`);
    return run;
  }

  /** Newest first; optionally only runs in the given states. */
  listRuns(filter: { states?: readonly RunState[] } = {}): RunRecord[] {
    const rows =
      filter.states && filter.states.length > 0
        ? this.db.prepare(`SELECT * FROM runs WHERE state IN (${filter.states.map(() => '?').join(', ')}) ORDER BY created_at DESC, id DESC`).all(...filter.states)
        : this.stmt('SELECT * FROM runs ORDER BY created_at DESC, id DESC').all();
    return this.readableRuns(rows);
  }

  /** Waiting runs in the order they should start: priority, then first queued first. */
  queuedRuns(): RunRecord[] {
    return this.readableRuns(this.stmt("SELECT * FROM runs WHERE state = 'queuing' ORDER BY priority DESC, queue_seq ASC, created_at ASC, id ASC").all());
  }

  /** Rows as runs, leaving out (and naming once, in `problems`) any that cannot be read: one bad row must not hide the rest. */
  private readableRuns(rows: unknown[]): RunRecord[] {
    const out: RunRecord[] = [];
    for (const r of rows) {
      try {
        out.push(rowToRun(asRow(r), this.path));
      } catch (e) {
        const problem = `${errorMessage(e)}; the run is left out of the list (its folder is untouched)`;
        if (!this.problems.includes(problem)) {
          this.problems.push(problem);
          console.warn(`lora-studio: ${problem}`);
        }
      }
    }
    return out;
  }

  /** Changes fields other than the state; updatedAt is set unless given. */
  updateRun(id: string, patch: RunPatch): RunRecord {
    return this.tx(() => {
      this.applyPatch(id, { updatedAt: new Date().toISOString(), ...patch });
      return this.requireRun(id);
    });
  }

  private applyPatch(id: string, patch: RunPatch & { config?: RunConfig }): void {
    const sets: string[] = [];
    const values: unknown[] = [];
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) continue;
      if (key === 'config' || key === 'tags') {
        sets.push(`${key} = ?`);
        values.push(key === 'config' ? encodeJson(value) : JSON.stringify(value));
        continue;
      }
      const col = RUN_COLUMNS[key as keyof typeof RUN_COLUMNS];
      if (!col || key === 'id') throw new Error(`updateRun: ${key} cannot be changed this way`);
      sets.push(`${col} = ?`);
      values.push(bindable(value));
    }
    if (sets.length === 0) return;
    const r = this.db.prepare(`UPDATE runs SET ${sets.join(', ')} WHERE id = ?`).run(...values, id);
    if (r.changes === 0) throw new Error(`no run with id ${JSON.stringify(id)} in ${this.path}`);
  }

  /**
   * Moves a run to a new state, atomically with the patch and a history row. Refuses illegal moves
   * (IllegalTransitionError, naming both states), and moves from a state other than `from` when `from` is given
   * (so two writers cannot both act on what they read earlier). Joining the queue takes the next queue position
   * unless the patch gives one (an interrupted run goes back to the front with queueSeq 0).
   */
  transition(id: string, to: RunState, opts: { reason?: string | null; patch?: RunPatch; from?: RunState | readonly RunState[] } = {}): RunRecord {
    return this.tx(() => {
      const run = this.requireRun(id);
      if (opts.from !== undefined) {
        const allowed = typeof opts.from === 'string' ? [opts.from] : opts.from;
        if (!allowed.includes(run.state)) throw new Error(`run ${id} is ${run.state}, not ${allowed.join(' or ')}; nothing was changed`);
      }
      assertTransition(run.state, to, id);
      const now = new Date().toISOString();
      const patch: RunPatch = { updatedAt: now, ...opts.patch };
      if (to === 'queuing') patch.queueSeq = opts.patch?.queueSeq ?? this.nextQueueSeq();
      else if (run.state === 'queuing') patch.queueSeq = null;
      this.stmt('UPDATE runs SET state = ? WHERE id = ?').run(to, id);
      this.applyPatch(id, patch);
      this.stmt('INSERT INTO state_history (run_id, from_state, to_state, at, reason) VALUES (?, ?, ?, ?, ?)').run(id, run.state, to, now, opts.reason ?? null);
      return this.requireRun(id);
    });
  }

  private nextQueueSeq(): number {
    return num(asRow(this.stmt('SELECT COALESCE(MAX(queue_seq), 0) + 1 AS n FROM runs').get()).n);
  }

  stateHistory(runId: string): StateChange[] {
    return this.stmt('SELECT * FROM state_history WHERE run_id = ? ORDER BY id').all(runId).map((x) => {
      const r = asRow(x);
      return { id: num(r.id), runId: str(r.run_id), from: r.from_state === null ? null : (str(r.from_state) as RunState), to: str(r.to_state) as RunState, at: str(r.at), reason: strOrNull(r.reason) };
    });
  }

  /** Removes a run with its history, metrics and events (its folder on disk is the caller's business). */
  deleteRun(id: string): boolean {
    return this.stmt('DELETE FROM runs WHERE id = ?').run(id).changes > 0;
  }

  // --- metrics ---------------------------------------------------------------------------------------------------

  /** Stores points; a step that is already there is replaced (a resumed run redoes steps after its checkpoint). */
  appendMetrics(runId: string, points: readonly MetricPoint[]): void {
    if (points.length === 0) return;
    const ins = this.stmt('INSERT INTO metrics (run_id, step, data) VALUES (?, ?, ?) ON CONFLICT (run_id, step) DO UPDATE SET data = excluded.data');
    this.tx(() => {
      for (const p of points) {
        if (!Number.isInteger(p.step)) throw new Error(`metric point of run ${runId} has a step that is not an integer: ${String(p.step)}`);
        ins.run(runId, p.step, encodeJson(p));
      }
    });
  }

  /** Points with step > afterStep, in step order (at most `limit`). */
  metrics(runId: string, afterStep?: number, limit?: number): MetricPoint[] {
    const after = afterStep === undefined || !Number.isFinite(afterStep) ? -1 : afterStep;
    const rows = limit !== undefined ? this.stmt('SELECT data FROM metrics WHERE run_id = ? AND step > ? ORDER BY step LIMIT ?').all(runId, after, limit) : this.stmt('SELECT data FROM metrics WHERE run_id = ? AND step > ? ORDER BY step').all(runId, after);
    return rows.map((r) => decodeJson(str(asRow(r).data)) as MetricPoint);
  }

  metricCount(runId: string): number {
    return num(asRow(this.stmt('SELECT COUNT(*) AS n FROM metrics WHERE run_id = ?').get(runId)).n);
  }

  /** Forgets points after `step` (the run went back to a checkpoint); returns how many went. */
  deleteMetricsAfter(runId: string, step: number): number {
    return this.stmt('DELETE FROM metrics WHERE run_id = ? AND step > ?').run(runId, step).changes;
  }

  // --- evaluation answers ----------------------------------------------------------------------------------------

  /** Stores an answer; one of the same step and prompt is replaced (a resumed run answers its checkpoint step again). */
  putEvalSample(s: EvalSample): void {
    this.stmt('INSERT INTO eval_samples (run_id, step, prompt_index, prompt, answer, tokens, stop) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, step, prompt_index) DO UPDATE SET prompt = excluded.prompt, answer = excluded.answer, tokens = excluded.tokens, stop = excluded.stop').run(s.runId, s.step, s.index, s.prompt, s.answer, s.tokens, s.stop);
  }

  /** Answers with step > afterStep, by step then prompt. */
  evalSamples(runId: string, afterStep?: number): EvalSample[] {
    const after = afterStep === undefined || !Number.isFinite(afterStep) ? -1 : afterStep;
    return this.stmt('SELECT * FROM eval_samples WHERE run_id = ? AND step > ? ORDER BY step, prompt_index')
      .all(runId, after)
      .map((x) => {
        const r = asRow(x);
        return { runId: str(r.run_id), step: num(r.step), index: num(r.prompt_index), prompt: str(r.prompt), answer: str(r.answer), tokens: num(r.tokens), stop: str(r.stop) === 'eos' ? 'eos' : 'length' };
      });
  }

  /** Forgets answers after `step` (the run went back to a checkpoint); returns how many went. */
  deleteEvalSamplesAfter(runId: string, step: number): number {
    return this.stmt('DELETE FROM eval_samples WHERE run_id = ? AND step > ?').run(runId, step).changes;
  }

  // --- events ----------------------------------------------------------------------------------------------------

  addEvent(runId: string, level: EventLevel, message: string, step: number | null = null): RunEventRecord {
    const at = new Date().toISOString();
    const r = this.stmt('INSERT INTO events (run_id, at, level, step, message) VALUES (?, ?, ?, ?, ?)').run(runId, at, level, step, message);
    return { id: num(r.lastInsertRowid), runId, at, level, step, message };
  }

  /** Events with id > afterId, oldest first. */
  events(runId: string, afterId = 0, limit = 10_000): RunEventRecord[] {
    return this.stmt('SELECT * FROM events WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?')
      .all(runId, afterId, limit)
      .map((x) => {
        const r = asRow(x);
        return { id: num(r.id), runId: str(r.run_id), at: str(r.at), level: str(r.level) as EventLevel, step: numOrNull(r.step), message: str(r.message) };
      });
  }

  // --- adapters --------------------------------------------------------------------------------------------------

  upsertAdapter(a: AdapterRecord): void {
    this.stmt(
      'INSERT INTO adapters (id, run_id, name, path, created_at, summary) VALUES (?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT (id) DO UPDATE SET run_id = excluded.run_id, name = excluded.name, path = excluded.path, summary = excluded.summary',
    ).run(a.id, a.runId, a.name, a.path, a.createdAt, encodeJson(a.summary));
  }

  listAdapters(): AdapterRecord[] {
    return this.stmt('SELECT * FROM adapters ORDER BY created_at DESC, id DESC')
      .all()
      .map((x) => {
        const r = asRow(x);
        return { id: str(r.id), runId: strOrNull(r.run_id), name: str(r.name), path: str(r.path), createdAt: str(r.created_at), summary: decodeJson(str(r.summary)) };
      });
  }

  deleteAdapter(id: string): boolean {
    return this.stmt('DELETE FROM adapters WHERE id = ?').run(id).changes > 0;
  }

  // --- settings --------------------------------------------------------------------------------------------------

  getSetting(key: string): unknown {
    const r = this.stmt('SELECT value FROM settings WHERE key = ?').get(key);
    return r === undefined ? undefined : decodeJson(str(asRow(r).value));
  }

  setSetting(key: string, value: unknown): void {
    if (value === undefined) {
      this.stmt('DELETE FROM settings WHERE key = ?').run(key);
      return;
    }
    this.stmt('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, encodeJson(value));
  }

  allSettings(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const x of this.stmt('SELECT key, value FROM settings').all()) {
      const r = asRow(x);
      out[str(r.key)] = decodeJson(str(r.value));
    }
    return out;
  }

  // --- commands (CLI → running studio) ---------------------------------------------------------------------------

  enqueueCommand(runId: string, action: CommandAction, source: string, args: unknown = null): CommandRecord {
    const r = this.stmt('INSERT INTO commands (run_id, action, source, created_at, args) VALUES (?, ?, ?, ?, ?)').run(runId, action, source, new Date().toISOString(), args === null ? null : JSON.stringify(args));
    return this.getCommand(num(r.lastInsertRowid)) as CommandRecord;
  }

  getCommand(id: number): CommandRecord | null {
    const r = this.stmt('SELECT * FROM commands WHERE id = ?').get(id);
    return r === undefined ? null : rowToCommand(asRow(r));
  }

  /** Claims every command nobody has taken yet, oldest first (a command is taken exactly once). */
  takeCommands(): CommandRecord[] {
    return this.tx(() => {
      const open = this.stmt('SELECT * FROM commands WHERE taken_at IS NULL ORDER BY id').all().map((r) => rowToCommand(asRow(r)));
      const now = new Date().toISOString();
      for (const c of open) this.stmt('UPDATE commands SET taken_at = ? WHERE id = ?').run(now, c.id);
      return open.map((c) => ({ ...c, takenAt: now }));
    });
  }

  /** Takes back a command nobody has taken yet; false when a studio already took it. */
  withdrawCommand(id: number, why: string): boolean {
    const now = new Date().toISOString();
    return this.stmt('UPDATE commands SET taken_at = ?, done_at = ?, ok = 0, result = ? WHERE id = ? AND taken_at IS NULL').run(now, now, why, id).changes > 0;
  }

  completeCommand(id: number, ok: boolean, result: string): void {
    this.stmt('UPDATE commands SET done_at = ?, ok = ?, result = ?, taken_at = COALESCE(taken_at, ?) WHERE id = ?').run(new Date().toISOString(), ok ? 1 : 0, result, new Date().toISOString(), id);
  }

  // --- instances (which studio processes use this folder) --------------------------------------------------------

  registerInstance(i: { id: string; kind: string; url?: string | null; pid?: number }): InstanceRecord {
    const now = new Date().toISOString();
    const rec: InstanceRecord = { id: i.id, pid: i.pid ?? process.pid, host: hostname(), kind: i.kind, startedAt: now, heartbeatAt: now, url: i.url ?? null };
    this.stmt('INSERT OR REPLACE INTO instances (id, pid, host, kind, started_at, heartbeat_at, url) VALUES (?, ?, ?, ?, ?, ?, ?)').run(rec.id, rec.pid, rec.host, rec.kind, rec.startedAt, rec.heartbeatAt, rec.url);
    return rec;
  }

  heartbeat(id: string, url?: string | null): void {
    if (url !== undefined) this.stmt('UPDATE instances SET heartbeat_at = ?, url = ? WHERE id = ?').run(new Date().toISOString(), url, id);
    else this.stmt('UPDATE instances SET heartbeat_at = ? WHERE id = ?').run(new Date().toISOString(), id);
  }

  removeInstance(id: string): void {
    this.stmt('DELETE FROM instances WHERE id = ?').run(id);
  }

  instances(): InstanceRecord[] {
    return this.stmt('SELECT * FROM instances ORDER BY started_at').all().map((r) => rowToInstance(asRow(r)));
  }

  /**
   * Studio processes that are alive: a heartbeat within maxAgeMs and, on this machine, a process with that pid.
   * Rows of dead ones (kill -9 leaves them behind) are removed on the way.
   */
  liveInstances(maxAgeMs = 15_000, now = Date.now()): InstanceRecord[] {
    const live: InstanceRecord[] = [];
    for (const i of this.instances()) {
      const fresh = now - Date.parse(i.heartbeatAt) <= maxAgeMs;
      const alive = i.host !== hostname() || pidAlive(i.pid);
      if (fresh && alive) live.push(i);
      else if (!alive || now - Date.parse(i.heartbeatAt) > 10 * maxAgeMs) this.removeInstance(i.id);
    }
    return live;
  }
}

/** True when a process with this pid exists (signal 0 checks without sending anything). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as { code?: string }).code === 'EPERM';
  }
}

function migrate(db: SqliteDatabase, file: string, readonly: boolean): void {
  const version = num(db.pragma('user_version', { simple: true }));
  if (version > MIGRATIONS.length) {
    throw new Error(`${file} has schema version ${version}, written by a newer LoRA Studio; this one understands up to version ${MIGRATIONS.length}. Update the studio, or point LORA_STUDIO_HOME at another folder.`);
  }
  if (version === MIGRATIONS.length) return;
  if (readonly) throw new Error(`${file} has schema version ${version} and needs version ${MIGRATIONS.length}; open it once with the studio (not read-only) to upgrade it`);
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      try {
        db.exec(MIGRATIONS[v]);
      } catch (e) {
        throw new Error(`${file}: upgrading the schema from version ${v} to ${v + 1} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/** Opens (creating and upgrading as needed) the database of a studio home folder. */
export function openStudioDb(homeRoot: string, options: OpenDbOptions = {}): StudioDb {
  return new StudioDb(dbPathOf(homeRoot), options);
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The SQLite result code of an error, or of the error it wraps. */
function sqliteCode(e: unknown): string | null {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('SQLITE_')) return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return null;
}

/** A damaged file, as opposed to one that is locked, read-only, or from a newer studio (those are never moved). */
function isDamaged(e: unknown): boolean {
  const code = sqliteCode(e);
  return code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || (code !== null && code.startsWith('SQLITE_CORRUPT_'));
}

export interface RecoveredDb {
  /** What was wrong with the file. */
  reason: string;
  /** Where the damaged file was kept (its -wal/-shm beside it with the same suffix). */
  keptAs: string;
}

/**
 * Opens the studio database for a studio process, and gets it going again when the file is damaged (not a database,
 * malformed, failing SQLite's quick_check, or empty — a zero-length file would otherwise start as a silently empty
 * studio): the file is kept aside as studio.db.broken-<time>, a new one is made, and `recovered` says what happened
 * and where (the caller rebuilds the runs from their folders). A locked, read-only or newer database is never moved:
 * those errors go to the caller as they are.
 */
export function openStudioDbRecovering(homeRoot: string, now: Date = new Date()): { db: StudioDb; recovered: RecoveredDb | null } {
  const path = dbPathOf(homeRoot);
  let reason: string;
  const size = existsSync(path) ? statSync(path).size : -1;
  const walSize = existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0;
  if (size === 0 && walSize === 0) {
    reason = 'the file is empty (0 bytes)';
  } else {
    let db: StudioDb | null = null;
    try {
      db = new StudioDb(path);
      const check = db.db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw Object.assign(new Error(`SQLite's integrity check fails: ${String(check)}`), { code: 'SQLITE_CORRUPT' });
      return { db, recovered: null };
    } catch (e) {
      db?.close();
      if (!isDamaged(e)) throw e;
      reason = errorMessage(e).replace(`cannot open the studio database ${path}: `, '');
    }
  }
  const keptAs = `${path}.broken-${now.toISOString().replace(/[:.]/g, '-')}`;
  try {
    renameSync(path, keptAs);
    for (const suffix of ['-wal', '-shm']) if (existsSync(path + suffix)) renameSync(path + suffix, keptAs + suffix);
  } catch (e) {
    throw new Error(`the studio database ${path} is damaged (${reason}) and could not be moved aside: ${errorMessage(e)}; move or delete it by hand, then start again`, { cause: e });
  }
  return { db: new StudioDb(path), recovered: { reason, keptAs } };
}
