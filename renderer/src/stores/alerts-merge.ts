/**
 * A run's alerts as the window holds them: the same alert arrives twice (from the event log, 'runs.events', and live,
 * 'run.alert'), and a resumed run may raise one again at the same step; each is kept once, in step order.
 */
import type { RunAlert } from '../../../common/run-health.ts';

export const EMPTY_ALERTS: readonly RunAlert[] = [];

export function mergeAlerts(existing: readonly RunAlert[], incoming: readonly RunAlert[]): readonly RunAlert[] {
  const seen = new Set(existing.map((a) => `${a.kind}@${a.step}`));
  const fresh: RunAlert[] = [];
  for (const a of incoming) {
    const key = `${a.kind}@${a.step}`;
    if (seen.has(key)) continue;
    seen.add(key);
    fresh.push(a);
  }
  if (fresh.length === 0) return existing;
  return [...existing, ...fresh].sort((a, b) => a.step - b.step || (a.eventId ?? 0) - (b.eventId ?? 0));
}
