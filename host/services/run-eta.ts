/**
 * The ETA of a training run, counting its evaluations. A step's own time (MetricPoint.elapsedMs, measured by the
 * engine) leaves out the validation loss computed after it and the eval prompts answered between steps, so an ETA
 * from step time alone is short by every evaluation still to come, and jumps each time one happens.
 *
 * The services see the wall clock between points: the gap from one point to the next, less the engine's step time,
 * is what happened outside the step — the validation pass when the point carries a validation loss, the prompts
 * answered after the previous point (measured directly: from that point to the last answer's arrival), and a little
 * overhead on every step (messages, the event loop). The ETA is
 *
 *   steps left × (mean recent step time + mean overhead)
 *   + validations left × their measured mean + prompt samplings left × their measured mean,
 *
 * the evaluations counted from the run's schedule (trainer.ts wantsValidation, common/eval-prompts.ts evalDue).
 * An evaluation not yet measured counts 0: the first estimate is the step-time one, and it grows once one was seen.
 * Pure (every time is passed in), so tests drive it with controlled clocks.
 */
import { evalDue } from '../../common/eval-prompts.ts';
import type { MetricPoint } from '../../common/protocol.ts';

/** Points the mean step time is taken over (robust to a slow first step). */
export const ETA_WINDOW = 20;
/** Evaluations of each kind the mean cost is taken over. */
const COST_WINDOW = 5;

export interface EtaSchedule {
  totalSteps: number;
  /** Validation loss after every this many steps (and always after the last); 0: only after the last. */
  evalEverySteps: number;
  /** The eval prompts are answered every this many steps (and after the last); null: the run has none. */
  promptsEverySteps: number | null;
}

interface Seen {
  step: number;
  elapsedMs: number;
  at: number;
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

function pushWindow(list: number[], v: number, max: number): void {
  list.push(v);
  if (list.length > max) list.shift();
}

/** Multiples of k in (from, to]. */
function multiples(k: number, from: number, to: number): number {
  return to <= from ? 0 : Math.floor(to / k) - Math.floor(from / k);
}

/** Steps in (from, to] that end with a validation pass (to = the last step, which always has one). */
export function validationsIn(from: number, totalSteps: number, every: number): number {
  if (totalSteps <= from) return 0;
  if (every <= 0) return 1;
  return multiples(every, from, totalSteps) + (totalSteps % every !== 0 ? 1 : 0);
}

/** Steps in (from, to] after which the prompts are answered. */
export function samplingsIn(from: number, totalSteps: number, every: number): number {
  if (totalSteps <= from) return 0;
  return multiples(every, from, totalSteps) + (totalSteps % every !== 0 ? 1 : 0);
}

export class RunEta {
  private schedule: EtaSchedule;
  private readonly recent: Seen[] = [];
  private readonly validationMs: number[] = [];
  private readonly samplingMs: number[] = [];
  private readonly overheadMs: number[] = [];
  /** The prompts answered after a point: its step and when the last answer arrived. */
  private sampling: { step: number; lastAt: number } | null = null;

  constructor(schedule: EtaSchedule) {
    this.schedule = schedule;
  }

  /** The engine (re)started, maybe with another step count: what was measured of its evaluations still holds. */
  restart(totalSteps: number): void {
    this.schedule = { ...this.schedule, totalSteps };
    this.recent.length = 0;
    this.sampling = null;
  }

  /** A metric point arrived at `at` (ms, any monotonic clock). */
  observePoint(p: MetricPoint, at: number): void {
    const prev = this.recent.at(-1);
    // Only consecutive steps of one engine tell what happened between them (a resumed engine restarts elapsedMs).
    if (prev && p.step === prev.step + 1 && p.elapsedMs >= prev.elapsedMs) {
      const outside = Math.max(0, at - prev.at - (p.elapsedMs - prev.elapsedMs));
      const sampled = this.sampling?.step === prev.step ? Math.max(0, this.sampling.lastAt - prev.at) : null;
      if (sampled !== null) pushWindow(this.samplingMs, sampled, COST_WINDOW);
      const rest = Math.max(0, outside - (sampled ?? 0));
      if (p.validationLoss !== undefined) pushWindow(this.validationMs, Math.max(0, rest - mean(this.overheadMs)), COST_WINDOW);
      else pushWindow(this.overheadMs, rest, ETA_WINDOW);
    } else if (prev && p.step <= prev.step) {
      this.recent.length = 0;
    }
    this.recent.push({ step: p.step, elapsedMs: p.elapsedMs, at });
    if (this.recent.length > ETA_WINDOW) this.recent.shift();
  }

  /** An eval-prompt answer for `step` arrived at `at`. */
  observeSample(step: number, at: number): void {
    if (this.sampling?.step === step) this.sampling.lastAt = at;
    else this.sampling = { step, lastAt: at };
  }

  /** Milliseconds left; null before the first point. */
  etaMs(): number | null {
    const last = this.recent.at(-1);
    if (!last) return null;
    const first = this.recent[0];
    let stepMs: number;
    if (this.recent.length >= 2 && last.step > first.step) stepMs = (last.elapsedMs - first.elapsedMs) / (last.step - first.step);
    else if (last.step > 0) stepMs = last.elapsedMs / last.step;
    else return null;
    const { totalSteps, evalEverySteps, promptsEverySteps } = this.schedule;
    const stepsLeft = Math.max(0, totalSteps - last.step);
    let ms = stepsLeft * (stepMs + mean(this.overheadMs));
    ms += validationsIn(last.step, totalSteps, evalEverySteps) * mean(this.validationMs);
    if (promptsEverySteps !== null && this.samplingMs.length > 0) {
      const perSampling = mean(this.samplingMs);
      ms += samplingsIn(last.step, totalSteps, promptsEverySteps) * perSampling;
      // The prompts due after the newest point are being answered now (or soon): what of them is left.
      if (evalDue(last.step, promptsEverySteps, totalSteps)) {
        const done = this.sampling?.step === last.step ? Math.max(0, this.sampling.lastAt - last.at) : 0;
        ms += Math.max(0, perSampling - done);
      }
    }
    return Math.max(0, Math.round(ms));
  }
}
