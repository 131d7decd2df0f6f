/**
 * Epochs as a way to type Steps: one pass over the training examples is ceil(examples / (batch × accumulation))
 * optimizer steps. Approximate where packing or a validation split changes the example count, which the hint says.
 */
import type { FormValues } from './form.ts';

function positiveInt(text: string | undefined): number | null {
  const n = Number((text ?? '').trim());
  return Number.isInteger(n) && n >= 1 ? n : null;
}

/** Steps in one pass over the dataset, or null while there is no dataset or the batch fields are not valid. */
export function stepsPerEpoch(records: number | null, numbers: FormValues['numbers']): number | null {
  if (records === null || records <= 0) return null;
  const batch = positiveInt(numbers['train.batchSize']);
  const accumulation = positiveInt(numbers['train.gradAccumulation']);
  if (batch === null || accumulation === null) return null;
  const percent = Number(numbers['train.validationPercent']);
  const held = Number.isFinite(percent) && percent > 0 && percent <= 50 ? Math.round((records * percent) / 100) : 0;
  return Math.max(1, Math.ceil(Math.max(1, records - held) / (batch * accumulation)));
}

export function stepsForEpochs(text: string, perEpoch: number | null): { ok: true; steps: number } | { ok: false; message: string } {
  if (perEpoch === null) return { ok: false, message: 'load a dataset first' };
  const t = text.trim();
  const epochs = Number(t);
  if (t === '' || !Number.isFinite(epochs)) return { ok: false, message: 'epochs must be a number' };
  if (epochs <= 0) return { ok: false, message: 'epochs must be greater than 0' };
  const steps = Math.ceil(epochs * perEpoch);
  if (steps > 10_000_000) return { ok: false, message: `${t} epochs is ${steps.toLocaleString('en-US')} steps; at most 10,000,000` };
  return { ok: true, steps };
}
