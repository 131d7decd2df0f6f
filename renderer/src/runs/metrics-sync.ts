/**
 * A window's copy of a run's metric series, kept whole across reloads and reconnects: the history comes from
 * 'runs.metrics' (everything stored so far), the live 'run.metrics' events go on top. Events that arrive while the
 * history is on its way are held and applied after it, in order, so a point is never lost (it is stored before it
 * is pushed) and never doubled (merging is by step, the newest point of a step wins — a run resumed from a
 * checkpoint trains some steps again, and says so with `truncatedAfter`).
 */
import type { MetricPoint } from '../../../common/protocol.ts';
import { mergeMetricPoints } from '../../../common/run-metrics.ts';

export interface MetricsUpdate {
  points: readonly MetricPoint[];
  truncatedAfter?: number;
}

/** One live update on a series; the same array when it changes nothing, so subscribers do not re-render. */
export function applyUpdate(series: readonly MetricPoint[], update: MetricsUpdate): readonly MetricPoint[] {
  const { points, truncatedAfter } = update;
  const cuts = truncatedAfter !== undefined && series.length > 0 && series[series.length - 1].step > truncatedAfter;
  if (points.length === 0 && !cuts) return series;
  return mergeMetricPoints(series, points, cuts ? truncatedAfter : undefined);
}

/** The fetched history with the updates that arrived during the fetch applied after it. */
export function settleHistory(history: readonly MetricPoint[], during: readonly MetricsUpdate[]): readonly MetricPoint[] {
  // The services send the history sorted with each step once; merging into [] makes that true whatever they send.
  let series: readonly MetricPoint[] = mergeMetricPoints([], history);
  for (const u of during) series = applyUpdate(series, u);
  return series;
}

/**
 * Which runs have their whole history in this window, and the updates held for runs whose history is loading.
 * `reset` (the event channel closed) forgets "loaded" and any fetch under way: events may have been missed, so the
 * next look reloads, and a reply to a fetch from before the reset is ignored.
 */
export class MetricsLoads {
  private readonly loaded = new Set<string>();
  private readonly inflight = new Map<string, { token: number; held: MetricsUpdate[] }>();
  /** Runs some view showed: reloaded after every reconnect. */
  private readonly watched = new Set<string>();
  private nextToken = 1;

  /** Whether `runId` needs a history fetch now (not loaded and not loading); marks it watched. */
  needsLoad(runId: string): boolean {
    this.watched.add(runId);
    return !this.loaded.has(runId) && !this.inflight.has(runId);
  }

  /** A fetch starts; its token goes back to `finish` or `fail`. */
  begin(runId: string): number {
    this.watched.add(runId);
    const token = this.nextToken++;
    this.inflight.set(runId, { token, held: [] });
    return token;
  }

  /** Holds an update for a run whose history is loading; false when none is. */
  hold(runId: string, update: MetricsUpdate): boolean {
    const entry = this.inflight.get(runId);
    if (!entry) return false;
    entry.held.push(update);
    return true;
  }

  /** The history arrived: the series to keep, or null when this fetch was overtaken (reset, a newer fetch). */
  finish(runId: string, token: number, history: readonly MetricPoint[]): readonly MetricPoint[] | null {
    const entry = this.inflight.get(runId);
    if (!entry || entry.token !== token) return null;
    this.inflight.delete(runId);
    this.loaded.add(runId);
    return settleHistory(history, entry.held);
  }

  /** The fetch failed: the run counts as not loaded, so the next look tries again. */
  fail(runId: string, token: number): void {
    if (this.inflight.get(runId)?.token === token) this.inflight.delete(runId);
  }

  isLoaded(runId: string): boolean {
    return this.loaded.has(runId);
  }

  reset(): void {
    this.loaded.clear();
    this.inflight.clear();
  }

  watchedRuns(): string[] {
    return [...this.watched];
  }
}
