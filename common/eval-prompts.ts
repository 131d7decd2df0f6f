/**
 * Fixed evaluation prompts sampled during training (RunConfig.evalPrompts): when they are due, and how a prompt is
 * wrapped for a run's data format. Shared by the engine (which answers them), the services (which store them) and the
 * renderer (the Playground picks the same wrapping, the run's timeline reads the same steps).
 */
import type { DatasetFormat, EvalSample, PromptFormat } from './protocol.ts';

/** How a run's examples were wrapped, so its adapter gets a prompt the same way (engine/data/render.ts). */
export function promptFormatFor(format: Exclude<DatasetFormat, 'auto'>): PromptFormat {
  switch (format) {
    case 'alpaca':
      return 'alpaca';
    case 'sharegpt':
    case 'messages':
      return 'chat';
    case 'text':
    case 'prompt-completion':
    case 'tokenized':
      return 'raw';
  }
}

/**
 * Whether the prompts are answered after `step` optimizer steps: before the first step (0), every `everySteps` steps,
 * and after the last one.
 */
export function evalDue(step: number, everySteps: number, totalSteps: number): boolean {
  return step === totalSteps || step % everySteps === 0;
}

/** Every step of a run of `totalSteps` at which the prompts are answered, in order. */
export function evalSteps(everySteps: number, totalSteps: number): number[] {
  const out: number[] = [];
  for (let s = 0; s <= totalSteps; s += everySteps) out.push(s);
  if (out[out.length - 1] !== totalSteps) out.push(totalSteps);
  return out;
}

/** One row of the run's timeline: a step and the answer to each prompt (undefined while not yet answered). */
export interface EvalTimelineRow {
  step: number;
  answers: (EvalSample | undefined)[];
}

/** The samples as a timeline (step ascending), `promptCount` answers per row; a later sample of the same step and prompt wins. */
export function evalTimeline(samples: readonly EvalSample[], promptCount: number): EvalTimelineRow[] {
  const rows = new Map<number, EvalTimelineRow>();
  for (const s of samples) {
    let row = rows.get(s.step);
    if (!row) {
      row = { step: s.step, answers: Array.from({ length: promptCount }, () => undefined) };
      rows.set(s.step, row);
    }
    if (s.index >= 0 && s.index < promptCount) row.answers[s.index] = s;
  }
  return [...rows.values()].sort((a, b) => a.step - b.step);
}

/** New samples merged into held ones: one per (step, prompt), the newest kept; `truncatedAfter` drops later steps first. */
export function mergeEvalSamples(held: readonly EvalSample[], incoming: readonly EvalSample[], truncatedAfter?: number): EvalSample[] {
  const keep = truncatedAfter === undefined ? [...held] : held.filter((s) => s.step <= truncatedAfter);
  const byKey = new Map(keep.map((s) => [`${s.step}:${s.index}`, s]));
  for (const s of incoming) byKey.set(`${s.step}:${s.index}`, s);
  return [...byKey.values()].sort((a, b) => a.step - b.step || a.index - b.index);
}
