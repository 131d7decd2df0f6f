import { useEffect, useState } from 'react';
import type { MetricPoint } from '../../../common/protocol.ts';
import { EMPTY_POINTS, useStudio } from './studio.ts';

/**
 * A run's metric points, re-read from the store at most once per `intervalMs`. Events may arrive for every step;
 * the chart redraws ~10 times a second whatever the training speed, so typing and clicking stay smooth.
 */
export function useThrottledMetrics(runId: string | null, intervalMs = 100): readonly MetricPoint[] {
  const read = (): readonly MetricPoint[] => (runId ? (useStudio.getState().metrics[runId] ?? EMPTY_POINTS) : EMPTY_POINTS);
  const [points, setPoints] = useState(read);

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    let lastFlush = 0;
    const current = (): readonly MetricPoint[] => (runId ? (useStudio.getState().metrics[runId] ?? EMPTY_POINTS) : EMPTY_POINTS);
    setPoints(current());
    const unsubscribe = useStudio.subscribe((state, prev) => {
      if (!runId || state.metrics[runId] === prev.metrics[runId] || timer !== null) return;
      const wait = Math.max(0, lastFlush + intervalMs - performance.now());
      timer = setTimeout(() => {
        timer = null;
        lastFlush = performance.now();
        setPoints(current());
      }, wait);
    });
    return () => {
      unsubscribe();
      if (timer !== null) clearTimeout(timer);
    };
  }, [runId, intervalMs]);

  return points;
}
