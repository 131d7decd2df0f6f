/**
 * The quantization lab's state: the job's settings, the running job (progress, cancel), the finished report, and
 * what the user is looking at in it. Talks to the services through the studio's client; listens to the quant.*
 * events of its own job only.
 */
import { create } from 'zustand';
import type {
  QuantAdapterMode,
  QuantFormatInfo,
  QuantJobSummary,
  QuantProgress,
  StudioErrorInfo,
  StudioEventMessage,
  StudioParams,
} from '../../../common/protocol.ts';
import { isQuantFormatName } from '../../../common/quant-formats.ts';
import type { QuantReport, ReportMatrix } from '../../../common/quant-report.ts';
import { errorInfo, type StudioClient } from '../client/transport.ts';
import { createModelSlice, type ModelSlice } from '../stores/model-slice.ts';
import { followStudioEvents } from '../stores/follow-events.ts';
import { useStudio } from '../stores/studio.ts';
import type { LabMetric } from './lab-metrics.ts';

export type CalibChoice = 'sample' | 'file' | 'none';

export interface SelectedCell {
  layer: number;
  matrix: ReportMatrix;
}

/** The model fields and actions come from stores/model-slice.ts. */
export interface LabState extends ModelSlice {
  formats: QuantFormatInfo[];
  formatsError: StudioErrorInfo | null;

  /** Adapter id from the Adapters list; '' = none. */
  adapterId: string;
  adapterModes: QuantAdapterMode[];
  chosen: string[];
  calib: CalibChoice;
  calibPath: string;
  /** Threshold overrides as typed; '' = automatic. */
  relErrThreshold: string;
  klThreshold: string;

  starting: boolean;
  startError: StudioErrorInfo | null;
  job: QuantJobSummary | null;
  progress: QuantProgress | null;
  cancelling: boolean;

  report: QuantReport | null;
  reportError: StudioErrorInfo | null;

  metric: LabMetric;
  /** Report keys of the two heatmaps; right = '' shows one. */
  left: string;
  right: string;
  /** The format the worst-first table and the plan are about: one of left/right. */
  focus: string;
  selected: SelectedCell | null;

  loadFormats(): Promise<void>;
  /** Desktop only: the native file picker. */
  browseCalib(): Promise<void>;
  setAdapter(id: string): void;
  toggleAdapterMode(mode: QuantAdapterMode): void;
  toggleFormat(name: string): void;
  setCalib(choice: CalibChoice): void;
  setCalibPath(path: string): void;
  setThreshold(which: 'relErr' | 'kl', value: string): void;
  start(): Promise<void>;
  cancel(): Promise<void>;
  onEvent(message: StudioEventMessage): void;
  /** Catch up with the job after events may have been missed (a reconnect). */
  refresh(): Promise<void>;
  /** Jobs the services know, newest first (finished reports survive restarts). */
  history: QuantJobSummary[];
  /** Reloads `history`; with no job on screen, opens the newest finished report. */
  loadHistory(): Promise<void>;
  /** Shows a finished job's report. */
  openJob(jobId: string): Promise<void>;
  setMetric(metric: LabMetric): void;
  setLeft(key: string): void;
  setRight(key: string): void;
  setFocus(key: string): void;
  select(cell: SelectedCell | null): void;
}

export const DEFAULT_FORMATS = ['q8_0', 'q4_0'];

function client(): StudioClient {
  const c = useStudio.getState().client;
  if (!c) throw new Error('the studio is not connected yet');
  return c;
}

/** A threshold as typed: '' = automatic, a positive number = override, anything else = a message. */
export function parseThreshold(text: string, what: string): { value?: number; error?: string } {
  const t = text.trim();
  if (t === '') return {};
  const v = Number(t);
  if (!Number.isFinite(v) || v <= 0) return { error: `${what} must be a number greater than 0 (or empty for automatic)` };
  return { value: v };
}

const isFinished = (state: QuantJobSummary['state'] | undefined): boolean => state === 'done' || state === 'failed' || state === 'cancelled';

/**
 * What keeps a lab job from starting, known before the click (the Run button is off and lists them, as Train does):
 * no model, no format, an adapter with no way to meet the base, a calibration file not typed, a bad threshold.
 */
export function labProblems(
  s: Pick<LabState, 'model' | 'modelPath' | 'chosen' | 'adapterModes' | 'calib' | 'calibPath' | 'relErrThreshold' | 'klThreshold'>,
  hasAdapter: boolean,
): { field: string; message: string }[] {
  const problems: { field: string; message: string }[] = [];
  if (!(s.model?.path ?? s.modelPath).trim()) problems.push({ field: 'modelPath', message: 'choose a model (or use the sample model)' });
  if (s.chosen.length === 0) problems.push({ field: 'formats', message: 'choose at least one format' });
  if (hasAdapter && s.adapterModes.length === 0) problems.push({ field: 'adapterModes', message: 'choose how the adapter meets the quantized base' });
  if (s.calib === 'file' && !s.calibPath.trim()) problems.push({ field: 'calibPath', message: 'type the path of a calibration text file, or use the sample' });
  const rel = parseThreshold(s.relErrThreshold, 'the relative-error threshold');
  const kl = parseThreshold(s.klThreshold, 'the KL threshold');
  if (rel.error) problems.push({ field: 'thresholds.relErr', message: rel.error });
  if (kl.error) problems.push({ field: 'thresholds.kl', message: kl.error });
  return problems;
}

export const useLab = create<LabState>()((set, get) => {
  async function fetchReport(jobId: string): Promise<void> {
    try {
      const { job, report } = await client().request('quant.get', { jobId });
      if (get().job?.id !== jobId) return;
      const first = report?.formats.slice(0, 2) ?? [];
      const metric = get().metric;
      // The lower-precision format of the pair is the one that needs looking at.
      const focus = [...first].sort((a, b) => a.bitsPerWeight - b.bitsPerWeight)[0]?.key ?? '';
      set({
        job,
        report,
        reportError: null,
        left: first[0]?.key ?? '',
        right: first[1]?.key ?? '',
        focus,
        selected: null,
        // Behaviour metrics exist only with calibration.
        metric: !report?.calibration && (metric === 'kl' || metric === 'cosine') ? 'relErr' : metric,
      });
    } catch (e) {
      set({ reportError: errorInfo(e) });
    }
  }

  return {
    formats: [],
    formatsError: null,
    ...createModelSlice<LabState>(set, get, { client, browseTitle: 'Choose a model folder (config.json + *.safetensors)' }),
    adapterId: '',
    adapterModes: ['merged', 'on-quantized'],
    chosen: [...DEFAULT_FORMATS],
    calib: 'sample',
    calibPath: '',
    relErrThreshold: '',
    klThreshold: '',
    starting: false,
    startError: null,
    job: null,
    progress: null,
    cancelling: false,
    report: null,
    reportError: null,
    metric: 'relErr',
    left: '',
    right: '',
    focus: '',
    selected: null,

    async loadFormats() {
      try {
        set({ formats: await client().request('quant.formats', {}), formatsError: null });
      } catch (e) {
        set({ formatsError: errorInfo(e) });
      }
    },
    async browseCalib() {
      try {
        const { path } = await client().request('dialog.pickFile', { title: 'Choose calibration text', extensions: ['txt', 'jsonl', 'json'] });
        if (path) set({ calibPath: path, calib: 'file' });
      } catch (e) {
        set({ startError: errorInfo(e) });
      }
    },
    setAdapter(id) {
      set({ adapterId: id });
    },
    toggleAdapterMode(mode) {
      set((s) => ({ adapterModes: s.adapterModes.includes(mode) ? s.adapterModes.filter((m) => m !== mode) : [...s.adapterModes, mode] }));
    },
    toggleFormat(name) {
      set((s) => ({ chosen: s.chosen.includes(name) ? s.chosen.filter((f) => f !== name) : [...s.chosen, name] }));
    },
    setCalib(choice) {
      set({ calib: choice });
    },
    setCalibPath(path) {
      set({ calibPath: path });
    },
    setThreshold(which, value) {
      set(which === 'relErr' ? { relErrThreshold: value } : { klThreshold: value });
    },

    async start() {
      const s = get();
      if (s.starting || (s.job && !isFinished(s.job.state))) return;
      const modelPath = (s.model?.path ?? s.modelPath).trim();
      const adapter = s.adapterId ? useStudio.getState().adapters.find((a) => a.id === s.adapterId) : undefined;
      const problems = labProblems(s, adapter !== undefined);
      const rel = parseThreshold(s.relErrThreshold, 'the relative-error threshold');
      const kl = parseThreshold(s.klThreshold, 'the KL threshold');
      if (problems.length > 0) {
        set({ startError: { message: problems.map((p) => p.message).join('; '), field: problems[0].field, fieldErrors: problems } });
        return;
      }
      // Registry order, so the report (and the heatmaps) always list formats the same way.
      const order = s.formats.map((f) => f.name);
      const formats = [...s.chosen].sort((a, b) => order.indexOf(a) - order.indexOf(b));
      // The names came from 'quant.formats', so the filter keeps them all; it types them as the request's list.
      const request: StudioParams<'quant.start'> = { modelPath, formats: formats.filter(isQuantFormatName) };
      if (adapter) {
        request.adapterPath = adapter.path;
        request.adapterModes = [...s.adapterModes];
      }
      if (s.calib === 'sample') request.useSampleCalib = true;
      if (s.calib === 'file') request.calibPath = s.calibPath.trim();
      if (rel.value !== undefined || kl.value !== undefined) request.thresholds = { ...(rel.value !== undefined ? { relErr: rel.value } : {}), ...(kl.value !== undefined ? { kl: kl.value } : {}) };

      set({ starting: true, startError: null, progress: null, reportError: null });
      try {
        const { job } = await client().request('quant.start', request);
        set({ starting: false, job, progress: job.progress });
        // The job may have ended before this reply arrived (its events came first and were not ours yet).
        const now = await client().request('quant.get', { jobId: job.id });
        if (get().job?.id !== job.id) return;
        if (now.job.state === 'done') await fetchReport(job.id);
        else if (isFinished(now.job.state)) set({ job: now.job });
      } catch (e) {
        set({ starting: false, startError: errorInfo(e) });
      }
    },
    async cancel() {
      const job = get().job;
      if (!job || isFinished(job.state)) return;
      set({ cancelling: true });
      try {
        const summary = await client().request('quant.cancel', { jobId: job.id });
        if (get().job?.id === job.id) set({ job: summary });
      } catch (e) {
        set({ startError: errorInfo(e) });
      } finally {
        set({ cancelling: false });
      }
    },

    history: [],
    async loadHistory() {
      try {
        const history = await client().request('quant.list', {});
        set({ history });
        const newest = history.find((j) => j.state === 'done');
        if (!get().job && !get().starting && newest) await get().openJob(newest.id);
      } catch {
        // An older studio without stored reports, or a dropped connection: the list stays as it was.
      }
    },
    async openJob(jobId) {
      const summary = get().history.find((j) => j.id === jobId);
      if (!summary || summary.state !== 'done') return;
      set({ job: summary, progress: summary.progress, report: null, reportError: null });
      await fetchReport(jobId);
    },

    onEvent(message) {
      const current = get().job;
      if (message.event === 'quant.done' || message.event === 'quant.failed') void get().loadHistory();
      if (!current) return;
      if (message.event === 'quant.progress') {
        const p = message.data as QuantProgress;
        if (p.jobId !== current.id || isFinished(current.state)) return;
        set({ progress: p, job: { ...current, state: 'running' } });
      } else if (message.event === 'quant.done' || message.event === 'quant.failed') {
        const { job } = message.data as { job: QuantJobSummary };
        if (job.id !== current.id) return;
        set({ job, progress: job.progress });
        if (job.state === 'done') void fetchReport(job.id);
      }
    },

    async refresh() {
      const job = get().job;
      if (!job || (isFinished(job.state) && get().report)) return;
      try {
        const now = await client().request('quant.get', { jobId: job.id });
        if (get().job?.id !== job.id) return;
        if (now.job.state === 'done' && !get().report) await fetchReport(job.id);
        else set({ job: now.job, progress: now.job.progress ?? get().progress });
      } catch {
        // The services may have restarted and forgotten the job; the last known state stays on screen.
      }
    },

    setMetric(metric) {
      set({ metric });
    },
    setLeft(key) {
      set((s) => {
        const right = s.right === key ? '' : s.right;
        return { left: key, right, focus: s.focus === key || s.focus === right ? s.focus : key };
      });
    },
    setRight(key) {
      set((s) => ({ right: key, focus: s.focus === s.left || s.focus === key ? s.focus : s.left }));
    },
    setFocus(key) {
      set({ focus: key });
    },
    select(cell) {
      set({ selected: cell });
    },
  };
});

followStudioEvents(
  (m) => useLab.getState().onEvent(m),
  () => {
    void useLab.getState().refresh();
    void useLab.getState().loadHistory();
  },
);
