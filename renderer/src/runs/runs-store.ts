/**
 * The Runs page's own state (which run is open, which are compared, the open run's state history and event log)
 * and the run actions (cancel, pause, resume, stop & save, priority). Runs and metrics themselves live in the
 * studio store, which every window keeps in step with the services.
 */
import { create } from 'zustand';
import type { RunEventInfo, RunStateChange, RunSummary, StudioErrorInfo } from '../../../common/protocol.ts';
import { errorInfo } from '../client/transport.ts';
import { liveCardRun, useStudio } from '../stores/studio.ts';
import type { RunDeleteResult, RunInfoPatch } from '../../../common/run-info.ts';
import { toggleTag } from './run-manage-view.ts';
import { appendEvents, replyIsNewer, toggleCompared, type ComparedRun, type RunAction } from './runs-view.ts';

export interface RunDetails {
  history: RunStateChange[];
  events: RunEventInfo[];
  error: StudioErrorInfo | null;
}

export interface RunsPageState {
  selectedRunId: string | null;
  compared: ComparedRun[];
  details: Record<string, RunDetails>;
  /** Actions under way, by run id, so a button cannot be pressed twice. */
  busy: Record<string, RunAction | 'priority'>;
  /** The last refusal of a priority change, by run id. */
  priorityErrors: Record<string, string>;

  /** The list's search words and tag filter (common/run-info.ts runMatches). */
  query: string;
  tagFilter: string[];
  setQuery(text: string): void;
  toggleTagFilter(tag: string): void;
  clearFilter(): void;
  /** Rename, notes, tags: the updated run, or a refusal thrown for the editor to show. */
  updateInfo(id: string, patch: RunInfoPatch): Promise<RunSummary>;
  /** What deleting would free (a dry run), or does: the services' answer; refusals are thrown. */
  deleteRun(id: string, opts: { deleteAdapter: boolean; dryRun: boolean }): Promise<RunDeleteResult>;

  select(id: string | null): void;
  toggleCompare(id: string): void;
  /** Fetches the state history and the events after the last one held. */
  refreshDetails(id: string): Promise<void>;
  act(action: RunAction, id: string): Promise<void>;
  setPriority(id: string, priority: number): Promise<void>;
}

const EMPTY_DETAILS: RunDetails = { history: [], events: [], error: null };

/** A reply only replaces what events already said when it is newer (runs-view.ts replyIsNewer). */
function upsert(run: RunSummary): void {
  useStudio.setState((s) => (replyIsNewer(s.runs[run.id], run, 'held') ? { runs: { ...s.runs, [run.id]: run } } : {}));
}

function studioClient() {
  const c = useStudio.getState().client;
  if (!c) throw new Error('the studio is not connected yet');
  return c;
}

export const useRunsPage = create<RunsPageState>()((set, get) => {
  const refreshing = new Set<string>();
  /** Runs that changed while their details were being fetched: fetched once more, so the last lines are not missed. */
  const again = new Set<string>();

  function setBusy(id: string, what: RunAction | 'priority' | null): void {
    set((s) => {
      const busy = { ...s.busy };
      if (what) busy[id] = what;
      else delete busy[id];
      return { busy };
    });
  }

  /** A deleted run leaves the selection, the compared runs and the details held. */
  function forget(id: string): void {
    set((s) => {
      const details = { ...s.details };
      delete details[id];
      return { details, compared: s.compared.filter((c) => c.id !== id), selectedRunId: s.selectedRunId === id ? null : s.selectedRunId };
    });
    useStudio.setState((s) => {
      if (!(id in s.runs)) return {};
      const runs = { ...s.runs };
      delete runs[id];
      return { runs, currentRunId: s.currentRunId === id ? liveCardRun(runs) : s.currentRunId };
    });
  }
  // Deleted in another window, or by the CLI: the studio store drops it, this page follows.
  useStudio.subscribe((s, prev) => {
    if (s.runs === prev.runs) return;
    for (const id of Object.keys(prev.runs)) if (!(id in s.runs)) forget(id);
  });

  return {
    selectedRunId: null,
    compared: [],
    details: {},
    busy: {},
    priorityErrors: {},
    query: '',
    tagFilter: [],

    setQuery(text) {
      set({ query: text });
    },
    toggleTagFilter(tag) {
      set((s) => ({ tagFilter: toggleTag(s.tagFilter, tag) }));
    },
    clearFilter() {
      set({ query: '', tagFilter: [] });
    },

    async updateInfo(id, patch) {
      const run = await studioClient().request('runs.update', { id, ...patch });
      upsert(run);
      return run;
    },

    async deleteRun(id, opts) {
      const result = await studioClient().request('runs.delete', { id, deleteAdapter: opts.deleteAdapter, dryRun: opts.dryRun });
      // 'run.removed' tells every window; this one need not wait for it.
      if (result.deleted) forget(id);
      return result;
    },

    select(id) {
      set({ selectedRunId: id });
      if (id) void get().refreshDetails(id);
    },

    toggleCompare(id) {
      set((s) => ({ compared: toggleCompared(s.compared, id) }));
      if (get().compared.some((c) => c.id === id)) void useStudio.getState().ensureMetrics(id);
    },

    async refreshDetails(id) {
      if (refreshing.has(id)) {
        again.add(id);
        return;
      }
      refreshing.add(id);
      try {
        const c = studioClient();
        const known = get().details[id] ?? EMPTY_DETAILS;
        const afterId = known.events.length ? known.events[known.events.length - 1].id : 0;
        const [history, events] = await Promise.all([c.request('runs.history', { id }), c.request('runs.events', { id, afterId })]);
        set((s) => {
          const before = s.details[id] ?? EMPTY_DETAILS;
          return { details: { ...s.details, [id]: { history, events: appendEvents(before.events, events), error: null } } };
        });
      } catch (e) {
        set((s) => ({ details: { ...s.details, [id]: { ...(s.details[id] ?? EMPTY_DETAILS), error: errorInfo(e) } } }));
      } finally {
        refreshing.delete(id);
      }
      if (again.delete(id)) await get().refreshDetails(id);
    },

    async act(action, id) {
      if (get().busy[id]) return;
      setBusy(id, action);
      try {
        const c = studioClient();
        const method = ({ pause: 'runs.pause', resume: 'runs.resume', stopAndSave: 'runs.stopAndSave', cancel: 'runs.cancel' } as const)[action];
        upsert(await c.request(method, { id }));
      } catch (e) {
        useStudio.setState({ notice: errorInfo(e) });
      } finally {
        setBusy(id, null);
      }
      void get().refreshDetails(id);
    },

    async setPriority(id, priority) {
      setBusy(id, 'priority');
      try {
        upsert(await studioClient().request('runs.setPriority', { id, priority }));
        set((s) => {
          const priorityErrors = { ...s.priorityErrors };
          delete priorityErrors[id];
          return { priorityErrors };
        });
      } catch (e) {
        set((s) => ({ priorityErrors: { ...s.priorityErrors, [id]: errorInfo(e).message } }));
      } finally {
        setBusy(id, null);
      }
    },
  };
});
