/**
 * Runs as durable objects. Every run lives in the studio database and moves only through the state machine
 * (run-state.ts):
 *   pending → validating → queuing → executing → finalizing → completed | failed | cancelled   (and paused)
 * A run is checked completely before it exists (config fields, model folder, dataset lines); it then waits in the
 * queue (run-queue.ts: priorities, N executing runs per device) and starts by itself when a slot frees.
 *
 * Survival:
 * - Checkpoints every N steps and M minutes (studio settings, unless the run sets its own) are written by the engine;
 *   every engine start asks it to resume from the newest one in the run folder.
 * - When the studio starts, runs that were executing when it died are put back at the front of the queue and resume
 *   from their last checkpoint (setting autoResume, on by default); their stored metrics after the checkpoint are
 *   dropped and retrained, so the loss curve continues without gaps or duplicates.
 * - Closing the studio stops executing runs with a checkpoint and leaves them queued for the next start.
 * - Watchdogs fail a run whose validation, start-up or steps overrun (settings).
 *
 * Metrics are stored before they are pushed, and pushed in batches (every ~100 ms) in step order: a window that
 * subscribes and then fetches 'runs.metrics' has every point, and merges duplicates by step.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  validateRunConfig,
  type EngineCommand,
  type EngineEvent,
  type EvalSample,
  type MetricPoint,
  type RunConfig,
  type RunEventInfo,
  type RunState,
  type RunStateChange,
  type RunSummary,
  type StudioEventName,
  type StudioEvents,
  type StudioSettings,
} from '../../common/protocol.ts';
import type { AdapterStore } from './adapter-store.ts';
import { newRunRecord, type CommandAction, type EventLevel, type RunPatch, type RunRecord, type StudioDb } from './db.ts';
import { StudioError } from './errors.ts';
import { newId } from './ids.ts';
import { checkModel, checkTrainingData } from './preflight.ts';
import type { RunMetricsExporter } from './prometheus.ts';
import { RunQueue, type QueueItem } from './run-queue.ts';
import { isTerminal, RunWatchdog, type WatchdogPhase } from './run-state.ts';
import { RunStore } from './run-store.ts';
import { deletedMessage, deleteRun, uniqueRunName, updateRunInfo } from './run-catalog.ts';
import { timeoutsOf } from './settings.ts';
import { RunEta } from './run-eta.ts';
import { pointMemory, RunHealthMonitor } from './run-health.ts';
import { alertEventMessage, alertFromEvent } from '../../common/run-health.ts';
import { deleteRefusal, generatedRunName, type RunDeleteResult } from '../../common/run-info.ts';

/** What the run manager needs from an engine worker (engine/engine-host.ts provides it). */
export interface EngineHandle {
  send(cmd: EngineCommand): void;
  on(handler: (e: EngineEvent) => void): unknown;
  terminate(): unknown;
}

export type Emit = <E extends StudioEventName>(event: E, data: StudioEvents[E]) => void;

export interface RunManagerOptions {
  store: RunStore;
  adapters: AdapterStore;
  emit: Emit;
  startEngine: () => EngineHandle | Promise<EngineHandle>;
  /** The current studio settings (read at each use, so changes apply to the next run or resume). */
  settings: () => StudioSettings;
  /** The device a run is queued on; default: its backend ('auto' counts as its own device). */
  resolveDevice?: (config: RunConfig) => Promise<string>;
  exporter?: RunMetricsExporter;
  /** Recover runs an earlier studio left behind (false when another live studio uses the folder). */
  recover?: boolean;
  /** How often batched metric events go out. */
  flushMs?: number;
  /** How long a cancelled run may take to reach a step boundary before its worker is terminated. */
  cancelGraceMs?: number;
  /** How long closing waits for executing runs to write their checkpoint. */
  shutdownGraceMs?: number;
  /** Where the preflight keeps each run's prepared dataset for its engine (tokenized once per start); none: the engine prepares it again. */
  datasetCacheDir?: string;
}


/** `storage`: the studio database refused a write (disk full): checkpoint, stop, fail with why. */
type StopIntent = 'cancel' | 'pause' | 'stop-save' | 'shutdown' | 'storage';

/** A run's outcome the database could not take (disk full); kept here and written as soon as it can be. */
interface UnstoredOutcome {
  to: RunState;
  reason: string;
  patch: RunPatch;
  /** The state the database still has, which the outcome moves from. */
  from: RunState;
}

interface ActiveRun {
  id: string;
  name: string;
  totalSteps: number;
  engine: EngineHandle | null;
  /** The ETA, from step times and the evaluations measured so far (run-eta.ts). */
  eta: RunEta;
  pending: MetricPoint[];
  flushTimer: NodeJS.Timeout | null;
  graceTimer: NodeJS.Timeout | null;
  watchdog: RunWatchdog;
  intent: StopIntent | null;
  /** Why the studio database could not store this run's progress, once it could not. */
  storageError: string | null;
  /** runs/<id>/run.json as written when the run started executing; null when it could not be written. */
  runFile: string | null;
  finished: boolean;
  lastStep: number;
  /** The training-health detector (run-health.ts), fed every point. */
  health: RunHealthMonitor;
  /** Alerts already in the event log (kind@step): a step trained again after a resume does not repeat them. */
  alerted: Set<string>;
  done: Promise<void>;
  resolveDone: () => void;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** SQLite's code for a database that cannot grow (the disk, or the file's size limit, is full). */
function isDiskFull(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'SQLITE_FULL' || /SQLITE_FULL|disk is full|ENOSPC/.test(errorText(e));
}

export class RunManager {
  private readonly opts: Required<Omit<RunManagerOptions, 'exporter' | 'resolveDevice' | 'datasetCacheDir'>> & Pick<RunManagerOptions, 'exporter' | 'resolveDevice' | 'datasetCacheDir'>;
  private readonly db: StudioDb;
  private readonly queue: RunQueue;
  private readonly active = new Map<string, ActiveRun>();
  /** Runs between pending and queuing (checks in progress), with their watchdogs. */
  private readonly validating = new Map<string, RunWatchdog>();
  private readonly idleWaiters: (() => void)[] = [];
  /** Outcomes the database could not store yet (disk full); retried on every later change and by a timer. */
  private readonly unstored = new Map<string, UnstoredOutcome>();
  /** Metric points the database refused, per run, written with the outcomes (so a resumed curve has no hole). */
  private readonly unstoredPoints = new Map<string, MetricPoint[]>();
  private unstoredTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(options: RunManagerOptions) {
    this.opts = { flushMs: 100, cancelGraceMs: 15_000, shutdownGraceMs: 20_000, recover: true, ...options };
    this.db = options.store.db;
    this.queue = new RunQueue({
      concurrency: () => this.opts.settings().maxConcurrentRunsPerDevice,
      start: (item) => this.launch(item),
      onStartError: (item, e) => this.failWaiting(item.id, `could not start: ${errorText(e)}`),
    });
    this.queue.hold();
    // Without recovery (another live studio owns this folder's runs) only the runs started here are queued here.
    if (this.opts.recover) this.recoverRuns();
    this.queue.resume();
  }

  // --- requests ----------------------------------------------------------------------------------------------------

  /** Checks everything a run needs, then creates it (pending) and sends it on to the queue. StudioErrors name the field, file and line. */
  async start(input: unknown, priority = 0): Promise<RunSummary> {
    if (this.closed) throw new StudioError({ message: 'the studio is shutting down; start the run again after it restarts' });
    const checked = validateRunConfig(input);
    if (!checked.ok) throw StudioError.fields(checked.errors);
    const config = checked.config;
    const model = await checkModel(config.modelPath, 'modelPath');
    await checkTrainingData(config, this.opts.datasetCacheDir ? { cacheDir: this.opts.datasetCacheDir } : {});
    if (!Number.isInteger(priority)) throw new StudioError({ message: `priority must be a whole number, got ${priority}`, field: 'priority' });

    const now = new Date().toISOString();
    const record = newRunRecord({
      id: newId('run'),
      name: config.name?.trim() || uniqueRunName(this.db, generatedRunName(model.name, config.datasetPath, config.lora.r)),
      state: 'pending',
      config,
      createdAt: now,
      updatedAt: now,
      step: 0,
      totalSteps: config.train.steps,
      lastLoss: null,
      tokensPerSecond: null,
      etaMs: null,
      error: null,
      adapterId: null,
      backend: null,
      priority,
      device: config.backend,
    });
    this.opts.store.ensureRunDir(record.id);
    this.db.insertRun(record, 'created');
    this.opts.store.writeRunFile(record);
    this.event(record.id, 'info', `run created: ${config.train.steps} steps, LoRA r=${config.lora.r} on ${config.lora.targets.join(', ')}`);
    this.announce(record);
    void this.validate(record.id);
    return this.summary(record);
  }

  list(): RunSummary[] {
    return this.db.listRuns().map((r) => this.summary(r));
  }

  get(id: string): RunSummary {
    return this.summary(this.require(id));
  }

  metrics(id: string, afterStep?: number): MetricPoint[] {
    this.require(id);
    return this.db.metrics(id, afterStep);
  }

  events(id: string, afterId = 0): RunEventInfo[] {
    this.require(id);
    return this.db.events(id, afterId);
  }

  evalSamples(id: string, afterStep?: number): EvalSample[] {
    this.require(id);
    return this.db.evalSamples(id, afterStep);
  }

  history(id: string): RunStateChange[] {
    this.require(id);
    return this.db.stateHistory(id).map((h) => ({ from: h.from, to: h.to, at: h.at, reason: h.reason }));
  }

  /** Waiting runs stop at once; an executing one stops at its next step boundary, without saving. */
  cancel(id: string): RunSummary {
    const run = this.require(id);
    if (isTerminal(run.state)) throw new StudioError({ message: `run ${id} has already ${run.state === 'completed' ? 'completed' : `ended (${run.state})`}; there is nothing to cancel`, field: 'id' });
    if (run.state === 'finalizing') throw new StudioError({ message: `run ${id} is saving its adapter; it cannot be cancelled any more`, field: 'id' });
    const active = this.active.get(id);
    if (active) {
      this.requestStop(active, 'cancel');
      return this.get(id);
    }
    this.queue.remove(id);
    this.validating.get(id)?.disarm();
    this.validating.delete(id);
    const next = this.move(id, 'cancelled', 'cancelled by the user', { etaMs: null, finishedAt: new Date().toISOString() });
    this.checkIdle();
    return this.summary(next);
  }

  /** A waiting run is held; an executing one writes a checkpoint at the next step and stops. */
  pause(id: string): RunSummary {
    const run = this.require(id);
    const active = this.active.get(id);
    if (active && run.state === 'executing') {
      this.requestStop(active, 'pause');
      return this.get(id);
    }
    if (run.state !== 'queuing') throw new StudioError({ message: `run ${id} is ${run.state}; only a waiting or executing run can be paused`, field: 'id' });
    this.queue.remove(id);
    const next = this.move(id, 'paused', 'paused by the user', { etaMs: null });
    this.checkIdle();
    return this.summary(next);
  }

  /** A paused or failed run waits for its turn again; the engine continues from the newest checkpoint. */
  resume(id: string): RunSummary {
    if (this.closed) throw new StudioError({ message: 'the studio is shutting down; resume the run after it restarts' });
    const run = this.require(id);
    if (run.state !== 'paused' && run.state !== 'failed') throw new StudioError({ message: `run ${id} is ${run.state}; only a paused or failed run can be resumed`, field: 'id' });
    // An outcome a full disk held back is superseded by the resume (which needs the database to take it anyway).
    this.storeUnstored();
    this.unstored.delete(id);
    const next = this.move(id, 'queuing', `resumed by the user from ${run.state}`, { error: null, etaMs: null });
    this.enqueue(next);
    return this.get(id);
  }

  /** An executing run stops at its next step; its adapter as it is then becomes the run's result. */
  stopAndSave(id: string): RunSummary {
    const run = this.require(id);
    const active = this.active.get(id);
    if (!active || run.state !== 'executing') throw new StudioError({ message: `run ${id} is ${run.state}; only an executing run can be stopped and saved`, field: 'id' });
    this.requestStop(active, 'stop-save');
    return this.get(id);
  }

  setPriority(id: string, priority: number): RunSummary {
    if (!Number.isInteger(priority)) throw new StudioError({ message: `priority must be a whole number, got ${priority}`, field: 'priority' });
    this.require(id);
    const next = this.db.updateRun(id, { priority });
    this.queue.setPriority(id, priority);
    this.announce(next);
    return this.get(id);
  }

  /** Renames a run, or changes its notes or tags (any state; common/run-info.ts says what is allowed). */
  update(id: string, patch: unknown): RunSummary {
    const run = updateRunInfo(this.opts.store, id, patch);
    const active = this.active.get(id);
    if (active) active.name = run.name;
    this.announce(run);
    return this.summary(run);
  }

  /**
   * Deletes a run that is not going (run-catalog.ts deleteRun; the refusal names its state); every window is told
   * ('run.removed'), and the adapters list changes (the adapter is gone, or no longer linked to the run).
   */
  delete(id: string, opts: { deleteAdapter?: boolean; dryRun?: boolean } = {}): RunDeleteResult {
    if (this.active.has(id) || this.validating.has(id) || this.queue.isWaiting(id)) {
      const run = this.require(id);
      throw new StudioError({ message: deleteRefusal(run) ?? `run ${id} is still in use; try again when it has stopped`, field: 'id' });
    }
    const result = deleteRun(this.opts.store, this.opts.adapters, id, opts);
    if (!result.deleted) return result;
    this.opts.exporter?.forget(id);
    this.opts.emit('run.removed', { id });
    if (result.adapterId) this.opts.emit('adapters.changed', this.opts.adapters.list());
    return result;
  }

  /** A command from the CLI (db commands table); returns what to report back. */
  command(action: CommandAction, id: string, args: unknown = null): string {
    switch (action) {
      case 'update': {
        const run = this.update(id, args);
        return `run ${id}: now "${run.name}"${run.tags?.length ? `, tags ${run.tags.join(', ')}` : ''}`;
      }
      case 'delete': {
        const deleteAdapter = typeof args === 'object' && args !== null && (args as { deleteAdapter?: unknown }).deleteAdapter === true;
        return deletedMessage(this.delete(id, { deleteAdapter }));
      }
      case 'cancel':
        return `run ${id}: ${this.cancel(id).state === 'cancelled' ? 'cancelled' : 'cancelling at the next step'}`;
      case 'pause':
        return `run ${id}: ${this.pause(id).state === 'paused' ? 'paused' : 'pausing: a checkpoint is written at the next step'}`;
      case 'resume':
        this.resume(id);
        return `run ${id}: queued to continue from its last checkpoint`;
      case 'stop-save':
        this.stopAndSave(id);
        return `run ${id}: stopping at the next step; its adapter is kept`;
    }
  }

  /** The settings changed: a higher limit of runs per device starts waiting runs now. */
  settingsChanged(): void {
    if (!this.closed) this.queue.pump();
  }

  /** True while a run executes or waits: the desktop app stays alive for it when its window closes. */
  hasActiveRuns(): boolean {
    return this.active.size > 0 || this.queue.waiting().length > 0 || this.validating.size > 0;
  }

  /** Resolves when nothing executes and nothing waits. */
  whenIdle(): Promise<void> {
    if (!this.hasActiveRuns()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops starting runs; executing runs write a checkpoint and stop, and are left queued (or paused, without
   * autoResume) so the next start continues them. Waiting runs stay queued.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.hold();
    this.storeUnstored();
    if (this.unstoredTimer) clearInterval(this.unstoredTimer);
    this.unstoredTimer = null;
    for (const w of this.validating.values()) w.disarm();
    const runs = [...this.active.values()];
    for (const a of runs) this.requestStop(a, 'shutdown');
    const all = Promise.all(runs.map((a) => a.done));
    let timer: NodeJS.Timeout | null = null;
    const timeout = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), this.opts.shutdownGraceMs);
    });
    const outcome = await Promise.race([all.then(() => 'done' as const), timeout]);
    if (timer) clearTimeout(timer);
    if (outcome === 'timeout') {
      for (const a of runs) if (!a.finished) this.finishInterrupted(a, `the studio closed before the engine stopped (waited ${this.opts.shutdownGraceMs / 1000} s); it continues from its last checkpoint`);
    }
    for (const w of this.idleWaiters.splice(0)) w();
  }

  // --- life of a run ---------------------------------------------------------------------------------------------

  /** pending → validating → queuing: the checks that depend on time (files still there), and the device. */
  private async validate(id: string): Promise<void> {
    let run = this.db.getRun(id);
    if (!run || (run.state !== 'pending' && run.state !== 'validating')) return;
    const watchdog = new RunWatchdog(timeoutsOf(this.opts.settings()), (_phase, message) => this.failWaiting(id, message));
    this.validating.set(id, watchdog);
    try {
      if (run.state === 'pending') run = this.move(id, 'validating', null, {});
      watchdog.arm('validating');
      const config = run.config;
      for (const [what, path] of [
        ['model folder', config.modelPath],
        ['dataset file', config.datasetPath],
        ['validation file', config.data?.validationPath],
      ] as const) {
        if (path && !existsSync(path)) throw new Error(`the ${what} ${path} is gone`);
      }
      const device = this.opts.resolveDevice ? await this.opts.resolveDevice(config) : config.backend;
      if (this.validating.get(id) !== watchdog) return; // cancelled or timed out meanwhile
      const queued = this.move(id, 'queuing', null, { device });
      this.validating.delete(id);
      watchdog.disarm();
      if (this.closed) return;
      this.enqueue(queued);
    } catch (e) {
      if (this.validating.get(id) === watchdog) this.failWaiting(id, errorText(e));
    } finally {
      watchdog.disarm();
    }
  }

  private enqueue(run: RunRecord): void {
    if (this.queue.isWaiting(run.id) || this.queue.isRunning(run.id)) return;
    this.queue.enqueue({ id: run.id, priority: run.priority, device: run.device, seq: run.queueSeq ?? undefined });
    this.announceQueue();
  }

  /** The queue gave a run its slot: executing, then the engine (asynchronously). */
  private launch(item: QueueItem): void {
    if (this.closed) throw new Error('the studio is closing');
    this.storeUnstored();
    const run = this.move(item.id, 'executing', null, { startedAt: new Date().toISOString(), etaMs: null, error: null }, 'queuing');
    let resolveDone: () => void = () => undefined;
    const done = new Promise<void>((r) => (resolveDone = r));
    const active: ActiveRun = {
      id: run.id,
      name: run.name,
      totalSteps: run.totalSteps,
      engine: null,
      eta: new RunEta({ totalSteps: run.totalSteps, evalEverySteps: run.config.train.evalEverySteps, promptsEverySteps: run.config.evalPrompts?.everySteps ?? null }),
      pending: [],
      flushTimer: null,
      graceTimer: null,
      watchdog: new RunWatchdog(timeoutsOf(this.opts.settings()), (phase, message) => this.onTimeout(active, phase, message)),
      intent: null,
      storageError: null,
      runFile: null,
      finished: false,
      lastStep: run.step,
      health: new RunHealthMonitor(this.opts.settings().healthAlerts),
      alerted: new Set(),
      done,
      resolveDone,
    };
    this.active.set(run.id, active);
    // move() wrote run.json; it marks the folder as this run's (the engine would make a deleted folder again).
    const runFile = join(this.opts.store.runDir(run.id), 'run.json');
    active.runFile = existsSync(runFile) ? runFile : null;
    active.watchdog.arm('startup');
    this.announceQueue();
    void this.startEngine(active, run).catch((e: unknown) => this.finishFailed(active, `the engine could not start: ${errorText(e)}`));
  }

  private async startEngine(active: ActiveRun, run: RunRecord): Promise<void> {
    const dir = this.opts.store.ensureRunDir(run.id);
    const engine = await this.opts.startEngine();
    if (active.finished) {
      await engine.terminate();
      return;
    }
    active.engine = engine;
    engine.on((e) => this.onEngineEvent(active, e));
    const cache = this.opts.datasetCacheDir ? { datasetCacheDir: this.opts.datasetCacheDir } : {};
    engine.send({ type: 'train', runId: run.id, config: this.engineConfig(run.config), runDir: dir, resume: true, ...cache });
    // A stop asked for while the engine was starting goes out now (the worker checks it before the first step).
    if (active.intent) engine.send({ type: 'stop', save: active.intent !== 'cancel' });
  }

  /** The run's config with the checkpoint cadence the studio settings add. */
  private engineConfig(config: RunConfig): RunConfig {
    const s = this.opts.settings();
    return {
      ...config,
      train: {
        ...config.train,
        checkpointEverySteps: config.train.checkpointEverySteps > 0 ? config.train.checkpointEverySteps : s.checkpointEverySteps,
        checkpointEveryMinutes: config.train.checkpointEveryMinutes !== undefined && config.train.checkpointEveryMinutes > 0 ? config.train.checkpointEveryMinutes : s.checkpointEveryMinutes,
      },
    };
  }

  private onEngineEvent(active: ActiveRun, e: EngineEvent): void {
    if (active.finished || (e.runId !== active.id && e.runId !== '')) return;
    try {
      this.handleEngineEvent(active, e);
    } catch (err) {
      // Storing what the engine said failed (disk full, a broken database): the run must not stay executing with
      // nobody noticing. It checkpoints, stops and fails, saying why; its slot goes to the next run.
      this.storageFailed(active, err, e.type);
    }
  }

  private storageFailed(active: ActiveRun, err: unknown, during: string): void {
    if (active.finished) return;
    const why = `the studio database ${this.db.path} could not store this run's ${during === 'metric' ? 'metrics' : `${during} event`}: ${errorText(err)}${isDiskFull(err) ? ' — free disk space, then resume the run (it continues from its last checkpoint)' : ''}`;
    console.error(`lora-studio: run ${active.id}: ${why}`);
    if (active.storageError !== null || !active.engine) {
      // Second failure (or no engine to stop): fail now.
      active.storageError ??= why;
      this.finishFailed(active, active.storageError);
      return;
    }
    active.storageError = why;
    if (active.intent === 'shutdown' || active.intent === 'cancel') return; // already stopping for a reason of its own
    active.intent = 'storage';
    active.engine.send({ type: 'stop', save: true });
    if (active.graceTimer) clearTimeout(active.graceTimer);
    active.graceTimer = setTimeout(() => this.finishFailed(active, why), this.opts.cancelGraceMs);
    active.graceTimer.unref();
  }

  private handleEngineEvent(active: ActiveRun, e: EngineEvent): void {
    switch (e.type) {
      case 'started':
        this.onStarted(active, e);
        break;
      case 'metric':
        this.onMetric(active, e.point);
        break;
      case 'log':
        this.event(active.id, e.level, e.message, active.lastStep);
        break;
      case 'eval': {
        // Stored before it is pushed, as metrics are: a window that fetches 'runs.evalSamples' after subscribing has it.
        const sample: EvalSample = { runId: active.id, step: e.step, index: e.index, prompt: e.prompt, answer: e.answer, tokens: e.tokens, stop: e.stop };
        this.db.putEvalSample(sample);
        active.eta.observeSample(e.step, performance.now());
        // Answering takes time between steps: it is progress, not a hung step.
        active.watchdog.kick(e.step);
        this.opts.emit('run.eval', sample);
        break;
      }
      case 'checkpoint':
        this.announce(this.db.updateRun(active.id, { checkpointStep: e.step, checkpointPath: e.path }));
        this.event(active.id, 'info', `checkpoint at step ${e.step}: ${e.path}`, e.step);
        break;
      case 'done':
        this.onDone(active, e.adapterDir, `training finished after ${e.steps} steps`);
        break;
      case 'stopped':
        this.onStopped(active, e.step, e.checkpoint);
        break;
      case 'error': {
        // A checkpoint write that found its folder gone while `rm -rf` is still emptying the run folder: the run
        // folder is what went, not a checkpoint, whatever run.json still says at this instant.
        if (active.runFile !== null && (!existsSync(active.runFile) || (e.code === 'ENOENT' && e.file?.startsWith(this.opts.store.runDir(active.id))))) {
          this.failFolderGone(active, active.lastStep);
          break;
        }
        const where = e.file && !e.message.includes(e.file) ? ` (${e.file}${e.line !== undefined ? ` line ${e.line}` : ''})` : '';
        // The engine's own words come first (e.g. the checkpoint that hit a full disk); the database's, if any, after.
        this.finishFailed(active, `${e.message}${where}${active.storageError ? `; also, ${active.storageError}` : ''}`);
        break;
      }
    }
  }

  private onStarted(active: ActiveRun, e: Extract<EngineEvent, { type: 'started' }>): void {
    const k = e.resumedFromStep;
    // The backend as the Runs page shows it, with the device: "cpu (native avx512, 2 threads)", "cpu (portable, slow)"
    // where the native kernels are not built, "webgpu (<adapter>)".
    const backend = e.adapterName ? `${e.backend} (${e.adapterName})` : e.backend;
    const patch: RunPatch = { backend, totalSteps: e.totalSteps, step: k };
    active.totalSteps = e.totalSteps;
    active.lastStep = k;
    // Points after the checkpoint belong to a past that is being trained again; drop them everywhere.
    const dropped = this.db.deleteMetricsAfter(active.id, k);
    this.db.deleteEvalSamplesAfter(active.id, k);
    if (dropped > 0) this.opts.emit('run.metrics', { runId: active.id, points: [], truncatedAfter: k });
    if (k > 0) {
      patch.resumeCount = this.require(active.id).resumeCount + 1;
      this.event(active.id, 'info', `resumed from the checkpoint at step ${k}${dropped > 0 ? `; ${dropped} later step${dropped === 1 ? ' is' : 's are'} trained again` : ''}`, k);
    }
    this.restartHealth(active);
    active.eta.restart(e.totalSteps);
    const last = this.db.metrics(active.id).at(-1);
    if (last) patch.lastLoss = Number.isFinite(last.loss) ? last.loss : null;
    this.announce(this.db.updateRun(active.id, patch));
    this.opts.exporter?.restore({ id: active.id, name: active.name }, this.db.metrics(active.id), e.totalSteps);
    this.event(active.id, 'info', `training on ${backend}: ${e.parameters.trainable.toLocaleString('en-US')} trainable of ${e.parameters.total.toLocaleString('en-US')} parameters`, k);
  }

  private onMetric(active: ActiveRun, point: MetricPoint): void {
    if (active.runFile !== null && !existsSync(active.runFile)) {
      // The run folder was deleted under the run: its checkpoints are gone, and carrying on would only make the
      // folder again behind the user's back.
      this.failFolderGone(active, point.step);
      return;
    }
    try {
      this.db.appendMetrics(active.id, [point]);
    } catch (e) {
      const held = this.unstoredPoints.get(active.id) ?? [];
      held.push(point);
      this.unstoredPoints.set(active.id, held);
      this.retryUnstoredLater();
      throw e;
    }
    active.lastStep = point.step;
    active.watchdog.kick(point.step);
    this.opts.exporter?.observe({ id: active.id, name: active.name }, point, active.totalSteps);
    this.checkHealth(active, point);
    active.pending.push(point);
    active.eta.observePoint(point, performance.now());
    if (!active.flushTimer) active.flushTimer = setTimeout(() => this.flush(active), this.opts.flushMs);
  }

  /** A (re)started engine: the detector learns the stored curve again, silently, and which alerts were raised. */
  private restartHealth(active: ActiveRun): void {
    active.health = new RunHealthMonitor(this.opts.settings().healthAlerts);
    for (const p of this.db.metrics(active.id)) active.health.observe(p);
    active.alerted = new Set(this.db.events(active.id).flatMap((e) => {
      const a = alertFromEvent(e);
      return a ? [`${a.kind}@${a.step}`] : [];
    }));
  }

  /** Training-health alerts: kept as 'warn' lines of the event log and pushed as 'run.alert'. */
  private checkHealth(active: ActiveRun, point: MetricPoint): void {
    active.health.setThresholds(this.opts.settings().healthAlerts);
    for (const f of active.health.observe(point, pointMemory(point))) {
      const key = `${f.kind}@${f.step}`;
      if (active.alerted.has(key)) continue;
      active.alerted.add(key);
      const message = alertEventMessage(f.kind, f.message);
      const e = this.db.addEvent(active.id, 'warn', message, f.step);
      this.opts.emit('run.log', { runId: active.id, level: 'warn', message, id: e.id, at: e.at, step: f.step });
      this.opts.emit('run.alert', { runId: active.id, kind: f.kind, step: f.step, message: f.message, eventId: e.id, at: e.at });
    }
  }

  /** Pushes the batched points and the run's new summary (step, loss, tokens/s, ETA). */
  private flush(active: ActiveRun): void {
    if (active.flushTimer) clearTimeout(active.flushTimer);
    active.flushTimer = null;
    if (active.pending.length === 0) return;
    const points = active.pending.splice(0);
    const last = points[points.length - 1];
    const run = this.db.updateRun(active.id, {
      step: last.step,
      lastLoss: Number.isFinite(last.loss) ? last.loss : null,
      tokensPerSecond: last.tokensPerSecond,
      etaMs: active.eta.etaMs(),
    });
    this.opts.emit('run.metrics', { runId: active.id, points });
    this.announce(run);
  }

  private onDone(active: ActiveRun, adapterDir: string, why: string): void {
    this.flush(active);
    active.watchdog.arm('finalizing');
    const run = this.move(active.id, 'finalizing', why, { etaMs: 0 });
    try {
      const adapter = this.opts.adapters.register({ id: active.id, name: run.name, runId: run.id, sourceDir: adapterDir });
      this.db.upsertAdapter({ id: adapter.id, runId: run.id, name: adapter.name, path: adapter.path, createdAt: adapter.createdAt, summary: adapter });
      this.finish(active, 'completed', `adapter ${adapter.id} saved`, { adapterId: adapter.id, etaMs: 0 });
      this.opts.emit('adapters.changed', this.opts.adapters.list());
    } catch (e) {
      this.finish(active, 'failed', 'the adapter could not be saved', { etaMs: null, error: `training finished but its adapter could not be saved: ${errorText(e)}` });
    }
  }

  private onStopped(active: ActiveRun, step: number, checkpoint: string | null): void {
    this.flush(active);
    if (checkpoint) this.db.updateRun(active.id, { checkpointStep: step, checkpointPath: checkpoint });
    switch (active.intent) {
      case 'pause':
        this.finish(active, 'paused', checkpoint ? `paused by the user at step ${step}` : 'paused by the user before the first step', { etaMs: null });
        break;
      case 'stop-save':
        if (checkpoint) this.onDone(active, checkpoint, `stopped and saved by the user at step ${step}`);
        else this.finish(active, 'cancelled', 'stopped by the user before the first step: nothing to save', { etaMs: null, finishedAt: new Date().toISOString() });
        break;
      case 'shutdown':
        this.finishInterrupted(active, `the studio closed at step ${step}${checkpoint ? ' after writing a checkpoint' : ''}; it continues when the studio starts again`);
        break;
      case 'storage':
        this.finishFailed(active, `${active.storageError ?? 'the studio database could not store this run'}; stopped at step ${step}${checkpoint ? ` after writing the checkpoint ${checkpoint}` : ''}`);
        break;
      default:
        this.finish(active, 'cancelled', 'cancelled by the user', { etaMs: null, finishedAt: new Date().toISOString() });
    }
  }

  private requestStop(active: ActiveRun, intent: StopIntent): void {
    if (active.finished) return;
    // Cancel wins over a pause or stop-save already asked for; nothing else replaces an earlier request (closing the
    // studio leaves a run that is pausing, saving or cancelling to finish that).
    if (active.intent && !(intent === 'cancel' && active.intent !== 'cancel')) return;
    active.intent = intent;
    const what = { cancel: 'cancelling', pause: 'pausing (checkpoint, then stop)', 'stop-save': 'stopping and saving the adapter', shutdown: 'the studio is closing: checkpoint, then stop', storage: 'the studio database cannot store the run: checkpoint, then stop' }[intent];
    this.event(active.id, 'info', `${what} at the next step`, active.lastStep);
    active.engine?.send({ type: 'stop', save: intent !== 'cancel' });
    if (intent === 'cancel') {
      if (active.graceTimer) clearTimeout(active.graceTimer);
      active.graceTimer = setTimeout(() => {
        if (active.finished) return;
        this.event(active.id, 'warn', 'the engine did not stop in time; its worker was terminated', active.lastStep);
        this.finish(active, 'cancelled', 'cancelled by the user (engine terminated)', { etaMs: null, finishedAt: new Date().toISOString() });
      }, this.opts.cancelGraceMs);
      active.graceTimer.unref();
    }
  }

  private onTimeout(active: ActiveRun, phase: WatchdogPhase, message: string): void {
    this.event(active.id, 'error', message, active.lastStep);
    if (phase === 'finalizing') this.finish(active, 'failed', 'timed out', { etaMs: null, error: message });
    else this.finishFailed(active, message);
  }

  private failFolderGone(active: ActiveRun, step: number): void {
    const dir = this.opts.store.runDir(active.id);
    this.finishFailed(active, `the run folder ${dir} was deleted while the run was training (at step ${step}); its checkpoints went with it, so it cannot continue. Start the run again to train it from the start`);
  }

  private finishFailed(active: ActiveRun, message: string): void {
    if (active.finished) return;
    if (active.intent === 'shutdown') {
      this.finishInterrupted(active, `the studio closed while the run was stopping (${message})`);
      return;
    }
    this.finish(active, 'failed', 'the run failed', { etaMs: null, error: message, finishedAt: new Date().toISOString() });
  }

  /** The studio is going away (or went away): the run waits for the next start, or is paused without autoResume. */
  private finishInterrupted(active: ActiveRun, reason: string): void {
    const auto = this.opts.settings().autoResume;
    this.finish(active, auto ? 'queuing' : 'paused', reason, { etaMs: null, ...(auto ? { queueSeq: 0 } : {}) });
  }

  private finish(active: ActiveRun, to: RunState, reason: string, patch: RunPatch): void {
    if (active.finished) return;
    try {
      this.flush(active);
    } catch (e) {
      // The points stay unstored (disk full); the outcome below still frees the slot.
      console.error(`lora-studio: run ${active.id}: cannot store its last metrics in ${this.db.path}: ${errorText(e)}`);
    }
    active.finished = true;
    active.watchdog.disarm();
    if (active.graceTimer) clearTimeout(active.graceTimer);
    const engine = active.engine;
    active.engine = null;
    if (engine) {
      try {
        void Promise.resolve(engine.terminate()).catch(() => undefined);
      } catch {
        // A worker that is already gone needs no terminating.
      }
    }
    try {
      const p: RunPatch = isTerminal(to) ? { finishedAt: new Date().toISOString(), ...patch } : patch;
      this.settle(active.id, to, reason, p);
      if (to === 'failed' || to === 'cancelled') this.event(active.id, to === 'failed' ? 'error' : 'info', to === 'failed' ? `failed: ${patch.error ?? reason}` : reason, active.lastStep);
    } catch (e) {
      console.error(`lora-studio: run ${active.id}: cannot store its event log in ${this.db.path}: ${errorText(e)}`);
    } finally {
      // Whatever the database took, the slot is free and the next run starts.
      this.active.delete(active.id);
      this.queue.release(active.id);
      active.resolveDone();
      try {
        this.announceQueue();
      } finally {
        this.checkIdle();
      }
    }
  }

  /**
   * Moves a run to an outcome; when the database cannot take it (disk full) the outcome is kept in memory, shown as
   * the run's state, and written by storeUnstored as soon as a write succeeds again.
   */
  private settle(id: string, to: RunState, reason: string, patch: RunPatch): void {
    const current = this.db.getRun(id);
    if (!current || current.state === to) return;
    try {
      this.move(id, to, reason, patch);
    } catch (e) {
      if (!isDiskFull(e)) throw e;
      this.unstored.set(id, { to, reason, patch, from: current.state });
      console.error(`lora-studio: run ${id} is ${to} (${reason}), but ${this.db.path} cannot store that yet: ${errorText(e)}; it is written once the disk has room`);
      this.announce(current);
      this.retryUnstoredLater();
    }
  }

  private retryUnstoredLater(): void {
    if (this.unstoredTimer) return;
    this.unstoredTimer = setInterval(() => this.storeUnstored(), 2000);
    this.unstoredTimer.unref();
  }

  /** Writes the outcomes a full disk held back; those that still do not fit wait for the next try. */
  private storeUnstored(): void {
    for (const [id, points] of [...this.unstoredPoints]) {
      try {
        this.db.appendMetrics(id, points);
        this.unstoredPoints.delete(id);
      } catch {
        return; // still full
      }
    }
    for (const [id, o] of [...this.unstored]) {
      try {
        const run = this.db.getRun(id);
        if (run && run.state === o.from) this.move(id, o.to, o.reason, o.patch, o.from);
        this.unstored.delete(id);
        if (o.to === 'failed') this.event(id, 'error', `failed: ${o.patch.error ?? o.reason}`, run?.step ?? null);
      } catch {
        return; // still full
      }
    }
    if (this.unstored.size === 0 && this.unstoredPoints.size === 0 && this.unstoredTimer) {
      clearInterval(this.unstoredTimer);
      this.unstoredTimer = null;
    }
  }

  /** A run that is not executing fails (validation error, watchdog, a start that could not happen). */
  private failWaiting(id: string, message: string): void {
    this.validating.get(id)?.disarm();
    this.validating.delete(id);
    this.queue.remove(id);
    try {
      const run = this.db.getRun(id);
      if (!run || isTerminal(run.state)) return;
      this.settle(id, 'failed', 'the run failed', { etaMs: null, error: message, finishedAt: new Date().toISOString() });
      if (!this.unstored.has(id)) this.event(id, 'error', `failed: ${message}`, run.step);
    } finally {
      this.checkIdle();
    }
  }

  // --- recovery ----------------------------------------------------------------------------------------------------

  /** Runs an earlier studio left behind: executing ones resume (or wait paused), the rest carry on where they were. */
  private recoverRuns(): void {
    const settings = this.opts.settings();
    for (const run of this.db.listRuns({ states: ['executing', 'finalizing', 'pending', 'validating'] })) {
      if (run.state === 'executing') {
        const where = run.checkpointStep ? `its checkpoint at step ${run.checkpointStep}` : 'the start (no checkpoint was written)';
        const reason = `the studio stopped while this run was executing (step ${run.step})`;
        if (settings.autoResume) {
          this.move(run.id, 'queuing', `${reason}; resuming from ${where}`, { queueSeq: 0, etaMs: null });
          this.event(run.id, 'warn', `${reason}; it resumes from ${where}`, run.step);
        } else {
          this.move(run.id, 'paused', `${reason}; auto-resume is off`, { etaMs: null });
          this.event(run.id, 'warn', `${reason}; resume it to continue from ${where}`, run.step);
        }
      } else if (run.state === 'finalizing') {
        this.recoverFinalizing(run);
      } else {
        void this.validate(run.id);
      }
    }
    for (const run of this.db.queuedRuns()) this.enqueue(run);
  }

  private recoverFinalizing(run: RunRecord): void {
    const dir = join(this.opts.store.runDir(run.id), 'adapter');
    try {
      const adapter = this.opts.adapters.register({ id: run.id, name: run.name, runId: run.id, sourceDir: dir });
      this.db.upsertAdapter({ id: adapter.id, runId: run.id, name: adapter.name, path: adapter.path, createdAt: adapter.createdAt, summary: adapter });
      this.move(run.id, 'completed', 'adapter saved after a restart', { adapterId: adapter.id, etaMs: 0, finishedAt: new Date().toISOString() });
    } catch (e) {
      this.move(run.id, 'failed', 'the studio stopped while saving the adapter', { etaMs: null, error: `the studio stopped while saving this run's adapter, and ${dir} is not usable (${errorText(e)}); resume it to redo the last steps` });
    }
  }

  // --- plumbing ----------------------------------------------------------------------------------------------------

  private require(id: string): RunRecord {
    const run = this.opts.store.get(id);
    if (!run) throw new StudioError({ message: `no run with id ${JSON.stringify(id)}`, field: 'id' });
    return this.withUnstored(run);
  }

  /** The run as it really is: an outcome the database could not store yet wins over the stored state. */
  private withUnstored(run: RunRecord): RunRecord {
    const o = this.unstored.get(run.id);
    return o ? { ...run, ...o.patch, state: o.to } : run;
  }

  private summary(stored: RunRecord): RunSummary {
    const run = this.withUnstored(stored);
    return RunStore.summary(run, run.state === 'queuing' ? this.queue.position(run.id) : null);
  }

  /** Moves a run through the state machine (refusing illegal moves), stores why, and tells every window. */
  private move(id: string, to: RunState, reason: string | null, patch: RunPatch, from?: RunState): RunRecord {
    const run = this.db.transition(id, to, { reason, patch, ...(from ? { from } : {}) });
    this.opts.store.writeRunFile(run);
    this.opts.exporter?.setState({ id: run.id, name: run.name }, to);
    this.announce(run);
    return run;
  }

  private announce(run: RunRecord): void {
    this.opts.emit('run.updated', this.summary(run));
  }

  /** Queue positions changed: waiting runs get their new place. */
  private announceQueue(): void {
    for (const item of this.queue.waiting()) {
      const run = this.db.getRun(item.id);
      if (run) this.announce(run);
    }
  }

  private event(runId: string, level: EventLevel, message: string, step: number | null = null): void {
    const e = this.db.addEvent(runId, level, message, step);
    this.opts.emit('run.log', { runId, level, message, id: e.id, at: e.at, step });
  }

  private checkIdle(): void {
    if (this.hasActiveRuns()) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}

