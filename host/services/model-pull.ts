/**
 * The services' Hugging Face downloads ('models.pull', 'models.pullCancel'): each pull is a job that streams its
 * progress as 'models.pullProgress' and ends with 'models.pullEnded' (the path to train, or why not). The download
 * itself is asynchronous network and file I/O (engine/io/hf-hub-download.ts), so it never holds the event loop. Two
 * pulls of the same repo at once would write the same .incomplete file: the second is refused.
 */
import type { StudioEventName, StudioEvents, StudioResult } from '../../common/protocol.ts';
import { HubPullCancelled, pullFromHub } from '../../engine/host-api.ts';
import { StudioError, toStudioErrorInfo } from './errors.ts';
import { parseParams } from './params.ts';
import { newId } from './ids.ts';

export type ModelPullMethod = 'models.pull' | 'models.pullCancel';

export interface ModelPulls {
  handlers: { [M in ModelPullMethod]: (params: unknown) => Promise<StudioResult<M>> };
  /** Cancels every pull and waits for them to end. */
  close(): Promise<void>;
}

export function createModelPulls(opts: { emit: <E extends StudioEventName>(event: E, data: StudioEvents[E]) => void }): ModelPulls {
  const jobs = new Map<string, { repo: string; abort: AbortController; done: Promise<void> }>();
  const handlers: ModelPulls['handlers'] = {
    'models.pull': async (raw) => {
      const p = parseParams('models.pull', raw);
      const repo = p.repo;
      for (const j of jobs.values()) {
        if (j.repo.toLowerCase() === repo.toLowerCase()) throw new StudioError({ message: `${repo} is already being downloaded; wait for it or cancel it`, field: 'repo' });
      }
      const jobId = newId('pull');
      const abort = new AbortController();
      const done = pullFromHub(
        { repo, ...(p.revision ? { revision: p.revision } : {}), ...(p.file ? { file: p.file } : {}) },
        { ...(p.token ? { token: p.token } : {}), signal: abort.signal, onProgress: (pr) => opts.emit('models.pullProgress', { jobId, repo, ...pr }) },
      ).then(
        (result) => opts.emit('models.pullEnded', { jobId, repo, cancelled: false, result, error: null }),
        (e: unknown) => {
          const field = (e as { field?: unknown }).field;
          opts.emit('models.pullEnded', { jobId, repo, cancelled: e instanceof HubPullCancelled, result: null, error: toStudioErrorInfo(e, typeof field === 'string' ? field : undefined) });
        },
      );
      jobs.set(jobId, { repo, abort, done: done.finally(() => jobs.delete(jobId)) });
      return { jobId };
    },
    'models.pullCancel': async (raw) => {
      const job = jobs.get(parseParams('models.pullCancel', raw).jobId);
      if (!job) return { cancelled: false };
      job.abort.abort();
      await job.done;
      return { cancelled: true };
    },
  };
  return {
    handlers,
    async close() {
      for (const j of jobs.values()) j.abort.abort();
      await Promise.all([...jobs.values()].map((j) => j.done));
    },
  };
}
