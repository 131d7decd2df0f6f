/**
 * The quantization lab's services: a queue of lab jobs, one running at a time, each in its own worker_thread
 * (engine/quant/quant-worker.ts) so the model's tensors go away with the worker when the job ends. Requests are
 * checked before a job is queued (model folder, adapter folder, calibration file), so a wrong path is refused at
 * once with the field it came from; what only the engine can find out arrives as 'quant.failed'.
 */
import { existsSync, statSync } from 'node:fs';
import type {
  QuantCommand,
  QuantEvent,
  QuantJobRequest,
  QuantJobSummary,
  StudioEventName,
  StudioEvents,
  StudioMethod,
  StudioResult,
} from '../../common/protocol.ts';
import type { QuantReport } from '../../common/quant-report.ts';
import { GGUF_EXPORT_FORMATS } from '../../engine/host-api.ts';
import { QUANT_FORMATS, QUANT_FORMAT_NAMES } from '../../engine/host-api.ts';
import { StudioError } from './errors.ts';
import { parseParams } from './params.ts';
import { newestFirst, type QuantArchive } from './quant-archive.ts';
import { newId } from './ids.ts';
import { startWorkerHandle, workerEntry, type WorkerHandle } from './worker-handle.ts';
import { checkAdapterFolder, checkModel } from './preflight.ts';

export type QuantMethod = Extract<StudioMethod, `quant.${string}`>;

/** The services' handle on one quant worker. */
export type QuantWorkerHandle = WorkerHandle<QuantCommand, QuantEvent>;

export function startQuantWorker(): QuantWorkerHandle {
  return startWorkerHandle<QuantCommand, QuantEvent>(workerEntry('../../engine/quant/quant-worker.ts', import.meta.url), undefined, (e) => ({
    type: 'error',
    jobId: '',
    cancelled: false,
    message: `quantization worker failed: ${e.message}`,
  }));
}

export interface QuantLabOptions {
  emit: <E extends StudioEventName>(event: E, data: StudioEvents[E]) => void;
  startWorker?: () => QuantWorkerHandle;
  /** After a cancel, how long the worker gets to stop by itself before it is terminated. */
  cancelGraceMs?: number;
  /** Reports kept in memory (oldest dropped first; their jobs stay listed, and archived ones load again). */
  keepReports?: number;
  /** Where finished reports are stored, so they outlive the process; without it they live in memory only. */
  archive?: QuantArchive;
}

export interface QuantLab {
  readonly handlers: { [M in QuantMethod]: (params: unknown) => Promise<StudioResult<M>> };
  /** A job is running or queued. */
  busy(): boolean;
  /** Cancels queued jobs and stops the running one. */
  close(): Promise<void>;
}

interface Job {
  summary: QuantJobSummary;
  report: QuantReport | null;
  worker: QuantWorkerHandle | null;
  /** Resolves once the job is done, failed or cancelled. */
  ended: Promise<void>;
  end: () => void;
  cancelRequested: boolean;
}

const now = (): string => new Date().toISOString();

async function preflight(req: QuantJobRequest): Promise<void> {
  const model = await checkModel(req.modelPath, 'modelPath');
  if (req.adapterPath) checkAdapterFolder(req.adapterPath, 'adapterPath');
  if (req.calibPath && req.useSampleCalib) throw new StudioError({ message: 'choose either a calibration file or the built-in sample, not both', field: 'calibPath' });
  if (req.calibPath) {
    if (!existsSync(req.calibPath)) throw new StudioError({ message: `calibration file ${req.calibPath} does not exist`, field: 'calibPath', file: req.calibPath });
    if (statSync(req.calibPath).isDirectory()) throw new StudioError({ message: `${req.calibPath} is a folder; choose a text, JSONL or JSON file`, field: 'calibPath', file: req.calibPath });
  }
  if ((req.calibPath || req.useSampleCalib) && !model.hasTokenizer) {
    throw new StudioError({ message: `${req.modelPath} has no tokenizer.json, so calibration text cannot be tokenized; run without calibration to measure the weights only`, field: req.calibPath ? 'calibPath' : 'useSampleCalib' });
  }
}

export function createQuantLab(options: QuantLabOptions): QuantLab {
  const startWorker = options.startWorker ?? startQuantWorker;
  const grace = options.cancelGraceMs ?? 3000;
  const keep = options.keepReports ?? 8;
  const jobs = new Map<string, Job>();
  const queue: Job[] = [];
  let running: Job | null = null;
  let closed = false;
  const archive = options.archive ?? null;
  for (const summary of archive?.list() ?? []) {
    jobs.set(summary.id, { summary, report: null, worker: null, ended: Promise.resolve(), end: () => {}, cancelRequested: false });
  }

  const snapshot = (job: Job): QuantJobSummary => structuredClone(job.summary);

  function finish(job: Job, state: 'done' | 'failed' | 'cancelled', error: QuantJobSummary['error']): void {
    if (job.summary.state === 'done' || job.summary.state === 'failed' || job.summary.state === 'cancelled') return;
    job.summary.state = state;
    job.summary.error = error;
    job.summary.finishedAt = now();
    const worker = job.worker;
    job.worker = null;
    if (running === job) running = null;
    if (state === 'done' && archive && job.report) {
      try {
        archive.save(job.summary, job.report);
      } catch (e) {
        // The report stays in memory; only its survival past a restart is lost, and the user is told why.
        job.summary.error = { message: `the report could not be stored in ${archive.dir} (${e instanceof Error ? e.message : String(e)}); it is lost when the studio closes` };
      }
    }
    if (state === 'done') options.emit('quant.done', { job: snapshot(job) });
    else options.emit('quant.failed', { job: snapshot(job) });
    const stopped = worker ? worker.terminate().catch(() => {}) : Promise.resolve();
    void stopped.then(() => {
      job.end();
      pump();
    });
    dropOldReports();
  }

  function dropOldReports(): void {
    const withReports = [...jobs.values()].filter((j) => j.report !== null);
    for (const j of withReports.slice(0, Math.max(0, withReports.length - keep))) j.report = null;
  }

  function onWorkerEvent(job: Job, e: QuantEvent): void {
    // A message from the worker with no job id (an escaped exception) is about the job it runs.
    if (e.jobId !== job.summary.id && e.jobId !== '') return;
    switch (e.type) {
      case 'progress':
        if (job.summary.state !== 'running') return;
        job.summary.progress = { jobId: job.summary.id, phase: e.phase, done: e.done, total: e.total, format: e.format, fraction: e.fraction };
        options.emit('quant.progress', { ...job.summary.progress });
        return;
      case 'done':
        job.report = e.report;
        finish(job, 'done', null);
        return;
      case 'error': {
        if (e.cancelled || job.cancelRequested) {
          finish(job, 'cancelled', { message: 'cancelled' });
          return;
        }
        const error: QuantJobSummary['error'] = { message: e.message };
        if (e.field !== undefined) error.field = e.field;
        if (e.file !== undefined) error.file = e.file;
        if (e.line !== undefined) error.line = e.line;
        finish(job, 'failed', error);
      }
    }
  }

  function pump(): void {
    if (running || closed) return;
    const job = queue.shift();
    if (!job) return;
    running = job;
    let worker: QuantWorkerHandle;
    try {
      worker = startWorker();
    } catch (e) {
      finish(job, 'failed', { message: `cannot start the quantization worker: ${e instanceof Error ? e.message : String(e)}` });
      return;
    }
    job.worker = worker;
    job.summary.state = 'running';
    job.summary.startedAt = now();
    job.summary.progress = { jobId: job.summary.id, phase: 'loading', done: 0, total: 1, format: '', fraction: 0 };
    options.emit('quant.progress', { ...job.summary.progress });
    worker.on((e) => onWorkerEvent(job, e));
    void worker.exited.then((code) => {
      if (job.worker === worker) finish(job, job.cancelRequested ? 'cancelled' : 'failed', job.cancelRequested ? { message: 'cancelled' } : { message: `the quantization worker exited unexpectedly (exit code ${code})` });
    });
    worker.send({ type: 'quant.run', jobId: job.summary.id, request: job.summary.request });
  }

  function getJob(id: string): Job {
    const job = jobs.get(id);
    if (!job) throw new StudioError({ message: `no quantization job ${JSON.stringify(id)} (jobs live until the studio restarts)`, field: 'jobId' });
    return job;
  }

  async function cancel(job: Job): Promise<void> {
    const state = job.summary.state;
    if (state === 'queued') {
      queue.splice(queue.indexOf(job), 1);
      job.cancelRequested = true;
      finish(job, 'cancelled', { message: 'cancelled' });
    } else if (state === 'running') {
      job.cancelRequested = true;
      job.worker?.send({ type: 'quant.cancel', jobId: job.summary.id });
      // A worker deep in a synchronous step (reading a big model) cannot see the cancel; terminate it after a while.
      const timer = setTimeout(() => finish(job, 'cancelled', { message: 'cancelled' }), grace);
      await job.ended;
      clearTimeout(timer);
      return;
    }
    await job.ended;
  }

  const handlers: QuantLab['handlers'] = {
    'quant.formats': async () =>
      QUANT_FORMAT_NAMES.map((name) => ({
        name,
        label: QUANT_FORMATS[name].label,
        bitsPerWeight: QUANT_FORMATS[name].bitsPerWeight,
        gguf: (GGUF_EXPORT_FORMATS as readonly string[]).includes(name),
      })),
    'quant.start': async (raw) => {
      if (closed) throw new StudioError({ message: 'the studio is shutting down' });
      const p = parseParams('quant.start', raw);
      const request: QuantJobRequest = { ...p, formats: [...p.formats] };
      for (const k of ['adapterPath', 'calibPath'] as const) if (request[k] === '') delete request[k];
      await preflight(request);
      let end = (): void => {};
      const ended = new Promise<void>((resolve) => (end = resolve));
      const id = newId('quant');
      const job: Job = {
        summary: { id, state: 'queued', request, createdAt: now(), startedAt: null, finishedAt: null, progress: null, error: null },
        report: null,
        worker: null,
        ended,
        end,
        cancelRequested: false,
      };
      jobs.set(id, job);
      queue.push(job);
      pump();
      return { jobId: id, job: snapshot(job) };
    },
    'quant.cancel': async (raw) => {
      const job = getJob(parseParams('quant.cancel', raw).jobId);
      await cancel(job);
      return snapshot(job);
    },
    'quant.get': async (raw) => {
      const job = getJob(parseParams('quant.get', raw).jobId);
      if (!job.report && job.summary.state === 'done' && archive) {
        try {
          job.report = archive.report(job.summary.id);
        } catch (e) {
          throw new StudioError({ message: e instanceof Error ? e.message : String(e), field: 'jobId' });
        }
        dropOldReports();
      }
      return { job: snapshot(job), report: job.report };
    },
    'quant.list': async () => [...jobs.values()].map(snapshot).sort(newestFirst),
  };

  return {
    handlers,
    busy: () => running !== null || queue.length > 0,
    async close() {
      closed = true;
      const pending = [...queue, ...(running ? [running] : [])];
      await Promise.all(pending.map((j) => cancel(j)));
    },
  };
}
