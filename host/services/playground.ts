/**
 * The playground's services: try a model, with or without an adapter, on a prompt. Generation runs in its own
 * worker_thread (engine/generate/generate-worker.ts), which keeps the model loaded between prompts. One job runs at a
 * time; starting another stops the running one first (pressing Generate again means "answer this instead"). Requests
 * are checked before anything is loaded, so a wrong path or an impossible prompt format is refused with its field.
 */
import type {
  GenerateCommand,
  GenerateEvent,
  PlaygroundRequest,
  StudioErrorInfo,
  StudioEventName,
  StudioEvents,
  StudioMethod,
  StudioResult,
} from '../../common/protocol.ts';
import { BUILTIN_TEMPLATE_NAMES, isBuiltinTemplateName } from '../../engine/host-api.ts';
import { StudioError } from './errors.ts';
import { parseParams } from './params.ts';
import { newId } from './ids.ts';
import { startWorkerHandle, workerEntry, type WorkerHandle } from './worker-handle.ts';
import { checkAdapterFolder, checkModel } from './preflight.ts';

export type PlaygroundMethod = Extract<StudioMethod, `generate.${string}`>;

/** The services' handle on the generation worker. */
export type GenerateWorkerHandle = WorkerHandle<GenerateCommand, GenerateEvent>;

export function startGenerateWorker(env?: NodeJS.ProcessEnv): GenerateWorkerHandle {
  return startWorkerHandle<GenerateCommand, GenerateEvent>(workerEntry('../../engine/generate/generate-worker.ts', import.meta.url), env, (e) => ({
    type: 'ended',
    jobId: '',
    cancelled: false,
    error: { message: `generation worker failed: ${e.message}` },
  }));
}

async function preflight(req: PlaygroundRequest): Promise<void> {
  const model = await checkModel(req.modelPath, 'modelPath');
  if (!model.hasTokenizer) throw new StudioError({ message: `${req.modelPath} has no tokenizer.json, so the prompt cannot be tokenized`, field: 'modelPath', file: req.modelPath });
  if (req.adapterPath) checkAdapterFolder(req.adapterPath, 'adapterPath');
  if (req.compareAdapterPath) {
    if (!req.adapterPath) throw new StudioError({ message: 'choose the first adapter before one to compare it with', field: 'compareAdapterPath' });
    checkAdapterFolder(req.compareAdapterPath, 'compareAdapterPath');
  }
  if (req.chatTemplate && req.chatTemplate !== 'model' && !isBuiltinTemplateName(req.chatTemplate)) {
    throw new StudioError({ message: `unknown chat template "${req.chatTemplate}": choose the model's own or one of ${BUILTIN_TEMPLATE_NAMES.join(', ')}`, field: 'chatTemplate' });
  }
  if (req.history && req.history.length > 0 && req.promptFormat !== 'chat') throw new StudioError({ message: 'a conversation history needs the chat prompt format', field: 'history' });
  if (req.promptFormat === 'chat' && !model.hasChatTemplate && (!req.chatTemplate || req.chatTemplate === 'model')) {
    throw new StudioError({ message: `${model.name} has no chat template; choose a built-in one (${BUILTIN_TEMPLATE_NAMES.join(', ')}) or the raw or Alpaca prompt format`, field: 'promptFormat' });
  }
}

export interface PlaygroundOptions {
  emit: <E extends StudioEventName>(event: E, data: StudioEvents[E]) => void;
  startWorker?: (env?: NodeJS.ProcessEnv) => GenerateWorkerHandle;
  /** The generation worker's environment when it starts (the cpu thread setting). */
  env?: () => NodeJS.ProcessEnv;
}

export interface Playground {
  readonly handlers: { [M in PlaygroundMethod]: (params: unknown) => Promise<StudioResult<M>> };
  close(): Promise<void>;
}

interface Job {
  id: string;
  request: PlaygroundRequest;
  flag: Int32Array;
  ended: Promise<void>;
  end(): void;
  done: boolean;
}

export function createPlayground(options: PlaygroundOptions): Playground {
  const startWorker = options.startWorker ?? startGenerateWorker;
  let worker: GenerateWorkerHandle | null = null;
  let running: Job | null = null;
  const waiting: Job[] = [];
  let closed = false;

  function finish(job: Job, cancelled: boolean, error: StudioErrorInfo | null): void {
    if (job.done) return;
    job.done = true;
    if (running === job) running = null;
    options.emit('generate.ended', { jobId: job.id, cancelled, error });
    job.end();
    pump();
  }

  function onEvent(e: GenerateEvent): void {
    const job = running;
    if (!job || (e.jobId !== job.id && e.jobId !== '')) return;
    switch (e.type) {
      case 'started': {
        const { type: _t, ...info } = e;
        options.emit('generate.started', { ...info, jobId: job.id });
        return;
      }
      case 'output': {
        const { type: _t, ...out } = e;
        options.emit('generate.output', { ...out, jobId: job.id });
        return;
      }
      case 'ended':
        finish(job, e.cancelled, e.error);
        return;
    }
  }

  /** The environment the current worker started with; a changed one (the cpu threads setting) starts a new worker. */
  let workerEnvKey = '';
  function ensureWorker(): GenerateWorkerHandle {
    const env = options.env?.();
    const key = JSON.stringify(env?.LORA_STUDIO_CPU_THREADS ?? null);
    if (worker && key !== workerEnvKey) {
      // Only between jobs (ensureWorker runs as one starts), so nothing is lost; its exit is ignored below.
      const old = worker;
      worker = null;
      void old.terminate();
    }
    if (worker) return worker;
    const w = startWorker(env);
    worker = w;
    workerEnvKey = key;
    w.on(onEvent);
    void w.exited.then((code) => {
      if (worker !== w) return;
      worker = null;
      if (running) finish(running, Atomics.load(running.flag, 0) !== 0, closed ? null : { message: `the generation worker exited unexpectedly (exit code ${code})` });
    });
    return w;
  }

  function pump(): void {
    if (running || closed) return;
    // Only the newest request matters: older waiting ones were superseded before they began.
    const job = waiting.pop();
    for (const old of waiting.splice(0)) finish(old, true, null);
    if (!job) return;
    running = job;
    try {
      ensureWorker().send({ type: 'generate.run', jobId: job.id, request: job.request, cancelFlag: job.flag.buffer as SharedArrayBuffer });
    } catch (e) {
      finish(job, false, { message: `cannot start the generation worker: ${e instanceof Error ? e.message : String(e)}` });
    }
  }

  function stop(job: Job): void {
    Atomics.store(job.flag, 0, 1);
  }

  const handlers: Playground['handlers'] = {
    'generate.start': async (raw) => {
      if (closed) throw new StudioError({ message: 'the studio is shutting down' });
      const p = parseParams('generate.start', raw);
      const request: PlaygroundRequest = { ...p };
      for (const k of ['adapterPath', 'compareAdapterPath', 'chatTemplate', 'system'] as const) if (request[k] === '') delete request[k];
      await preflight(request);
      let end = (): void => {};
      const ended = new Promise<void>((resolve) => (end = resolve));
      const job: Job = { id: newId('gen'), request, flag: new Int32Array(new SharedArrayBuffer(4)), ended, end, done: false };
      if (running) stop(running);
      waiting.push(job);
      pump();
      return { jobId: job.id };
    },
    'generate.cancel': async (raw) => {
      const { jobId } = parseParams('generate.cancel', raw);
      if (running?.id === jobId) {
        const job = running;
        stop(job);
        await job.ended;
        return { cancelled: true };
      }
      const queued = waiting.find((j) => j.id === jobId);
      if (queued) {
        waiting.splice(waiting.indexOf(queued), 1);
        finish(queued, true, null);
        return { cancelled: true };
      }
      return { cancelled: false };
    },
  };

  return {
    handlers,
    async close() {
      closed = true;
      for (const j of waiting.splice(0)) finish(j, true, null);
      if (running) stop(running);
      const w = worker;
      worker = null;
      if (w) await w.terminate();
      if (running) finish(running, true, null);
    },
  };
}
