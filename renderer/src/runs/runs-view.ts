/**
 * What the Runs page shows about a run, as pure functions of the protocol's types: state labels (with the queue
 * position), which actions a state allows, the compare selection, and the rows of the compare chart.
 */
import type { MetricPoint, RunConfig, RunEventInfo, RunState, RunSummary } from '../../../common/protocol.ts';

export const STATE_LABEL: Readonly<Record<RunState, string>> = {
  pending: 'pending',
  validating: 'checking',
  queuing: 'queued',
  executing: 'training',
  finalizing: 'saving',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
  paused: 'paused',
};

/**
 * A run that completed before its last step was stopped by the user (Stop & save) and kept its adapter as it was
 * then: its own outcome, not a plain "completed" at 52/300.
 */
export function stoppedEarly(run: Pick<RunSummary, 'state'> & Partial<Pick<RunSummary, 'step' | 'totalSteps'>>): boolean {
  return run.state === 'completed' && typeof run.step === 'number' && typeof run.totalSteps === 'number' && run.step < run.totalSteps;
}

/** "queued (position 2)" while a run waits for its device, "stopped early at step N", else the state's label. */
export function stateLabel(run: Pick<RunSummary, 'state' | 'queuePosition'> & Partial<Pick<RunSummary, 'step' | 'totalSteps'>>): string {
  if (run.state === 'queuing' && typeof run.queuePosition === 'number' && run.queuePosition > 0) return `queued (position ${run.queuePosition})`;
  if (stoppedEarly(run)) return `stopped early at step ${run.step}`;
  return STATE_LABEL[run.state];
}

/** While the host does not answer, what an unfinished run is doing is not known: say so instead of "training". */
export function liveStateLabel(run: Parameters<typeof stateLabel>[0], connected: boolean): string {
  if (!connected && run.state !== 'completed' && run.state !== 'failed' && run.state !== 'cancelled') return 'unknown — reconnecting';
  return stateLabel(run);
}

export type RunAction = 'pause' | 'resume' | 'stopAndSave' | 'cancel';

export const ACTION_LABEL: Readonly<Record<RunAction, string>> = {
  pause: 'Pause',
  resume: 'Resume',
  stopAndSave: 'Stop & save now',
  cancel: 'Cancel',
};

/**
 * The actions the services accept in a state (host/services/run-manager.ts): a waiting run can be held or
 * cancelled, an executing one also stopped with its adapter kept; a paused or failed run resumes from its last
 * checkpoint; a saving run and a finished one take no action.
 */
export function actionsFor(state: RunState): RunAction[] {
  switch (state) {
    case 'pending':
    case 'validating':
      return ['cancel'];
    case 'queuing':
      return ['pause', 'cancel'];
    case 'executing':
      return ['pause', 'stopAndSave', 'cancel'];
    case 'paused':
      return ['resume', 'cancel'];
    case 'failed':
      return ['resume'];
    case 'finalizing':
    case 'completed':
    case 'cancelled':
      return [];
  }
}

/** A run that has not started yet (or is held): its priority still decides when it starts. */
export function priorityEditable(state: RunState): boolean {
  return state === 'pending' || state === 'validating' || state === 'queuing' || state === 'paused';
}

/** The priority as typed: a whole number, or the reason it is not one. */
export function parsePriority(text: string): { ok: true; value: number } | { ok: false; message: string } {
  const t = text.trim();
  if (t === '') return { ok: false, message: 'priority must be a number' };
  const n = Number(t);
  if (!Number.isFinite(n)) return { ok: false, message: `priority must be a number, got "${t}"` };
  if (!Number.isInteger(n)) return { ok: false, message: 'priority must be a whole number' };
  return { ok: true, value: n };
}

/** 0..1; a completed run is full even when it was stopped early. */
export function progressFraction(run: Pick<RunSummary, 'state' | 'step' | 'totalSteps'>): number {
  if (run.state === 'completed') return 1;
  const total = Math.max(1, run.totalSteps);
  return Math.max(0, Math.min(1, run.step / total));
}

// ---------------------------------------------------------------------------------------------------------------
// Compare up to four runs
// ---------------------------------------------------------------------------------------------------------------

export const MAX_COMPARED = 4;

/** Distinct on the dark panel and for the common colour-vision deficiencies (blue, orange, green-teal, pink). */
export const COMPARE_COLORS: readonly string[] = ['#5b9dff', '#f0a04b', '#3fd0a8', '#e86bd0'];

export interface ComparedRun {
  id: string;
  /** Index into COMPARE_COLORS: a run keeps its colour while others come and go. */
  color: number;
}

/**
 * Ticks or unticks a run. A new run takes the first colour no compared run uses; with MAX_COMPARED runs ticked,
 * ticking another changes nothing (the UI disables the box).
 */
export function toggleCompared(selection: readonly ComparedRun[], id: string, max = MAX_COMPARED): ComparedRun[] {
  if (selection.some((c) => c.id === id)) return selection.filter((c) => c.id !== id);
  if (selection.length >= max) return [...selection];
  const used = new Set(selection.map((c) => c.color));
  let color = 0;
  while (used.has(color)) color++;
  return [...selection, { id, color }];
}

export interface CompareSeries {
  id: string;
  points: readonly MetricPoint[];
}

/** Rows for a chart with one line per run: `{ step, [runId]: loss }`; steps skipped for overflow are left out. */
export function compareRows(series: readonly CompareSeries[], maxRows = 2000): Record<string, number>[] {
  const byStep = new Map<number, Record<string, number>>();
  for (const s of series) {
    for (const p of s.points) {
      if (p.skipped || !Number.isFinite(p.loss)) continue;
      let row = byStep.get(p.step);
      if (!row) {
        row = { step: p.step };
        byStep.set(p.step, row);
      }
      row[s.id] = p.loss;
    }
  }
  const rows = [...byStep.values()].sort((a, b) => a.step - b.step);
  if (rows.length <= maxRows) return rows;
  // Thinning keeps every k-th row and the last: the lines keep their shape, the SVG stays small.
  const stride = Math.ceil(rows.length / maxRows);
  return rows.filter((_, i) => i % stride === 0 || i === rows.length - 1);
}

// ---------------------------------------------------------------------------------------------------------------
// A run's config, history and files
// ---------------------------------------------------------------------------------------------------------------

/** The config as dotted keys and display values, in the config's own order (nested objects flattened). */
export function configEntries(config: RunConfig): [string, string][] {
  const out: [string, string][] = [];
  const walk = (value: unknown, key: string): void => {
    if (value === undefined) return;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, key ? `${key}.${k}` : k);
      return;
    }
    out.push([key, Array.isArray(value) ? value.join(', ') : String(value)]);
  };
  walk(config, '');
  return out;
}

/** Appends events after the last id already held (the log is append-only, ids increase). */
export function appendEvents(existing: readonly RunEventInfo[], incoming: readonly RunEventInfo[], max = 2000): RunEventInfo[] {
  const lastId = existing.length ? existing[existing.length - 1].id : 0;
  const fresh = incoming.filter((e) => e.id > lastId).sort((a, b) => a.id - b.id);
  const all = fresh.length ? [...existing, ...fresh] : [...existing];
  return all.length > max ? all.slice(all.length - max) : all;
}

/** "14:03:27" today, else "2026-11-27 14:03". */
export function formatTime(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  const pad = (n: number) => String(n).padStart(2, '0');
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const sameDay = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
  return sameDay ? `${time}:${pad(d.getSeconds())}` : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/**
 * Whether a run summary from a request's reply (or a list) should replace the one held. Pushed 'run.updated'
 * events come in order and always apply; a reply can arrive after events that are newer than it (the reply to
 * 'runs.start' says pending after the events said queued), so it applies only when it is newer. Equal times
 * are decided by `ties`.
 */
export function replyIsNewer(held: Pick<RunSummary, 'updatedAt'> | undefined, reply: Pick<RunSummary, 'updatedAt'>, ties: 'reply' | 'held'): boolean {
  if (!held) return true;
  if (reply.updatedAt === held.updatedAt) return ties === 'reply';
  return reply.updatedAt > held.updatedAt;
}

/**
 * What tells compared runs apart when their names do not: per run, "key=value" for the config entries whose
 * values differ among the runs (at most `max`, in config order; keys shortened to their last segment).
 */
export function configDifferences(configs: readonly RunConfig[], max = 3): string[][] {
  if (configs.length < 2) return configs.map(() => []);
  const maps = configs.map((c) => new Map(configEntries(c)));
  const keys: string[] = [];
  for (const m of maps) for (const k of m.keys()) if (!keys.includes(k)) keys.push(k);
  const differing = keys.filter((k) => new Set(maps.map((m) => m.get(k) ?? '—')).size > 1).slice(0, max);
  return maps.map((m) => differing.map((k) => `${k.split('.').pop()}=${m.get(k) ?? '—'}`));
}
