/**
 * The quantization lab's mixed-precision plan as a training base: "train on q4_0, keeping layers 3 and 17 at q8_0".
 * One translation for the lab page's "Train with this plan" and `lora-studio train --base-plan report.json`, so the
 * two cannot choose differently. The lab compares more formats than training can hold (int8 is per-channel, not a
 * block format the kernels decode), so a plan is refused with the reason when either side is one of those.
 */
import { KEEP_AS, QUANTIZE_AT_LOAD_FORMATS, type BaseWeights, type BaseWeightsKeep } from './protocol.ts';
import type { MixedPrecisionPlan } from './quant-report.ts';

export type LabTrainingPlan = { ok: true; baseWeights: BaseWeights; keep: BaseWeightsKeep | null } | { ok: false; reason: string };

const isBase = (f: string): f is (typeof QUANTIZE_AT_LOAD_FORMATS)[number] => (QUANTIZE_AT_LOAD_FORMATS as readonly string[]).includes(f);
const isKeepAs = (f: string): f is BaseWeightsKeep['as'] => (KEEP_AS as readonly string[]).includes(f);

/** A plan's base and high are report keys: the format, plus `/merged` or `/on-quantized` with an adapter. */
export const reportKeyFormat = (key: string): string => key.split('/')[0];

export function labTrainingPlan(plan: Pick<MixedPrecisionPlan, 'base' | 'high' | 'keepLayers'>): LabTrainingPlan {
  const base = reportKeyFormat(plan.base);
  const high = reportKeyFormat(plan.high);
  if (!isBase(base)) return { ok: false, reason: `training cannot quantize its base to ${base}; it can to ${QUANTIZE_AT_LOAD_FORMATS.join(', ')}` };
  if (plan.keepLayers.length === 0) return { ok: true, baseWeights: base, keep: null };
  if (!isKeepAs(high)) return { ok: false, reason: `training cannot hold kept layers as ${high}; compare against ${KEEP_AS.filter((f) => f !== 'f32').join(' or ')} in the lab` };
  return { ok: true, baseWeights: base, keep: { layers: [...plan.keepLayers].sort((a, b) => a - b), as: high } };
}
