/**
 * The studio's state: what the user chose (model, dataset, form), what the services told us (runs, metrics,
 * adapters), and the actions that talk to the services. Components read slices of it; only actions write.
 */
import { create } from 'zustand';
import type {
  AdapterSummary,
  DatasetSummary,
  LoraTarget,
  MetricPoint,
  RunConfig,
  RunSummary,
  StudioErrorInfo,
  StudioEventMessage,
  StudioResult,
} from '../../../common/protocol.ts';
import { errorInfo, RequestError, type ConnectionState, type StudioClient } from '../client/transport.ts';
import { inspectKey, inspectParams, type InspectParams } from './dataset-request.ts';
import { checkForm, defaultForm, firstPerField, formFromConfig, type AdvancedChoices, type ComputeChoices, type DataChoices, type FormValues, type NumberField } from './form.ts';
import { browserStorage, loadKeptForm, saveKeptForm } from './form-storage.ts';
import { createModelSlice, type ModelSlice } from './model-slice.ts';
import { applyUpdate, MetricsLoads, type MetricsUpdate } from '../runs/metrics-sync.ts';
import { replyIsNewer } from '../runs/runs-view.ts';

const ACTIVE_STATES: ReadonlySet<RunSummary['state']> = new Set(['pending', 'validating', 'queuing', 'executing', 'finalizing', 'paused']);
export const isActive = (run: RunSummary | undefined | null): boolean => !!run && ACTIVE_STATES.has(run.state);

const EMPTY_POINTS: readonly MetricPoint[] = [];
const MAX_LOG_LINES = 200;

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  message: string;
}

/** The model fields and actions come from model-slice.ts. */
export interface StudioState extends ModelSlice {
  client: StudioClient | null;
  connection: ConnectionState;
  /** The host answered at least once in this window: a later 'closed' is a lost connection, not a host that is down. */
  everConnected: boolean;
  /** The host never answered in this window and an attempt has failed: the page says so instead of showing the UI. */
  unreachable: boolean;
  /** Why the host refuses this page's token ('unauthorized'). */
  authProblem: string | null;
  appInfo: StudioResult<'app.info'> | null;

  datasetPath: string;
  dataset: DatasetSummary | null;
  datasetError: StudioErrorInfo | null;
  datasetBusy: boolean;
  /**
   * inspectKey of the request behind `dataset` / `datasetError`; null while the current path was never inspected.
   * When the model, max length, format or train-on choice change, the key no longer matches and the page re-inspects.
   */
  datasetRequestKey: string | null;
  /** The optional second file used whole as the validation split. */
  validationSummary: DatasetSummary | null;
  validationError: StudioErrorInfo | null;
  validationBusy: boolean;

  form: FormValues;
  /** Problems the services reported for a field (dotted config path, or modelPath/datasetPath). */
  serverErrors: Record<string, string>;
  startError: StudioErrorInfo | null;
  starting: boolean;
  /** A problem not tied to a field (lost connection, a failed cancel); shown in the banner. */
  notice: StudioErrorInfo | null;

  runs: Record<string, RunSummary>;
  currentRunId: string | null;
  metrics: Record<string, readonly MetricPoint[]>;
  logs: Record<string, readonly LogLine[]>;
  adapters: AdapterSummary[];
  adaptersError: StudioErrorInfo | null;
  /** Last "Save as…" outcome, per adapter. */
  saved: Record<string, { path?: string; error?: string }>;

  connect(client: StudioClient): () => void;
  dismissNotice(): void;
  setDatasetPath(path: string): void;
  inspectDataset(): Promise<void>;
  chooseSampleDataset(): Promise<void>;
  browseDataset(): Promise<void>;
  uploadDataset(file: File): Promise<void>;
  /** A file dropped on the window: by its disk path in the desktop app, else its text goes up with datasets.upload. */
  dropDatasetFile(file: File): Promise<void>;
  /** Re-inspects the loaded dataset when the summary no longer matches the model / max length / format / train-on. */
  refreshDataset(): Promise<void>;
  setDataChoice<K extends keyof DataChoices>(key: K, value: DataChoices[K]): void;
  setValidationPath(path: string): void;
  uploadValidationFile(file: File): Promise<void>;
  browseValidationFile(): Promise<void>;
  setNumber(field: NumberField, value: string): void;
  /** The next run's name ('' = generated). */
  setRunName(name: string): void;
  /** Backend, precision, gradient checkpointing; clears the server's complaint about that field. */
  setCompute<K extends keyof ComputeChoices>(key: K, value: ComputeChoices[K]): void;
  toggleTarget(target: LoraTarget): void;
  /** Schedule and rsLoRA (the Advanced group's choices that are not numbers). */
  setAdvanced<K extends keyof AdvancedChoices>(key: K, value: AdvancedChoices[K]): void;
  /**
   * Fills the whole form, model and dataset from a config (a stored run's, a settings file's) and loads the model
   * and dataset it names, as if the user had chosen them: "Train again with these settings".
   */
  applyConfig(config: RunConfig): Promise<void>;
  /** Loads the kept model and dataset once the services answer (after a reload or a restart). */
  restoreChoices(): Promise<void>;
  startRun(): Promise<void>;
  cancelRun(id: string): Promise<void>;
  selectRun(id: string): Promise<void>;
  /** Loads a run's whole metric history unless this window already holds it (and keeps it whole from then on). */
  ensureMetrics(id: string): Promise<void>;
  saveAdapterAs(id: string): Promise<void>;
}

function withoutKey(record: Record<string, string>, key: string): Record<string, string> {
  if (!(key in record)) return record;
  const next = { ...record };
  delete next[key];
  return next;
}

/** Newest first, by creation time. */
export function sortedRuns(runs: Record<string, RunSummary>): RunSummary[] {
  return Object.values(runs).sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
}

const kept = loadKeptForm(browserStorage());

/** The run the Train page's live card shows after a (re)load: the newest training one, else the newest. */
export function liveCardRun(runs: Record<string, RunSummary>): string | null {
  const list = sortedRuns(runs);
  return (list.find((r) => r.state === 'executing') ?? list[0])?.id ?? null;
}

export const useStudio = create<StudioState>()((set, get) => {
  function client(): StudioClient {
    const c = get().client;
    if (!c) throw new Error('the studio is not connected yet');
    return c;
  }

  /** Events always apply (they come in order); a request's reply only when it is newer than what events said. */
  function upsertRun(run: RunSummary, fromReply = false): void {
    if (fromReply && !replyIsNewer(get().runs[run.id], run, 'held')) return;
    set((s) => ({ runs: { ...s.runs, [run.id]: run } }));
  }

  const loads = new MetricsLoads();

  function addMetrics(runId: string, update: MetricsUpdate): void {
    loads.hold(runId, update);
    const s = get();
    const before = s.metrics[runId] ?? EMPTY_POINTS;
    const after = applyUpdate(before, update);
    if (after !== before) set({ metrics: { ...s.metrics, [runId]: after } });
  }

  /** The whole history, then the live points that came meanwhile (metrics-sync.ts): none lost, none doubled. */
  async function loadHistory(runId: string): Promise<void> {
    const token = loads.begin(runId);
    let history: MetricPoint[];
    try {
      history = await client().request('runs.metrics', { id: runId });
    } catch (e) {
      loads.fail(runId, token);
      throw e;
    }
    const series = loads.finish(runId, token, history);
    if (series) set((s) => ({ metrics: { ...s.metrics, [runId]: series } }));
  }

  async function fetchMetrics(runId: string): Promise<void> {
    if (loads.needsLoad(runId)) await loadHistory(runId);
  }

  function onEvent(message: StudioEventMessage): void {
    switch (message.event) {
      case 'run.updated': {
        const run = message.data as RunSummary;
        const before = get().runs[run.id];
        upsertRun(run);
        const current = get().currentRunId;
        // A queued run that starts training takes the Train page's live card once the shown run is no longer active.
        const started = run.state === 'executing' && before?.state !== 'executing';
        if (current === null || (started && current !== run.id && !isActive(get().runs[current]))) set({ currentRunId: run.id });
        break;
      }
      case 'run.metrics': {
        const { runId, points, truncatedAfter } = message.data as StudioEventMessage<'run.metrics'>['data'];
        addMetrics(runId, truncatedAfter === undefined ? { points } : { points, truncatedAfter });
        break;
      }
      case 'run.log': {
        const { runId, level, message: text } = message.data as { runId: string; level: LogLine['level']; message: string };
        set((s) => ({ logs: { ...s.logs, [runId]: [...(s.logs[runId] ?? []), { level, message: text }].slice(-MAX_LOG_LINES) } }));
        break;
      }
      case 'run.removed':
        forgetRun((message.data as StudioEventMessage<'run.removed'>['data']).id);
        break;
      case 'adapters.changed':
        set({ adapters: message.data as AdapterSummary[], adaptersError: null });
        break;
    }
  }

  /** A deleted run leaves this window: its row, its points, its log, and the live card if it had it. */
  function forgetRun(id: string): void {
    set((s) => {
      if (!(id in s.runs)) return {};
      const runs = { ...s.runs };
      delete runs[id];
      const metrics = { ...s.metrics };
      delete metrics[id];
      const logs = { ...s.logs };
      delete logs[id];
      return { runs, metrics, logs, currentRunId: s.currentRunId === id ? liveCardRun(runs) : s.currentRunId };
    });
  }

  /** After every (re)connect: fetch whatever events we may have missed. */
  async function resync(): Promise<void> {
    const c = client();
    if (!restored) {
      restored = true;
      void get().restoreChoices();
    }
    try {
      if (!get().appInfo) set({ appInfo: await c.request('app.info', {}) });
    } catch {
      // Informational only; the header simply shows less.
    }
    try {
      const runs = await c.request('runs.list', {});
      set((s) => {
        // The list is the whole truth: a run missing from it was deleted while this window was not listening.
        const merged: Record<string, RunSummary> = {};
        for (const r of runs) merged[r.id] = replyIsNewer(s.runs[r.id], r, 'reply') ? r : s.runs[r.id]!;
        const currentRunId = s.currentRunId && s.currentRunId in merged ? s.currentRunId : liveCardRun(merged);
        return { runs: merged, currentRunId };
      });
      const current = get().currentRunId;
      // Everything a view showed comes again whole: events may have been missed while the channel was down.
      const wanted = new Set(loads.watchedRuns().filter((id) => id in get().runs));
      if (current) wanted.add(current);
      await Promise.all([...wanted].map((id) => fetchMetrics(id)));
    } catch (e) {
      set({ notice: errorInfo(e) });
    }
    try {
      set({ adapters: await c.request('adapters.list', {}), adaptersError: null });
    } catch (e) {
      set({ adaptersError: errorInfo(e) });
    }
  }

  // A typed path or a loaded model answers the services' complaint about the model path.
  const clearModelComplaint = (s: StudioState): Partial<StudioState> => ({ serverErrors: withoutKey(s.serverErrors, 'modelPath') });
  const modelSlice = createModelSlice<StudioState>(set, get, {
    client,
    browseTitle: 'Choose a model folder (config.json, *.safetensors, tokenizer.json)',
    onPathChange: clearModelComplaint,
    onLoaded: clearModelComplaint,
  });

  /** The kept model and dataset are loaded on the first connect only; later reconnects keep what the user did. */
  let restored = false;

  /** Bumped by every dataset request, so a slow reply to an older one never replaces a newer summary. */
  let datasetSeq = 0;

  /** Inspects `path` with the current model and dataset choices. */
  async function inspectWithChoices(path: string, seq = ++datasetSeq): Promise<void> {
    const params: InspectParams = inspectParams(path, get().model?.path ?? null, get().form);
    const key = inspectKey(params);
    set({ datasetBusy: true, datasetError: null, datasetRequestKey: key });
    try {
      const dataset = await client().request('datasets.inspect', params);
      if (seq !== datasetSeq) return;
      set((s) => ({ dataset, datasetPath: dataset.path, datasetBusy: false, serverErrors: withoutKey(s.serverErrors, 'datasetPath') }));
    } catch (e) {
      if (seq !== datasetSeq) return;
      set({ dataset: null, datasetError: errorInfo(e), datasetBusy: false });
    }
  }

  /** A dataset that first needs a step to get its path on the services' disk (the sample, an upload). */
  async function loadThenInspect(locate: () => Promise<DatasetSummary>): Promise<void> {
    const seq = ++datasetSeq;
    set({ datasetBusy: true, datasetError: null, dataset: null, datasetRequestKey: null });
    let located: DatasetSummary;
    try {
      located = await locate();
    } catch (e) {
      if (seq === datasetSeq) set({ datasetError: errorInfo(e), datasetBusy: false });
      return;
    }
    if (seq !== datasetSeq) return;
    set({ datasetPath: located.path });
    await inspectWithChoices(located.path, seq);
  }

  /** Where a dropped or picked File lies on disk (desktop app only; '' in a browser or for a file with no path). */
  function diskPath(file: File): string {
    try {
      return get().client?.pathForFile?.(file) ?? '';
    } catch {
      return '';
    }
  }

  return {
    client: null,
    connection: 'closed',
    everConnected: false,
    unreachable: false,
    authProblem: null,
    appInfo: null,
    ...modelSlice,
    datasetPath: '',
    dataset: null,
    datasetError: null,
    datasetBusy: false,
    datasetRequestKey: null,
    validationSummary: null,
    validationError: null,
    validationBusy: false,
    // What the user had chosen before the reload or restart (form-storage.ts); loaded once connected.
    ...(kept ? { form: kept.form, modelPath: kept.modelPath, datasetPath: kept.datasetPath } : { form: defaultForm() }),
    serverErrors: {},
    startError: null,
    starting: false,
    notice: null,
    runs: {},
    currentRunId: null,
    metrics: {},
    logs: {},
    adapters: [],
    adaptersError: null,
    saved: {},

    connect(c) {
      set({ client: c });
      const offEvents = c.onEvent(onEvent);
      const offConnection = c.onConnection((state) => {
        set((s) => ({
          connection: state,
          everConnected: s.everConnected || state === 'open',
          unreachable: !(s.everConnected || state === 'open') && (s.unreachable || state === 'closed'),
          authProblem: state === 'unauthorized' ? (c.authProblem?.() ?? 'the studio refused this page') : null,
        }));
        if (state !== 'open') loads.reset();
        if (state === 'open') void resync();
      });
      return () => {
        offEvents();
        offConnection();
      };
    },

    dismissNotice() {
      set({ notice: null });
    },

    setDatasetPath(path) {
      datasetSeq++;
      set((s) => ({ datasetPath: path, dataset: null, datasetError: null, datasetBusy: false, datasetRequestKey: null, serverErrors: withoutKey(s.serverErrors, 'datasetPath') }));
    },
    async inspectDataset() {
      const path = get().datasetPath.trim();
      if (!path) {
        set({ dataset: null, datasetError: { message: 'type the path of a dataset file first', field: 'datasetPath' } });
        return;
      }
      await inspectWithChoices(path);
    },
    async chooseSampleDataset() {
      await loadThenInspect(() => client().request('datasets.sample', {}));
    },
    async browseDataset() {
      try {
        const { path } = await client().request('dialog.pickFile', {
          title: 'Choose a dataset file',
          extensions: ['jsonl', 'json', 'csv', 'tsv', 'parquet', 'txt'],
        });
        if (!path) return;
        set({ datasetPath: path });
        await get().inspectDataset();
      } catch (e) {
        set({ datasetError: errorInfo(e) });
      }
    },
    async uploadDataset(file) {
      set({ datasetPath: file.name });
      await loadThenInspect(async () => client().request('datasets.upload', { fileName: file.name, content: await file.text() }));
    },
    async dropDatasetFile(file) {
      const path = diskPath(file);
      if (!path) {
        await get().uploadDataset(file);
        return;
      }
      get().setDatasetPath(path);
      await inspectWithChoices(path);
    },
    async refreshDataset() {
      const s = get();
      if (s.datasetRequestKey === null) return;
      const path = s.dataset?.path ?? s.datasetPath.trim();
      if (!path) return;
      if (inspectKey(inspectParams(path, s.model?.path ?? null, s.form)) === s.datasetRequestKey) return;
      await inspectWithChoices(path);
    },
    setDataChoice(key, value) {
      const field = key === 'format' ? 'datasetFormat' : `data.${key}`;
      set((s) => ({ form: { ...s.form, data: { ...s.form.data, [key]: value } }, serverErrors: withoutKey(s.serverErrors, field) }));
      // A run refused for a broken record may start once bad records are skipped: the refusal no longer applies.
      if (key === 'badRecords' && get().dataset) set((s) => ({ datasetError: null, startError: null, serverErrors: withoutKey(s.serverErrors, 'datasetPath') }));
    },
    setValidationPath(path) {
      get().setDataChoice('validationPath', path);
      set({ validationSummary: null, validationError: null });
    },
    async uploadValidationFile(file) {
      const path = diskPath(file);
      set({ validationBusy: true, validationError: null, validationSummary: null });
      try {
        const summary = path
          ? await client().request('datasets.inspect', { path, format: get().form.data.format })
          : await client().request('datasets.upload', { fileName: file.name, content: await file.text() });
        get().setDataChoice('validationPath', summary.path);
        set({ validationSummary: summary, validationBusy: false });
      } catch (e) {
        set({ validationError: errorInfo(e), validationBusy: false });
      }
    },
    async browseValidationFile() {
      try {
        const { path } = await client().request('dialog.pickFile', { title: 'Choose a validation file', extensions: ['jsonl', 'json', 'csv', 'tsv', 'parquet', 'txt'] });
        if (!path) return;
        get().setValidationPath(path);
        set({ validationBusy: true });
        set({ validationSummary: await client().request('datasets.inspect', { path, format: get().form.data.format }), validationBusy: false });
      } catch (e) {
        set({ validationError: errorInfo(e), validationBusy: false });
      }
    },

    setRunName(name) {
      set((s) => ({ form: { ...s.form, name }, serverErrors: withoutKey(s.serverErrors, 'name') }));
    },
    setNumber(field, value) {
      set((s) => ({ form: { ...s.form, numbers: { ...s.form.numbers, [field]: value } }, serverErrors: withoutKey(s.serverErrors, field) }));
    },
    setCompute(key, value) {
      const field = key === 'backend' ? 'backend' : key === 'keepLayers' || key === 'keepAs' ? 'train.baseWeightsKeep' : `train.${key}`;
      set((s) => ({ form: { ...s.form, compute: { ...s.form.compute, [key]: value } }, serverErrors: withoutKey(s.serverErrors, field) }));
    },
    toggleTarget(target) {
      set((s) => {
        const has = s.form.targets.includes(target);
        const targets = has ? s.form.targets.filter((t) => t !== target) : [...s.form.targets, target];
        return { form: { ...s.form, targets }, serverErrors: withoutKey(s.serverErrors, 'lora.targets') };
      });
    },

    setAdvanced(key, value) {
      const field = key === 'rslora' ? 'lora.rslora' : `train.${key}`;
      set((s) => ({ form: { ...s.form, advanced: { ...s.form.advanced, [key]: value } }, serverErrors: withoutKey(s.serverErrors, field) }));
    },
    async applyConfig(config) {
      get().setModelPath(config.modelPath);
      get().setDatasetPath(config.datasetPath);
      set({ form: formFromConfig(config), startError: null, serverErrors: {}, validationSummary: null, validationError: null });
      await get().restoreChoices();
    },
    async restoreChoices() {
      const s = get();
      // The model first: the dataset's token counts are measured with its tokenizer.
      if (s.modelPath.trim() && !s.model && !s.modelBusy) await get().inspectModel();
      const now = get();
      if (now.datasetPath.trim() && !now.dataset && !now.datasetBusy) await get().inspectDataset();
    },

    async startRun() {
      const s = get();
      if (s.starting) return;
      const check = checkForm(s.form, s.modelPath.trim(), s.datasetPath.trim());
      // The button is off with its reasons listed (train-blockers.ts); nothing to repeat here.
      if (!check.ok) return;
      set({ starting: true, startError: null, serverErrors: {} });
      try {
        const run = await client().request('runs.start', { config: check.config });
        upsertRun(run, true);
        // A run that queues behind a training one leaves that one's live chart in place (it follows once it starts).
        const shown = get().currentRunId;
        const keep = shown !== null && shown !== run.id && get().runs[shown]?.state === 'executing';
        // The name was this run's: the next one gets its own (generated unless typed again).
        set((st) => ({ currentRunId: keep ? shown : run.id, starting: false, form: st.form.name ? { ...st.form, name: '' } : st.form }));
      } catch (e) {
        const info = errorInfo(e);
        // The services may name fields from the request root (`config.lora.r`); the form knows them as `lora.r`.
        const local = (field: string): string => field.replace(/^config\./, '');
        const fieldMessages = firstPerField((info.fieldErrors ?? []).map((f) => ({ field: local(f.field), message: f.message })));
        if (info.field && !(local(info.field) in fieldMessages)) fieldMessages[local(info.field)] = info.message;
        set({ starting: false, startError: info, serverErrors: fieldMessages });
        if (e instanceof RequestError && 'modelPath' in fieldMessages) set({ modelError: { message: fieldMessages.modelPath, field: 'modelPath' } });
        if (e instanceof RequestError && 'datasetPath' in fieldMessages) set({ datasetError: { message: fieldMessages.datasetPath, field: 'datasetPath' } });
      }
    },
    async cancelRun(id) {
      try {
        upsertRun(await client().request('runs.cancel', { id }), true);
      } catch (e) {
        set({ notice: errorInfo(e) });
      }
    },
    async selectRun(id) {
      set({ currentRunId: id });
      try {
        await fetchMetrics(id);
      } catch (e) {
        set({ notice: errorInfo(e) });
      }
    },
    async ensureMetrics(id) {
      try {
        await fetchMetrics(id);
      } catch (e) {
        set({ notice: errorInfo(e) });
      }
    },

    async saveAdapterAs(id) {
      const mark = (v: { path?: string; error?: string }) => set((st) => ({ saved: { ...st.saved, [id]: v } }));
      try {
        const { path } = await client().request('dialog.pickFolder', { title: 'Save the adapter into…' });
        if (!path) return;
        const result = await client().request('adapters.saveAs', { id, destination: path });
        mark({ path: result.path });
      } catch (e) {
        mark({ error: errorInfo(e).message });
      }
    },
  };
});

// Every change of the form, model path or dataset path is kept at once: a reload or a crash loses nothing.
useStudio.subscribe((s, prev) => {
  if (s.form === prev.form && s.modelPath === prev.modelPath && s.datasetPath === prev.datasetPath) return;
  saveKeptForm(browserStorage(), { form: s.form, modelPath: s.modelPath, datasetPath: s.datasetPath });
});

export function useRunMetrics(runId: string | null): readonly MetricPoint[] {
  return useStudio((s) => (runId ? (s.metrics[runId] ?? EMPTY_POINTS) : EMPTY_POINTS));
}

export { EMPTY_POINTS };
