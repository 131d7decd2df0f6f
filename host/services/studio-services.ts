/**
 * The studio's services: one `handle(method, params)` for every request in common/protocol.ts and one event stream.
 * The Electron main process and the web host are thin transports over this object, so both (and the tests) drive
 * exactly the same code.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { freemem, totalmem } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  STUDIO_METHODS,
  type StudioEventMessage,
  type StudioEventName,
  type StudioEvents,
  type StudioMethod,
  type StudioResult,
} from '../../common/protocol.ts';
import { startEngine } from '../../engine/host-api.ts';
import { readModelConfig } from '../../engine/host-api.ts';
import { estimateTrainingMemory } from '../../engine/host-api.ts';
import { nativeStatus } from '../../engine/host-api.ts';
import { configuredThreads, cpuThreadsEnv } from '../../engine/host-api.ts';
import { exportAdapterGguf } from '../../engine/host-api.ts';
import { ensureSample } from '../../engine/host-api.ts';
import { AdapterStore, renameAdapter, safeFileName } from './adapter-store.ts';
import { checkAllowedPaths, webAllowedRoots } from './allowed-roots.ts';
import { importAdapter } from './adapter-import.ts';
import { exportRunBundle, type BundleWorkerHandle } from './bundle-export.ts';
import { createExternalRuns } from './external-runs.ts';
import { BackendProbe } from './backend-probe.ts';
import { asStudioError, StudioError } from './errors.ts';
import { assertWritableHome, openHome, type StudioHome } from './home.ts';
import { basePlanFor, checkDataset, checkModel } from './preflight.ts';
import { openStudioDbRecovering } from './db.ts';
import { deleteAdapter } from './run-catalog.ts';
import { StudioPresence } from './presence.ts';
import { RunMetricsExporter, servePrometheus, type PrometheusEndpoint } from './prometheus.ts';
import { RunManager, type EngineHandle } from './run-manager.ts';
import { isTerminal } from './run-state.ts';
import { RunStore } from './run-store.ts';
import { SettingsStore } from './settings.ts';
import { createPlayground } from './playground.ts';
import { QuantArchive } from './quant-archive.ts';
import { createQuantLab } from './quant-lab.ts';
import { createModelDiscovery } from './model-discovery-service.ts';
import { createModelPulls } from './model-pull.ts';
import { exportMergedModel } from './merged-export.ts';
import { exportAdapterForOllama } from './ollama-export.ts';
import { parseParams } from './params.ts';

export interface StudioDialogs {
  pickFolder(options: { title?: string }): Promise<string | null>;
  pickFile(options: { title?: string; extensions?: string[] }): Promise<string | null>;
}

/** Per-request abilities of the transport, e.g. the Electron window that asked for a drag. */
export interface RequestContext {
  startDrag?: (path: string) => void;
}

export interface StudioServicesOptions {
  /** Studio data folder (see home.ts); a path or an opened home. */
  home: string | StudioHome;
  host: 'electron' | 'web';
  dialogs?: StudioDialogs;
  startDrag?: (path: string) => void;
  /** Engine worker factory; the real worker_thread engine unless a host runs engines elsewhere. */
  startEngine?: () => EngineHandle | Promise<EngineHandle>;
  /** How often followed external runs are read (ms; default 1000). */
  externalPollMs?: number;
  startBundleWorker?: () => BundleWorkerHandle;
  /** Web host only: folders besides the studio's own that requests may name (`serve --allow`); see allowed-roots.ts. */
  allowedDirs?: readonly string[];
}

export interface StudioServices {
  readonly home: StudioHome;
  readonly host: 'electron' | 'web';
  handle<M extends StudioMethod>(method: M, params: unknown, context?: RequestContext): Promise<StudioResult<M>>;
  /** Returns a function that removes the listener. */
  onEvent(listener: (message: StudioEventMessage) => void): () => void;
  /** What the studio had to do to start (a damaged database kept aside, unreadable rows), for the transport to show. */
  readonly notices: readonly string[];
  hasActiveRuns(): boolean;
  whenIdle(): Promise<void>;
  close(): Promise<void>;
}

/** The GGUF LoRA file 'adapters.exportGguf' writes into an adapter's folder. */
const ADAPTER_GGUF_FILE = 'adapter-lora.gguf';

/** The app's version from package.json, wherever the code runs from (sources, dist/, an asar archive). */
function appVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
        if (pkg.name === 'lora-studio' && typeof pkg.version === 'string') return pkg.version;
      } catch {
        // keep looking further up
      }
    }
    dir = dirname(dir);
  }
  return '0.0.0';
}

function desktopOnly(what: string): StudioError {
  return new StudioError({ message: `${what} works only in the desktop app; in the browser, drag the adapter to download it as a zip, or type a path` });
}

export function createStudioServices(options: StudioServicesOptions): StudioServices {
  const home = typeof options.home === 'string' ? openHome(options.home) : options.home;
  const listeners = new Set<(m: StudioEventMessage) => void>();
  const emit = <E extends StudioEventName>(event: E, data: StudioEvents[E]): void => {
    const message = { event, data } as StudioEventMessage;
    for (const l of listeners) {
      try {
        l(message);
      } catch {
        // One broken listener (a closed window, a dead socket) must not stop the others.
      }
    }
  };
  assertWritableHome(home);
  const adapters = new AdapterStore(home);
  const notices: string[] = [];
  const { db, recovered } = openStudioDbRecovering(home.root);
  const settings = new SettingsStore(db);
  const exporter = new RunMetricsExporter();
  const backendProbe = new BackendProbe();
  let runs: RunManager | null = null;
  const presence = new StudioPresence(db, {
    kind: options.host,
    onCommand: (c) => {
      if (!runs) throw new Error('the studio is still starting; try again');
      return runs.command(c.action, c.runId, c.args);
    },
  });
  // Another studio process on this folder owns the runs it left executing; recovering them here would run them twice.
  const recover = presence.others().length === 0;
  presence.start();
  // Workers started from now on (a run's engine, the playground's) get the cpu thread count the settings ask for.
  const workerEnv = (): NodeJS.ProcessEnv => cpuThreadsEnv(settings.get().cpuThreads);
  const runStore = new RunStore(home, db, recovered ? `the studio database was damaged and rebuilt from ${home.runs}` : undefined);
  if (recovered) {
    notices.push(
      `the studio database ${db.path} could not be used (${recovered.reason}); it was kept as ${recovered.keptAs} and a new one was made. ` +
        `${runStore.imported} run${runStore.imported === 1 ? ' was' : 's were'} rebuilt from their folders in ${home.runs} (their step-by-step metrics and logs stay in the kept file).`,
    );
  }
  runs = new RunManager({
    store: runStore,
    adapters,
    emit,
    startEngine: options.startEngine ?? (() => startEngine({ env: workerEnv() })),
    settings: () => settings.get(),
    exporter,
    recover,
    // Runs are counted per device; `auto` is whatever the probe says a run will get.
    resolveDevice: async (config) => (config.backend === 'auto' ? (await backendProbe.get()).auto : config.backend),
    datasetCacheDir: join(home.root, 'cache', 'datasets'),
  });
  const manager = runs;
  let closed: Promise<void> | null = null;
  // Prometheus starts with every run's state, and the full series of the runs still going.
  for (const r of db.listRuns()) {
    exporter.setState(r, r.state);
    if (!isTerminal(r.state)) exporter.restore(r, db.metrics(r.id), r.totalSteps);
  }
  for (const n of notices) console.warn(`lora-studio: ${n}`);
  // Unreadable rows were named on stderr as they were met (db.ts readableRuns).
  notices.push(...db.problems);
  // A studio served to a browser touches only files under its roots; the desktop app keeps the user's own access.
  const allowedRoots = options.host === 'web' ? webAllowedRoots(home.root, options.allowedDirs ?? []) : null;
  const version = appVersion();
  const quantArchive = new QuantArchive(join(home.root, 'quant-reports'));
  const quant = createQuantLab({ emit, archive: quantArchive });
  for (const problem of quantArchive.problems) console.warn(`quantization lab: skipped a stored report: ${problem}`);
  const playground = createPlayground({ emit, env: workerEnv });
  const modelDiscovery = createModelDiscovery();
  const modelPulls = createModelPulls({ emit });
  const external = createExternalRuns({
    file: join(home.root, 'external-runs.json'),
    adapters,
    emit,
    ...(options.externalPollMs !== undefined ? { pollMs: options.externalPollMs } : {}),
    onAdapterImported: () => emit('adapters.changed', adapters.list()),
  });

  // The Prometheus endpoint follows the setting: off (null) or on 127.0.0.1:<port>.
  let prometheus: PrometheusEndpoint | null = null;
  let prometheusChange: Promise<void> = Promise.resolve();
  const applyPrometheus = (port: number | null): void => {
    prometheusChange = prometheusChange.then(async () => {
      if (prometheus && prometheus.port === port) return;
      await prometheus?.close();
      prometheus = null;
      if (port === null) return;
      try {
        prometheus = await servePrometheus(exporter, { port });
      } catch (e) {
        emit('run.log', { runId: '', level: 'error', message: e instanceof Error ? e.message : String(e) });
      }
    });
  };
  applyPrometheus(settings.get().prometheusPort);
  settings.onChange((s) => {
    applyPrometheus(s.prometheusPort);
    manager.settingsChanged();
    emit('settings.changed', s);
  });

  const handlers: { [M in StudioMethod]: (params: unknown, ctx: RequestContext) => Promise<StudioResult<M>> } = {
    // The backends the engine has; which of them this machine can run is 'backends.probe'.
    'app.info': async () => ({ version, home: home.root, host: options.host, backends: ['cpu', 'webgpu'] }),
    'backends.probe': async (raw) => backendProbe.get(parseParams('backends.probe', raw)?.refresh === true),
    'models.sample': async () => {
      const sample = await ensureSample();
      return checkModel(sample.modelDir, 'modelPath');
    },
    'models.inspect': async (raw) => checkModel(parseParams('models.inspect', raw).path, 'path'),
    'models.discover': async (raw) => {
      parseParams('models.discover', raw);
      return modelDiscovery.discover();
    },
    'datasets.sample': async () => {
      const sample = await ensureSample();
      return checkDataset({ path: sample.datasetPath, modelPath: sample.modelDir, field: 'datasetPath' });
    },
    'datasets.inspect': async (raw) => {
      const p = parseParams('datasets.inspect', raw);
      return checkDataset({ path: p.path, format: p.format, modelPath: p.modelPath, maxSeqLen: p.maxSeqLen, trainOn: p.trainOn, field: 'path' });
    },
    'datasets.upload': async (raw) => {
      const p = parseParams('datasets.upload', raw);
      const name = safeFileName(basename(p.fileName.replaceAll('\\', '/')), 'dataset.jsonl');
      const ext = extname(name);
      const stem = name.slice(0, name.length - ext.length);
      let target = join(home.datasets, name);
      for (let n = 2; existsSync(target) && readFileSync(target, 'utf8') !== p.content; n++) target = join(home.datasets, `${stem}-${n}${ext}`);
      writeFileSync(target, p.content);
      return checkDataset({ path: target, field: 'fileName' });
    },
    'runs.start': async (raw) => {
      const p = parseParams('runs.start', raw);
      return manager.start(p.config, p.priority ?? 0);
    },
    'runs.list': async () => manager.list(),
    'runs.get': async (raw) => manager.get(parseParams('runs.get', raw).id),
    'runs.metrics': async (raw) => {
      const p = parseParams('runs.metrics', raw);
      return manager.metrics(p.id, p.afterStep);
    },
    'runs.cancel': async (raw) => manager.cancel(parseParams('runs.cancel', raw).id),
    'runs.pause': async (raw) => manager.pause(parseParams('runs.pause', raw).id),
    'runs.resume': async (raw) => manager.resume(parseParams('runs.resume', raw).id),
    'runs.stopAndSave': async (raw) => manager.stopAndSave(parseParams('runs.stopAndSave', raw).id),
    'runs.setPriority': async (raw) => {
      const p = parseParams('runs.setPriority', raw);
      return manager.setPriority(p.id, p.priority);
    },
    'runs.update': async (raw) => {
      const { id: runId, ...patch } = parseParams('runs.update', raw);
      return manager.update(runId, patch);
    },
    'runs.delete': async (raw) => {
      const p = parseParams('runs.delete', raw);
      return manager.delete(p.id, { ...(p.deleteAdapter !== undefined ? { deleteAdapter: p.deleteAdapter } : {}), ...(p.dryRun !== undefined ? { dryRun: p.dryRun } : {}) });
    },
    'adapters.delete': async (raw) => {
      const p = parseParams('adapters.delete', raw);
      const result = deleteAdapter(db, adapters, p.id, p.dryRun ? { dryRun: true } : {});
      if (result.deleted) emit('adapters.changed', adapters.list());
      return result;
    },
    'adapters.rename': async (raw) => {
      const p = parseParams('adapters.rename', raw);
      const renamed = renameAdapter(db, adapters, p.id, p.name);
      emit('adapters.changed', adapters.list());
      return renamed;
    },
    'runs.events': async (raw) => {
      const p = parseParams('runs.events', raw);
      return manager.events(p.id, p.afterId ?? 0);
    },
    'runs.history': async (raw) => manager.history(parseParams('runs.history', raw).id),
    'runs.evalSamples': async (raw) => {
      const p = parseParams('runs.evalSamples', raw);
      return manager.evalSamples(p.id, p.afterStep);
    },
    'runs.estimateMemory': async (raw) => {
      const p = parseParams('runs.estimateMemory', raw);
      let model;
      try {
        model = readModelConfig(p.modelPath);
      } catch (e) {
        throw asStudioError(e, 'modelPath');
      }
      const backend = p.backend ?? 'cpu';
      const threads = configuredThreads(workerEnv());
      // Which cpu kernels the engine worker will run (its environment decides: LORA_STUDIO_CPU_NATIVE, a built addon).
      const kernels = backend === 'cpu' && nativeStatus(workerEnv()).native !== null ? 'native' : 'portable';
      const estimate = estimateTrainingMemory(model, { lora: p.lora, train: p.train }, { backend, threads: backend === 'cpu' ? threads : 1, kernels, basePlan: basePlanFor(p.modelPath, p.train) });
      return { estimate, systemMemoryBytes: totalmem(), freeMemoryBytes: freemem() };
    },
    'settings.get': async () => settings.get(),
    'settings.set': async (raw) => {
      parseParams('settings.set', raw);
      // The store checks the keys as sent: the parsed record has lost any "__proto__" key, which must be refused too.
      return settings.set(raw);
    },
    'adapters.list': async () => adapters.list(),
    'adapters.saveAs': async (raw) => {
      const p = parseParams('adapters.saveAs', raw);
      return adapters.saveAs(p.id, p.destination);
    },
    'adapters.startDrag': async (raw, ctx) => {
      const p = parseParams('adapters.startDrag', raw);
      const startDrag = ctx.startDrag ?? options.startDrag;
      if (!startDrag) throw desktopOnly('Dragging an adapter out as a folder');
      const path = adapters.pathOf(p.id);
      startDrag(path);
      return { path };
    },
    'adapters.exportGguf': async (raw) => {
      const p = parseParams('adapters.exportGguf', raw);
      const summary = adapters.get(p.id);
      const out = join(summary.path, ADAPTER_GGUF_FILE);
      let written;
      try {
        written = exportAdapterGguf(summary.path, out, { dtype: p.dtype ?? 'f32', name: summary.name });
      } catch (e) {
        throw asStudioError(e);
      }
      emit('adapters.changed', adapters.list());
      return { path: out, bytes: written.bytes };
    },
    'adapters.exportOllama': async (raw) => exportAdapterForOllama(adapters, raw, () => emit('adapters.changed', adapters.list())),
    'adapters.exportMerged': async (raw) => exportMergedModel(adapters, raw),
    'adapters.import': async (raw) => {
      const p = parseParams('adapters.import', raw);
      const result = importAdapter(adapters, { path: p.path, ...(p.modelPath ? { modelPath: p.modelPath } : {}), ...(p.name ? { name: p.name } : {}) });
      emit('adapters.changed', adapters.list());
      return result;
    },
    'runs.exportBundle': async (raw) => {
      const p = parseParams('runs.exportBundle', raw);
      const run = manager.get(p.id);
      return exportRunBundle({
        run,
        bundlesDir: join(home.root, 'bundles'),
        studioVersion: version,
        ...(p.destination ? { destination: p.destination } : {}),
        ...(p.includeModel ? { includeModel: p.includeModel } : {}),
        launch: { ...(p.launcher ? { launcher: p.launcher } : {}), ...(p.processes !== undefined ? { processes: p.processes } : {}), ...(p.dropout ? { dropout: p.dropout } : {}) },
        ...(options.startBundleWorker ? { startWorker: options.startBundleWorker } : {}),
      });
    },
    ...external.handlers,
    'dialog.pickFolder': async (raw) => {
      const p = parseParams('dialog.pickFolder', raw) ?? {};
      if (!options.dialogs) throw desktopOnly('The folder picker');
      return { path: await options.dialogs.pickFolder(p) };
    },
    'dialog.pickFile': async (raw) => {
      const p = parseParams('dialog.pickFile', raw) ?? {};
      if (!options.dialogs) throw desktopOnly('The file picker');
      return { path: await options.dialogs.pickFile(p) };
    },
    ...quant.handlers,
    ...playground.handlers,
    ...modelPulls.handlers,
  };

  return {
    home,
    host: options.host,
    notices,
    async handle<M extends StudioMethod>(method: M, params: unknown, context: RequestContext = {}): Promise<StudioResult<M>> {
      if (!(STUDIO_METHODS as readonly string[]).includes(method)) {
        throw new StudioError({ message: `unknown request ${JSON.stringify(method)}; known: ${STUDIO_METHODS.join(', ')}` });
      }
      if (allowedRoots) checkAllowedPaths(method, params, allowedRoots);
      const handler = handlers[method] as (params: unknown, ctx: RequestContext) => Promise<StudioResult<M>>;
      return handler(params, context);
    },
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    hasActiveRuns: () => manager.hasActiveRuns(),
    whenIdle: () => manager.whenIdle(),
    close: async () => {
      if (closed) return closed;
      closed = (async () => {
        // Executing runs write a checkpoint and stay queued for the next start (run-manager.ts close).
        external.close();
        await Promise.all([manager.close(), quant.close(), playground.close(), modelDiscovery.close(), modelPulls.close()]);
        presence.stop();
        applyPrometheus(null);
        await prometheusChange;
        db.close();
      })();
      return closed;
    },
  };
}
