import { Rng } from '../util/rng.ts';

/**
 * Seeded shuffle, then the first `validationPercent` % become the validation split (at least one example when the
 * percent is above 0, and never all of them). The same seed always gives the same order and the same split.
 */
export function splitExamples<T>(items: readonly T[], validationPercent: number, seed: number): { train: T[]; validation: T[] } {
  if (!(validationPercent >= 0 && validationPercent < 100)) throw new Error(`validation percent must be in [0, 100), got ${validationPercent}`);
  const shuffled = seededShuffle(items, seed);
  if (validationPercent === 0) return { train: shuffled, validation: [] };
  if (shuffled.length < 2) throw new Error(`a validation split needs at least 2 examples, the dataset has ${shuffled.length}`);
  const n = Math.min(shuffled.length - 1, Math.max(1, Math.round((shuffled.length * validationPercent) / 100)));
  return { train: shuffled.slice(n), validation: shuffled.slice(0, n) };
}

/** Seeded Fisher–Yates shuffle of a copy. */
export function seededShuffle<T>(items: readonly T[], seed: number): T[] {
  return new Rng(seed).shuffle(items.slice());
}
