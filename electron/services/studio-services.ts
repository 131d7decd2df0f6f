/**
 * The studio's services: one `handle(method, params)` for every request in common/protocol.ts and one event stream.
 * The Electron main process and the web host are thin transports over this object, so both (and the tests) drive
 * exactly the same code.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import {
  DATASET_FORMATS,
  STUDIO_METHODS,
  TRAIN_ON,
  type StudioEventMessage,
  type StudioEventName,
  type StudioEvents,
  type StudioMethod,
  type StudioResult,
} from '../../common/protocol.ts';
import { startEngine } from '../../engine/engine-host.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import { AdapterStore, safeFileName } from './adapter-store.ts';
import { BackendProbe } from './backend-probe.ts';
import { StudioError } from './errors.ts';
import { openHome, type StudioHome } from './home.ts';
import { checkDataset, checkModel } from './preflight.ts';
import { RunManager, type EngineHandle } from './run-manager.ts';
import { JsonRunStore } from './run-store.ts';
import { createQuantLab, QUANT_PARAM_SCHEMAS } from './quant-lab.ts';

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
}

export interface StudioServices {
  readonly home: StudioHome;
  readonly host: 'electron' | 'web';
  handle<M extends StudioMethod>(method: M, params: unknown, context?: RequestContext): Promise<StudioResult<M>>;
  /** Returns a function that removes the listener. */
  onEvent(listener: (message: StudioEventMessage) => void): () => void;
  hasActiveRuns(): boolean;
  whenIdle(): Promise<void>;
  close(): Promise<void>;
}

const MAX_UPLOAD_CHARS = 256 * 1024 * 1024;

const empty = z.object({}).optional();
const id = z.string({ message: 'id is required' }).min(1, 'id is required');
const schemas = {
  'app.info': empty,
  'models.sample': empty,
  'models.inspect': z.object({ path: z.string({ message: 'choose a model folder' }).min(1, 'choose a model folder') }),
  'datasets.sample': empty,
  'datasets.inspect': z.object({
    path: z.string({ message: 'choose a dataset file' }).min(1, 'choose a dataset file'),
    modelPath: z.string().min(1).optional(),
    format: z.enum(DATASET_FORMATS).optional(),
    maxSeqLen: z.number().int().min(8, 'max sequence length must be at least 8').optional(),
    trainOn: z.enum(TRAIN_ON).optional(),
  }),
  'datasets.upload': z.object({
    fileName: z.string({ message: 'fileName is required' }).min(1, 'fileName is required').max(255, 'file name is too long'),
    content: z.string({ message: 'content must be the text of the file' }).max(MAX_UPLOAD_CHARS, 'the file is over 256 MiB; use the desktop app or copy it next to the server'),
  }),
  'runs.start': z.object({ config: z.unknown() }),
  'runs.list': empty,
  'runs.get': z.object({ id }),
  'runs.metrics': z.object({ id, afterStep: z.number().optional() }),
  'runs.cancel': z.object({ id }),
  'adapters.list': empty,
  'adapters.saveAs': z.object({ id, destination: z.string({ message: 'choose a folder to save into' }).min(1, 'choose a folder to save into') }),
  'adapters.startDrag': z.object({ id }),
  'dialog.pickFolder': z.object({ title: z.string().optional() }).optional(),
  'dialog.pickFile': z.object({ title: z.string().optional(), extensions: z.array(z.string()).optional() }).optional(),
  ...QUANT_PARAM_SCHEMAS,
  'backends.probe': z.object({ refresh: z.boolean().optional() }).optional(),
} satisfies Record<StudioMethod, z.ZodType>;

function parseParams<M extends StudioMethod>(method: M, params: unknown): z.infer<(typeof schemas)[M]> {
  const parsed = schemas[method].safeParse(params ?? {});
  if (!parsed.success) throw StudioError.fields(parsed.error.issues.map((i) => ({ field: i.path.join('.'), message: i.message })));
  return parsed.data as z.infer<(typeof schemas)[M]>;
}

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
  const adapters = new AdapterStore(home);
  const runs = new RunManager({ store: new JsonRunStore(home), adapters, emit, startEngine: options.startEngine ?? (() => startEngine()) });
  const version = appVersion();
  const quant = createQuantLab({ emit });
  const backendProbe = new BackendProbe();

  const handlers: { [M in StudioMethod]: (params: unknown, ctx: RequestContext) => Promise<StudioResult<M>> } = {
    // The backends the engine has; which of them this machine can run is 'backends.probe'.
    'app.info': async () => ({ version, home: home.root, host: options.host, backends: ['cpu', 'webgpu'] }),
    'backends.probe': async (raw) => backendProbe.get(parseParams('backends.probe', raw)?.refresh === true),
    'models.sample': async () => {
      const sample = await ensureSample();
      return checkModel(sample.modelDir, 'modelPath');
    },
    'models.inspect': async (raw) => checkModel(parseParams('models.inspect', raw).path, 'path'),
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
    'runs.start': async (raw) => runs.start(parseParams('runs.start', raw).config),
    'runs.list': async () => runs.list(),
    'runs.get': async (raw) => runs.get(parseParams('runs.get', raw).id),
    'runs.metrics': async (raw) => {
      const p = parseParams('runs.metrics', raw);
      return runs.metrics(p.id, p.afterStep);
    },
    'runs.cancel': async (raw) => runs.cancel(parseParams('runs.cancel', raw).id),
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
  };

  return {
    home,
    host: options.host,
    async handle<M extends StudioMethod>(method: M, params: unknown, context: RequestContext = {}): Promise<StudioResult<M>> {
      if (!(STUDIO_METHODS as readonly string[]).includes(method)) {
        throw new StudioError({ message: `unknown request ${JSON.stringify(method)}; known: ${STUDIO_METHODS.join(', ')}` });
      }
      const handler = handlers[method] as (params: unknown, ctx: RequestContext) => Promise<StudioResult<M>>;
      return handler(params, context);
    },
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    hasActiveRuns: () => runs.hasActiveRuns(),
    whenIdle: () => runs.whenIdle(),
    close: async () => {
      await Promise.all([runs.close(), quant.close()]);
    },
  };
}
