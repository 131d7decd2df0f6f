/**
 * "Follow an external run": the studio watches an exported bundle's output folder (local, mounted or synced) while
 * Accelerate trains it elsewhere, shows its loss curve live on the same charts as its own runs, and imports the
 * adapter when the run completes. The followed folders are kept in <home>/external-runs.json, so they are followed
 * again after a restart; nothing in the followed folder is ever written.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { AdapterImportResult, ExternalRunState, ExternalRunSummary, MetricPoint, StudioErrorInfo, StudioEventName, StudioEvents, StudioMethod, StudioResult } from '../../common/protocol.ts';
import { ADAPTER_CONFIG_FILE } from '../../engine/host-api.ts';
import type { AdapterStore } from './adapter-store.ts';
import { importAdapter } from './adapter-import.ts';
import { StudioError, toStudioErrorInfo } from './errors.ts';
import { parseParams } from './params.ts';
import { ExternalRunReader } from './external-run-reader.ts';
import { newId } from './ids.ts';
import { writeFileAtomic } from './run-store.ts';

export type ExternalMethod = Extract<StudioMethod, `external.${string}`>;

interface Followed {
  id: string;
  path: string;
  autoImport: boolean;
  followedAt: string;
  adapterId: string | null;
}

interface BundleInfo {
  name: string | null;
  sourceRunId: string | null;
  /** The base model the studio ran the bundle's run with (its run.json), for checking the imported adapter. */
  modelPath: string | null;
  totalSteps: number | null;
}

interface Entry extends Followed {
  reader: ExternalRunReader;
  bundlePath: string | null;
  bundle: BundleInfo | null;
  importError: StudioErrorInfo | null;
  importing: boolean;
}

export interface ExternalRunsOptions {
  /** <home>/external-runs.json */
  file: string;
  adapters: AdapterStore;
  emit: <E extends StudioEventName>(event: E, data: StudioEvents[E]) => void;
  /** How often the folders are read (ms). */
  pollMs?: number;
  /** Emitted after an import, so the Adapters list updates. */
  onAdapterImported?: () => void;
}

export interface ExternalRuns {
  readonly handlers: { [M in ExternalMethod]: (params: unknown) => Promise<StudioResult<M>> };
  /** Reads every followed folder once (the timer does it every pollMs). */
  pollNow(): Promise<void>;
  close(): void;
}

function readBundle(dir: string): BundleInfo | null {
  const file = join(dir, 'bundle.json');
  if (!existsSync(file)) return null;
  try {
    const j = JSON.parse(readFileSync(file, 'utf8')) as { format?: unknown; steps?: unknown; source?: { runId?: unknown; name?: unknown; config?: { modelPath?: unknown } } };
    if (j.format !== 'lora-studio-bundle') return null;
    return {
      name: typeof j.source?.name === 'string' ? j.source.name : null,
      sourceRunId: typeof j.source?.runId === 'string' ? j.source.runId : null,
      modelPath: typeof j.source?.config?.modelPath === 'string' ? j.source.config.modelPath : null,
      totalSteps: typeof j.steps === 'number' ? j.steps : null,
    };
  } catch {
    return null;
  }
}

/** A path the user chose → the output folder to read, and the bundle it belongs to. */
function locate(path: string): { out: string; bundlePath: string | null } {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new StudioError({ message: `${abs} does not exist; choose the run's metrics.jsonl or the bundle's output folder (where train.py writes it)`, field: 'path', file: abs });
  if (!statSync(abs).isDirectory()) {
    if (basename(abs) === 'metrics.jsonl' || basename(abs) === 'status.json') return locate(dirname(abs));
    throw new StudioError({ message: `${abs} is a file but not metrics.jsonl; choose the run's metrics.jsonl or the bundle's output folder`, field: 'path', file: abs });
  }
  // The bundle folder itself: its run writes into output/ (train.py's default).
  if (readBundle(abs) && !existsSync(join(abs, 'status.json')) && !existsSync(join(abs, 'metrics.jsonl'))) return { out: join(abs, 'output'), bundlePath: abs };
  return { out: abs, bundlePath: readBundle(dirname(abs)) ? dirname(abs) : null };
}

function last<T>(xs: readonly T[]): T | undefined {
  return xs.length ? xs[xs.length - 1] : undefined;
}

function summarize(e: Entry): ExternalRunSummary {
  const s = e.reader.status;
  const points = e.reader.points;
  const lastPoint = last(points);
  let state: ExternalRunState = 'waiting';
  if (s) state = s.state === 'completed' ? 'completed' : s.state === 'failed' ? 'failed' : 'running';
  else if (points.length > 0) state = 'running';
  const adapterDir = join(e.path, s?.adapterDir ?? 'adapter');
  const validation = [...points].reverse().find((p) => p.validationLoss !== undefined)?.validationLoss ?? null;
  const mtime = e.reader.metricsMtimeMs;
  const updated = [s?.updatedAt ?? null, mtime !== null ? new Date(mtime).toISOString() : null].filter((x): x is string => x !== null).sort();
  return {
    id: e.id,
    name: s?.name ?? e.bundle?.name ?? basename(e.bundlePath ?? e.path),
    path: e.path,
    bundlePath: e.bundlePath,
    sourceRunId: s?.sourceRunId ?? e.bundle?.sourceRunId ?? null,
    state,
    step: Math.max(s?.step ?? 0, lastPoint?.step ?? 0),
    totalSteps: s?.totalSteps ?? e.bundle?.totalSteps ?? null,
    lastLoss: lastPoint && Number.isFinite(lastPoint.loss) ? lastPoint.loss : null,
    validationLoss: validation,
    tokensPerSecond: lastPoint?.tokensPerSecond ?? null,
    worldSize: s?.worldSize ?? null,
    distributedType: s?.distributedType ?? null,
    mixedPrecision: s?.mixedPrecision ?? null,
    dropoutMasks: s?.dropoutMasks ?? null,
    zeroStage: s?.zeroStage ?? null,
    error: s?.error ?? null,
    startedAt: s?.startedAt ?? null,
    updatedAt: last(updated) ?? null,
    followedAt: e.followedAt,
    adapterReady: state === 'completed' && existsSync(join(adapterDir, ADAPTER_CONFIG_FILE)),
    adapterId: e.adapterId,
    autoImport: e.autoImport,
    importError: e.importError,
    problems: [...e.reader.problems],
  };
}

export function createExternalRuns(options: ExternalRunsOptions): ExternalRuns {
  const entries = new Map<string, Entry>();
  const { emit } = options;

  function save(): void {
    const list: Followed[] = [...entries.values()].map((e) => ({ id: e.id, path: e.path, autoImport: e.autoImport, followedAt: e.followedAt, adapterId: e.adapterId }));
    writeFileAtomic(options.file, `${JSON.stringify(list, null, 2)}\n`);
  }

  function add(f: Followed, bundlePath: string | null): Entry {
    const e: Entry = { ...f, reader: new ExternalRunReader(f.path), bundlePath, bundle: bundlePath ? readBundle(bundlePath) : null, importError: null, importing: false };
    entries.set(e.id, e);
    return e;
  }

  // Followed before the last restart.
  if (existsSync(options.file)) {
    try {
      const list = JSON.parse(readFileSync(options.file, 'utf8')) as Followed[];
      for (const f of Array.isArray(list) ? list : []) {
        if (typeof f?.id !== 'string' || typeof f.path !== 'string') continue;
        add({ id: f.id, path: f.path, autoImport: f.autoImport !== false, followedAt: String(f.followedAt ?? new Date().toISOString()), adapterId: typeof f.adapterId === 'string' ? f.adapterId : null }, readBundle(dirname(f.path)) ? dirname(f.path) : null);
      }
    } catch (err) {
      console.warn(`external runs: cannot read ${options.file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  function entry(runId: string): Entry {
    const e = entries.get(runId);
    if (!e) throw new StudioError({ message: `no external run with id ${JSON.stringify(runId)} (it may have been unfollowed)`, field: 'id' });
    return e;
  }

  function doImport(e: Entry, name?: string): AdapterImportResult {
    const s = summarize(e);
    if (s.state !== 'completed') throw new StudioError({ message: `the external run ${s.name} has not completed yet (${s.state}, step ${s.step}${s.totalSteps ? `/${s.totalSteps}` : ''}); its adapter is written at the end`, field: 'id' });
    const adapterDir = join(e.path, e.reader.status?.adapterDir ?? 'adapter');
    const modelPath = e.bundle?.modelPath && existsSync(join(e.bundle.modelPath, 'config.json')) ? e.bundle.modelPath : undefined;
    e.importing = true;
    try {
      const result = importAdapter(options.adapters, { path: adapterDir, ...(modelPath ? { modelPath } : {}), name: name ?? s.name, importedFrom: adapterDir, fields: { path: 'id', modelPath: 'id' } });
      e.adapterId = result.adapter.id;
      e.importError = null;
      return result;
    } catch (err) {
      e.importError = toStudioErrorInfo(err);
      throw err;
    } finally {
      e.importing = false;
      save();
      emit('external.updated', summarize(e));
    }
  }

  function pollOne(e: Entry): void {
    let r;
    try {
      r = e.reader.poll();
    } catch (err) {
      // A share that went away for a moment: keep what we have, try again at the next poll.
      console.warn(`external run ${e.id}: cannot read ${e.path}: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    if (e.bundlePath === null && readBundle(dirname(e.path))) {
      e.bundlePath = dirname(e.path);
      e.bundle = readBundle(e.bundlePath);
    }
    if (r.reset) emit('external.metrics', { id: e.id, points: e.reader.points, truncatedAfter: 0 });
    else if (r.newPoints.length > 0) emit('external.metrics', { id: e.id, points: r.newPoints });
    if (r.reset && e.adapterId !== null) {
      // A relaunch: the imported adapter stays in the list; the new run's adapter can be imported again.
      e.adapterId = null;
      save();
    }
    if (r.changed) emit('external.updated', summarize(e));
    const s = summarize(e);
    if (s.adapterReady && e.autoImport && e.adapterId === null && e.importError === null && !e.importing) {
      try {
        doImport(e);
        options.onAdapterImported?.();
      } catch {
        // kept in importError and shown next to the run
      }
    }
  }

  let polling: Promise<void> = Promise.resolve();
  async function pollNow(): Promise<void> {
    polling = polling.then(() => {
      for (const e of entries.values()) pollOne(e);
    });
    return polling;
  }
  const timer = setInterval(() => void pollNow(), options.pollMs ?? 1000);
  timer.unref();

  const handlers: ExternalRuns['handlers'] = {
    'external.follow': async (raw) => {
      const p = parseParams('external.follow', raw);
      const { out, bundlePath } = locate(p.path);
      const existing = [...entries.values()].find((e) => e.path === out);
      if (existing) return summarize(existing);
      const e = add({ id: newId('ext'), path: out, autoImport: p.autoImport ?? true, followedAt: new Date().toISOString(), adapterId: null }, bundlePath);
      save();
      await pollNow();
      const s = summarize(e);
      emit('external.updated', s);
      return s;
    },
    'external.list': async () => [...entries.values()].map(summarize).sort((a, b) => (a.followedAt < b.followedAt ? 1 : -1)),
    'external.metrics': async (raw) => {
      const p = parseParams('external.metrics', raw);
      const points: MetricPoint[] = entry(p.id).reader.points;
      return p.afterStep === undefined ? points.slice() : points.filter((x) => x.step > (p.afterStep as number));
    },
    'external.unfollow': async (raw) => {
      const p = parseParams('external.unfollow', raw);
      entry(p.id);
      entries.delete(p.id);
      save();
      emit('external.removed', { id: p.id });
      return { id: p.id };
    },
    'external.importAdapter': async (raw) => {
      const p = parseParams('external.importAdapter', raw);
      const e = entry(p.id);
      await pollNow();
      const result = doImport(e, p.name);
      options.onAdapterImported?.();
      return result;
    },
  };

  return { handlers, pollNow, close: () => clearInterval(timer) };
}
