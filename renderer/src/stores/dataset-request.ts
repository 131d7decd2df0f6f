/**
 * Which `datasets.inspect` request describes the dataset as the run will see it: the loaded model's tokenizer, the
 * typed max length, the format override and the train-on choice. A change to any of them means the summary on screen
 * (token lengths, truncation, trained spans) is out of date, and the key says so.
 */
import type { StudioParams } from '../../../common/protocol.ts';
import type { FormValues } from './form.ts';

export type InspectParams = StudioParams<'datasets.inspect'>;

/** The protocol's limits for maxSeqLen; a value outside them (or mid-typing) is not sent. */
const MIN_SEQ = 8;
const MAX_SEQ = 131072;

/** The typed max sequence length when it is a usable whole number, else undefined. */
export function typedMaxSeqLen(form: FormValues): number | undefined {
  const text = form.numbers['train.maxSeqLen'].trim();
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= MIN_SEQ && n <= MAX_SEQ ? n : undefined;
}

export function inspectParams(path: string, modelPath: string | null, form: FormValues): InspectParams {
  const maxSeqLen = typedMaxSeqLen(form);
  return {
    path,
    ...(modelPath ? { modelPath } : {}),
    format: form.data.format,
    ...(maxSeqLen !== undefined ? { maxSeqLen } : {}),
    trainOn: form.data.trainOn,
  };
}

/** Equal for requests that give the same summary, whatever the order their fields were written in. */
export function inspectKey(params: InspectParams): string {
  return JSON.stringify([params.path, params.modelPath ?? null, params.format ?? 'auto', params.maxSeqLen ?? null, params.trainOn ?? 'auto']);
}
