/**
 * Runs outside the studio that this window follows (an exported bundle's output, trained by Accelerate elsewhere):
 * their summaries and metric series, kept in step with the services by the 'external.*' events. The series is kept
 * whole like a studio run's (runs/metrics-sync.ts): the history from 'external.metrics', live points on top, a
 * relaunch (`truncatedAfter`) starting it again.
 */
import { create } from 'zustand';
import type { AdapterImportResult, ExternalRunSummary, MetricPoint, StudioErrorInfo, StudioEventMessage } from '../../../common/protocol.ts';
import { errorInfo } from '../client/transport.ts';
import { applyUpdate, MetricsLoads, type MetricsUpdate } from '../runs/metrics-sync.ts';
import { followStudioEvents } from './follow-events.ts';
import { useStudio } from './studio.ts';

export interface ExternalRunsState {
  runs: Record<string, ExternalRunSummary>;
  metrics: Record<string, readonly MetricPoint[]>;
  /** The path typed or picked in "Follow an external run". */
  followPath: string;
  following: boolean;
  followError: StudioErrorInfo | null;
  /** Unfollow / import under way, by run id. */
  busy: Record<string, 'unfollow' | 'import'>;
  /** The last refusal of an action, by run id. */
  actionErrors: Record<string, StudioErrorInfo>;
  /** The last import's outcome, by run id. */
  imported: Record<string, AdapterImportResult>;

  setFollowPath(path: string): void;
  /** Electron: a native picker for the metrics file. */
  browse(): Promise<void>;
  /** Follows `path` (a metrics.jsonl, an output folder or a bundle folder); the followed run's id, or null. */
  follow(path?: string): Promise<string | null>;
  unfollow(id: string): Promise<void>;
  importAdapter(id: string): Promise<void>;
}

const EMPTY: readonly MetricPoint[] = [];

function client() {
  const c = useStudio.getState().client;
  if (!c) throw new Error('the studio is not connected yet');
  return c;
}

function without<T>(record: Record<string, T>, key: string): Record<string, T> {
  if (!(key in record)) return record;
  const next = { ...record };
  delete next[key];
  return next;
}

export const useExternalRuns = create<ExternalRunsState>()((set, get) => {
  const loads = new MetricsLoads();

  function addMetrics(id: string, update: MetricsUpdate): void {
    loads.hold(id, update);
    const before = get().metrics[id] ?? EMPTY;
    const after = applyUpdate(before, update);
    if (after !== before) set((s) => ({ metrics: { ...s.metrics, [id]: after } }));
  }

  async function loadHistory(id: string): Promise<void> {
    const token = loads.begin(id);
    let history: MetricPoint[];
    try {
      history = await client().request('external.metrics', { id });
    } catch (e) {
      loads.fail(id, token);
      set((s) => ({ actionErrors: { ...s.actionErrors, [id]: errorInfo(e) } }));
      return;
    }
    const series = loads.finish(id, token, history);
    if (series) set((s) => ({ metrics: { ...s.metrics, [id]: series } }));
  }

  function forget(id: string): void {
    set((s) => ({ runs: without(s.runs, id), metrics: without(s.metrics, id), busy: without(s.busy, id), actionErrors: without(s.actionErrors, id), imported: without(s.imported, id) }));
  }

  function onEvent(message: StudioEventMessage): void {
    switch (message.event) {
      case 'external.updated': {
        const run = message.data as ExternalRunSummary;
        set((s) => ({ runs: { ...s.runs, [run.id]: run } }));
        break;
      }
      case 'external.metrics': {
        const { id, points, truncatedAfter } = message.data as StudioEventMessage<'external.metrics'>['data'];
        addMetrics(id, truncatedAfter === undefined ? { points } : { points, truncatedAfter });
        break;
      }
      case 'external.removed':
        forget((message.data as { id: string }).id);
        break;
    }
  }

  /** After every (re)connect: what is followed now, and each series whole (events may have been missed). */
  async function resync(): Promise<void> {
    loads.reset();
    let list: ExternalRunSummary[];
    try {
      list = await client().request('external.list', {});
    } catch (e) {
      set({ followError: errorInfo(e) });
      return;
    }
    set({ runs: Object.fromEntries(list.map((r) => [r.id, r])) });
    await Promise.all(list.map((r) => loadHistory(r.id)));
  }

  followStudioEvents(onEvent, () => void resync());
  if (useStudio.getState().connection === 'open') void resync();

  return {
    runs: {},
    metrics: {},
    followPath: '',
    following: false,
    followError: null,
    busy: {},
    actionErrors: {},
    imported: {},

    setFollowPath(path) {
      set({ followPath: path, followError: null });
    },

    async browse() {
      try {
        const { path } = await client().request('dialog.pickFile', { title: "Choose an external run's metrics.jsonl", extensions: ['jsonl'] });
        if (path) set({ followPath: path, followError: null });
      } catch (e) {
        set({ followError: errorInfo(e) });
      }
    },

    async follow(path) {
      const target = (path ?? get().followPath).trim();
      if (!target) {
        set({ followError: { message: "type the path of an external run's metrics.jsonl (or its output folder) first", field: 'path' } });
        return null;
      }
      set({ following: true, followError: null });
      try {
        const run = await client().request('external.follow', { path: target });
        set((s) => ({ runs: { ...s.runs, [run.id]: run }, following: false }));
        if (loads.needsLoad(run.id)) await loadHistory(run.id);
        return run.id;
      } catch (e) {
        set({ following: false, followError: errorInfo(e) });
        return null;
      }
    },

    async unfollow(id) {
      set((s) => ({ busy: { ...s.busy, [id]: 'unfollow' }, actionErrors: without(s.actionErrors, id) }));
      try {
        await client().request('external.unfollow', { id });
        forget(id);
      } catch (e) {
        set((s) => ({ busy: without(s.busy, id), actionErrors: { ...s.actionErrors, [id]: errorInfo(e) } }));
      }
    },

    async importAdapter(id) {
      set((s) => ({ busy: { ...s.busy, [id]: 'import' }, actionErrors: without(s.actionErrors, id) }));
      try {
        const result = await client().request('external.importAdapter', { id });
        set((s) => ({ imported: { ...s.imported, [id]: result } }));
      } catch (e) {
        set((s) => ({ actionErrors: { ...s.actionErrors, [id]: errorInfo(e) } }));
      } finally {
        set((s) => ({ busy: without(s.busy, id) }));
      }
    },
  };
});

export function useExternalMetrics(id: string): readonly MetricPoint[] {
  return useExternalRuns((s) => s.metrics[id] ?? EMPTY);
}
