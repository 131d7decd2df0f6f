/**
 * Every shown run's evaluation answers (config.evalPrompts): loaded with 'runs.evalSamples' when a run is shown, then
 * kept current by 'run.eval'; a run that went back to a checkpoint ('run.metrics' with truncatedAfter) drops the
 * answers after it, as its curve does.
 */
import { create } from 'zustand';
import { mergeEvalSamples } from '../../../common/eval-prompts.ts';
import type { EvalSample, StudioEventMessage, StudioEvents } from '../../../common/protocol.ts';
import { followStudioEvents } from '../stores/follow-events.ts';
import { useStudio } from '../stores/studio.ts';

export const EMPTY_SAMPLES: readonly EvalSample[] = [];

export interface EvalSamplesState {
  samples: Record<string, readonly EvalSample[]>;
  load(runId: string): Promise<void>;
}

export const useEvalSamples = create<EvalSamplesState>()((set) => ({
  samples: {},
  async load(runId) {
    const c = useStudio.getState().client;
    if (!c) return;
    try {
      const got = await c.request('runs.evalSamples', { id: runId });
      set((s) => ({ samples: { ...s.samples, [runId]: mergeEvalSamples(s.samples[runId] ?? EMPTY_SAMPLES, got) } }));
    } catch {
      return; // not reachable now: the next (re)open loads them again
    }
  },
}));

function onEvent(m: StudioEventMessage): void {
  if (m.event === 'run.eval') {
    const sample = m.data as EvalSample;
    useEvalSamples.setState((s) => ({ samples: { ...s.samples, [sample.runId]: mergeEvalSamples(s.samples[sample.runId] ?? EMPTY_SAMPLES, [sample]) } }));
  } else if (m.event === 'run.metrics') {
    const { runId, truncatedAfter } = m.data as StudioEvents['run.metrics'];
    if (truncatedAfter === undefined) return;
    useEvalSamples.setState((s) => (s.samples[runId] ? { samples: { ...s.samples, [runId]: mergeEvalSamples(s.samples[runId], [], truncatedAfter) } } : {}));
  } else if (m.event === 'run.removed') {
    const { id } = m.data as { id: string };
    useEvalSamples.setState((s) => {
      const samples = { ...s.samples };
      delete samples[id];
      return { samples };
    });
  }
}

followStudioEvents(onEvent, () => {
  for (const runId of Object.keys(useEvalSamples.getState().samples)) void useEvalSamples.getState().load(runId);
});
