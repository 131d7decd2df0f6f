/**
 * A run's validation result as numbers: the validation loss of its last evaluated step (the trainer always evaluates
 * after the last step when there is a validation split) and its perplexity, exp(loss) — the mean per-token loss in
 * nats, so perplexity is the effective number of equally likely next tokens.
 */
import type { MetricPoint, RunConfig } from '../../../common/protocol.ts';

export interface ValidationResult {
  step: number;
  loss: number;
  perplexity: number;
  /** The loss of the run's last step (it ended there), not of an earlier one while it trains or after a stop. */
  final: boolean;
}

/** Whether the run holds out a validation split (a percent of the data, or a second file). */
export function hasValidationSplit(config: RunConfig): boolean {
  return config.train.validationPercent > 0 || Boolean(config.data?.validationPath);
}

/** The newest point with a validation loss, or null (no split, or not evaluated yet). */
export function latestValidation(points: readonly MetricPoint[], lastStep: number): ValidationResult | null {
  for (let i = points.length - 1; i >= 0; i--) {
    const p = points[i];
    if (p.validationLoss === undefined || !Number.isFinite(p.validationLoss)) continue;
    return { step: p.step, loss: p.validationLoss, perplexity: Math.exp(p.validationLoss), final: p.step === lastStep };
  }
  return null;
}

/** "12.34", "1.235e+5"; exp of a large loss overflows to ∞. */
export function formatPerplexity(v: number): string {
  if (!Number.isFinite(v)) return '∞';
  return v < 1e4 ? v.toFixed(2) : v.toExponential(3);
}
