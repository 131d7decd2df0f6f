/**
 * Learning-rate schedules as transformers' get_{constant,linear,cosine}_schedule_with_warmup: the rate of optimizer
 * step k (0-based) is base · λ(k), as LambdaLR gives it before the k-th `scheduler.step()`.
 */
export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export interface ScheduleOptions {
  kind: ScheduleKind;
  baseLr: number;
  warmupSteps: number;
  totalSteps: number;
}

/** λ(step) of transformers' schedule; floats as Python evaluates them. */
export function lrLambda(kind: ScheduleKind, step: number, warmupSteps: number, totalSteps: number): number {
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  if (kind === 'constant') return 1;
  if (kind === 'linear') return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  // num_cycles = 0.5, as transformers' default
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
}

export function learningRateAt(opts: ScheduleOptions, step: number): number {
  return opts.baseLr * lrLambda(opts.kind, step, opts.warmupSteps, opts.totalSteps);
}
