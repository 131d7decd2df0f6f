/**
 * The run queue and state machine. A run is checked completely before it exists (config fields, model folder,
 * dataset lines), then waits its turn — one executes at a time — and is driven by the engine worker's events:
 *   pending → (queuing) → validating → executing → finalizing → completed | failed | cancelled
 * Metrics are stored as they arrive and pushed to listeners in batches (every ~100 ms), so a chart gets ≥ 10
 * updates a second without one message per step.
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import {
  validateRunConfig,
  type EngineCommand,
  type EngineEvent,
  type MetricPoint,
  type ModelSummary,
  type RunConfig,
  type RunState,
  type RunSummary,
  type StudioEventName,
  type StudioEvents,
} from '../../common/protocol.ts';
import type { AdapterStore } from './adapter-store.ts';
import { StudioError } from './errors.ts';
import { newId } from './ids.ts';
import { checkModel, checkTrainingData } from './preflight.ts';
import type { RunStore } from './run-store.ts';

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
  /** How often batched metric events go out. */
  flushMs?: number;
  /** How long a cancelled run may take to reach a step boundary before its worker is terminated. */
  cancelGraceMs?: number;
}

const TERMINAL: readonly RunState[] = ['completed', 'failed', 'cancelled'];
const ETA_WINDOW = 20;

interface ActiveRun {
  id: string;
  engine: EngineHandle | null;
  recent: MetricPoint[];
  pending: MetricPoint[];
  flushTimer: NodeJS.Timeout | null;
  cancelTimer: NodeJS.Timeout | null;
  cancelRequested: boolean;
  finished: boolean;
}

export class RunManager {
  private readonly opts: Required<RunManagerOptions>;
  private readonly queue: string[] = [];
  private active: ActiveRun | null = null;
  private readonly idleWaiters: (() => void)[] = [];
  private closed = false;

  constructor(options: RunManagerOptions) {
    this.opts = { flushMs: 100, cancelGraceMs: 15_000, ...options };
    this.recoverInterrupted();
  }

  /** Checks everything a run needs, then queues it. Throws a StudioError naming the field, file and line. */
  async start(input: unknown): Promise<RunSummary> {
    if (this.closed) throw new StudioError({ message: 'the studio is shutting down; start the run again after it restarts' });
    const checked = validateRunConfig(input);
    if (!checked.ok) throw StudioError.fields(checked.errors);
    const config = checked.config;
    const model = await checkModel(config.modelPath, 'modelPath');
    await checkTrainingData(config);

    const now = new Date().toISOString();
    const run: RunSummary = {
      id: newId('run'),
      name: config.name?.trim() || defaultRunName(model, config),
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
    };
    this.opts.store.create(run);
    this.opts.emit('run.updated', run);
    this.queue.push(run.id);
    if (this.active) this.update(run.id, { state: 'queuing' });
    queueMicrotask(() => this.pump());
    return this.opts.store.get(run.id) ?? run;
  }

  list(): RunSummary[] {
    return this.opts.store.list();
  }

  get(id: string): RunSummary {
    const run = this.opts.store.get(id);
    if (!run) throw new StudioError({ message: `no run with id ${JSON.stringify(id)}`, field: 'id' });
    return run;
  }

  metrics(id: string, afterStep?: number): MetricPoint[] {
    this.get(id);
    return this.opts.store.metrics(id, afterStep);
  }

  /** Waiting runs stop at once; the executing one stops at its next step boundary. */
  cancel(id: string): RunSummary {
    const run = this.get(id);
    if (TERMINAL.includes(run.state)) throw new StudioError({ message: `run ${id} has already ${run.state === 'completed' ? 'completed' : `ended (${run.state})`}; there is nothing to cancel`, field: 'id' });
    const queued = this.queue.indexOf(id);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      return this.update(id, { state: 'cancelled', etaMs: null });
    }
    const active = this.active;
    if (active && active.id === id && !active.cancelRequested) {
      active.cancelRequested = true;
      this.log(id, 'info', 'cancelling: stopping at the next step');
      if (active.engine) active.engine.send({ type: 'stop', save: false });
      else this.finish(active, { state: 'cancelled', etaMs: null });
      active.cancelTimer = setTimeout(() => {
        if (!active.finished) {
          this.log(id, 'warn', 'the engine did not stop in time; its worker was terminated');
          this.finish(active, { state: 'cancelled', etaMs: null });
        }
      }, this.opts.cancelGraceMs);
    }
    return this.get(id);
  }

  /** True while a run executes or waits: the desktop app stays alive for it when its window closes. */
  hasActiveRuns(): boolean {
    return this.active !== null || this.queue.length > 0;
  }

  /** Resolves when nothing executes and nothing waits. */
  whenIdle(): Promise<void> {
    if (!this.hasActiveRuns()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops everything: waiting runs are cancelled, the executing one fails with a message saying why. */
  async close(): Promise<void> {
    this.closed = true;
    for (const id of this.queue.splice(0)) this.update(id, { state: 'cancelled', etaMs: null, error: 'the studio closed before this run started' });
    const active = this.active;
    if (active && !active.finished) this.finish(active, { state: 'failed', etaMs: null, error: 'the studio closed while this run was executing' });
    await Promise.resolve();
  }

  private recoverInterrupted(): void {
    for (const run of this.opts.store.list()) {
      if (TERMINAL.includes(run.state) || run.state === 'paused') continue;
      this.opts.store.save({ ...run, state: 'failed', etaMs: null, updatedAt: new Date().toISOString(), error: `the studio stopped while this run was ${run.state}; start it again` });
    }
  }

  private pump(): void {
    if (this.active) return;
    const id = this.closed ? undefined : this.queue.shift();
    if (id === undefined) {
      for (const w of this.idleWaiters.splice(0)) w();
      return;
    }
    const active: ActiveRun = { id, engine: null, recent: [], pending: [], flushTimer: null, cancelTimer: null, cancelRequested: false, finished: false };
    this.active = active;
    void this.execute(active).catch((e: unknown) => {
      if (!active.finished) this.finish(active, { state: 'failed', etaMs: null, error: e instanceof Error ? e.message : String(e) });
    });
  }

  private async execute(active: ActiveRun): Promise<void> {
    const run = this.update(active.id, { state: 'validating' });
    const config = run.config;
    // The files were checked at start; a queued run may have waited long enough for them to move.
    if (!existsSync(config.modelPath)) throw new Error(`the model folder ${config.modelPath} is gone`);
    if (!existsSync(config.datasetPath)) throw new Error(`the dataset file ${config.datasetPath} is gone`);
    const engine = await this.opts.startEngine();
    if (active.finished) {
      await engine.terminate();
      return;
    }
    active.engine = engine;
    engine.on((e) => this.onEngineEvent(active, e));
    engine.send({ type: 'train', runId: active.id, config, runDir: this.opts.store.runDir(active.id), resume: false });
  }

  private onEngineEvent(active: ActiveRun, e: EngineEvent): void {
    if (active.finished || e.runId !== active.id) return;
    switch (e.type) {
      case 'started':
        this.update(active.id, { state: 'executing', backend: e.backend, totalSteps: e.totalSteps, step: e.resumedFromStep });
        this.log(active.id, 'info', `training on ${e.backend}: ${e.parameters.trainable.toLocaleString('en-US')} trainable of ${e.parameters.total.toLocaleString('en-US')} parameters`);
        break;
      case 'metric':
        this.onMetric(active, e.point);
        break;
      case 'log':
        this.opts.emit('run.log', { runId: e.runId, level: e.level, message: e.message });
        break;
      case 'checkpoint':
        this.log(active.id, 'info', `checkpoint at step ${e.step}: ${e.path}`);
        break;
      case 'done':
        this.onDone(active, e.adapterDir);
        break;
      case 'stopped':
        this.finish(active, { state: 'cancelled', etaMs: null });
        break;
      case 'error': {
        const where = e.file && !e.message.includes(e.file) ? ` (${e.file}${e.line !== undefined ? ` line ${e.line}` : ''})` : '';
        this.finish(active, { state: 'failed', etaMs: null, error: `${e.message}${where}` });
        break;
      }
    }
  }

  private onMetric(active: ActiveRun, point: MetricPoint): void {
    this.opts.store.appendMetrics(active.id, [point]);
    active.pending.push(point);
    active.recent.push(point);
    if (active.recent.length > ETA_WINDOW) active.recent.shift();
    if (!active.flushTimer) active.flushTimer = setTimeout(() => this.flush(active), this.opts.flushMs);
  }

  /** Pushes the batched points and the run's new summary (step, loss, tokens/s, ETA). */
  private flush(active: ActiveRun): void {
    if (active.flushTimer) clearTimeout(active.flushTimer);
    active.flushTimer = null;
    if (active.pending.length === 0) return;
    const points = active.pending.splice(0);
    const last = points[points.length - 1];
    const run = this.opts.store.get(active.id);
    if (!run) return;
    this.update(active.id, { step: last.step, lastLoss: last.loss, tokensPerSecond: last.tokensPerSecond, etaMs: estimateEtaMs(active.recent, run.totalSteps) });
    this.opts.emit('run.metrics', { runId: active.id, points });
  }

  private onDone(active: ActiveRun, adapterDir: string): void {
    this.flush(active);
    const run = this.update(active.id, { state: 'finalizing', etaMs: 0 });
    try {
      const adapter = this.opts.adapters.register({ id: active.id, name: run.name, runId: run.id, sourceDir: adapterDir });
      this.finish(active, { state: 'completed', adapterId: adapter.id, etaMs: 0 });
      this.opts.emit('adapters.changed', this.opts.adapters.list());
    } catch (e) {
      this.finish(active, { state: 'failed', etaMs: null, error: `training finished but its adapter could not be saved: ${e instanceof Error ? e.message : String(e)}` });
    }
  }

  private finish(active: ActiveRun, patch: Partial<RunSummary>): void {
    if (active.finished) return;
    this.flush(active);
    active.finished = true;
    if (active.cancelTimer) clearTimeout(active.cancelTimer);
    const engine = active.engine;
    active.engine = null;
    if (engine) {
      try {
        void Promise.resolve(engine.terminate()).catch(() => undefined);
      } catch {
        // A worker that is already gone needs no terminating.
      }
    }
    this.update(active.id, patch);
    if (this.active === active) this.active = null;
    queueMicrotask(() => this.pump());
  }

  private update(id: string, patch: Partial<RunSummary>): RunSummary {
    const run = this.opts.store.get(id);
    if (!run) throw new Error(`run ${id} vanished from the store`);
    const next: RunSummary = { ...run, ...patch, updatedAt: new Date().toISOString() };
    this.opts.store.save(next);
    this.opts.emit('run.updated', next);
    return next;
  }

  private log(runId: string, level: 'info' | 'warn' | 'error', message: string): void {
    this.opts.emit('run.log', { runId, level, message });
  }
}

/** Milliseconds left, from the mean step time over the recent window (robust to a slow first step). */
export function estimateEtaMs(recent: MetricPoint[], totalSteps: number): number | null {
  if (recent.length === 0) return null;
  const last = recent[recent.length - 1];
  const first = recent[0];
  let msPerStep: number;
  if (recent.length >= 2 && last.step > first.step) msPerStep = (last.elapsedMs - first.elapsedMs) / (last.step - first.step);
  else if (last.step > 0) msPerStep = last.elapsedMs / last.step;
  else return null;
  return Math.max(0, Math.round(msPerStep * (totalSteps - last.step)));
}

function defaultRunName(model: ModelSummary, config: RunConfig): string {
  return `${model.name} · ${basename(config.datasetPath)} · r${config.lora.r}`;
}
