/**
 * "Download from Hugging Face" in the model pickers: one download at a time from this window ('models.pull'), its
 * progress from 'models.pullProgress', its end from 'models.pullEnded'. Shared by every page's picker, so a
 * download keeps going (and showing) while the user moves between pages.
 */
import { create } from 'zustand';
import type { ModelPullDone, ModelPullEnded, ModelPullProgress } from '../../../common/models-pull.ts';
import type { StudioErrorInfo } from '../../../common/protocol.ts';
import { errorInfo } from '../client/transport.ts';
import { useLocalModels } from './local-models.ts';
import { useStudio } from './studio.ts';

export interface ModelPullState {
  jobId: string | null;
  repo: string;
  progress: ModelPullProgress | null;
  done: ModelPullDone | null;
  error: StudioErrorInfo | null;
  cancelled: boolean;
  /** Starts a download; `onDone` gets the path to put in the model field. */
  start(req: { repo: string; file?: string; token?: string }, onDone: (path: string) => void): Promise<void>;
  cancel(): Promise<void>;
}

export const useModelPull = create<ModelPullState>()((set, get) => ({
  jobId: null,
  repo: '',
  progress: null,
  done: null,
  error: null,
  cancelled: false,
  async start(req, onDone) {
    if (get().jobId) return;
    const c = useStudio.getState().client;
    if (!c) {
      set({ error: { message: 'the studio is not connected yet' } });
      return;
    }
    set({ repo: req.repo, progress: null, done: null, error: null, cancelled: false });
    // Listening before asking: a small download can end before the request's answer arrives.
    let jobId: string | null = null;
    const early: Parameters<Parameters<typeof c.onEvent>[0]>[0][] = [];
    const handle = (m: (typeof early)[number]): void => {
      if (m.event === 'models.pullProgress') {
        const p = m.data as ModelPullProgress;
        if (p.jobId === jobId) set({ progress: p });
      } else if (m.event === 'models.pullEnded') {
        const end = m.data as ModelPullEnded;
        if (end.jobId !== jobId) return;
        off();
        set({ jobId: null, done: end.result, error: end.error, cancelled: end.cancelled });
        if (end.result) {
          onDone(end.result.path);
          void useLocalModels.getState().load(true);
        }
      }
    };
    const off = c.onEvent((m) => (jobId === null ? early.push(m) : handle(m)));
    try {
      const r = await c.request('models.pull', { repo: req.repo, ...(req.file ? { file: req.file } : {}), ...(req.token ? { token: req.token } : {}) });
      jobId = r.jobId;
      set({ jobId: r.jobId });
      for (const m of early.splice(0)) handle(m);
    } catch (e) {
      off();
      set({ jobId: null, error: errorInfo(e) });
    }
  },
  async cancel() {
    const { jobId } = get();
    const c = useStudio.getState().client;
    if (!jobId || !c) return;
    try {
      await c.request('models.pullCancel', { jobId });
    } catch (e) {
      set({ error: errorInfo(e) });
    }
  },
}));
