/**
 * The training form as the user types it (strings, so "1e-" mid-typing is not lost), and its translation into a
 * RunConfigInput that common/protocol.ts validates. Field keys are the dotted config paths validateRunConfig reports.
 */
import { DEFAULT_RUN_CONFIG, validateRunConfig, type FieldError, type LoraTarget, type RunConfig } from '../../../common/protocol.ts';

export const NUMBER_FIELDS = ['lora.r', 'lora.alpha', 'lora.dropout', 'train.learningRate', 'train.steps', 'train.batchSize', 'train.maxSeqLen'] as const;
export type NumberField = (typeof NUMBER_FIELDS)[number];

export interface FormValues {
  numbers: Record<NumberField, string>;
  targets: LoraTarget[];
}

export function defaultForm(): FormValues {
  const { lora, train } = DEFAULT_RUN_CONFIG;
  return {
    numbers: {
      'lora.r': String(lora.r),
      'lora.alpha': String(lora.alpha),
      'lora.dropout': String(lora.dropout),
      'train.learningRate': String(train.learningRate),
      'train.steps': String(train.steps),
      'train.batchSize': String(train.batchSize),
      'train.maxSeqLen': String(train.maxSeqLen),
    },
    targets: [...lora.targets],
  };
}

/** '' → undefined (zod says "must be a number"); anything else → Number (NaN is refused the same way). */
function num(text: string): number | undefined {
  const t = text.trim();
  return t === '' ? undefined : Number(t);
}

/** The config as typed: numbers may be missing or NaN until validateRunConfig has passed it. */
export function buildDraft(form: FormValues, modelPath: string, datasetPath: string): Record<string, unknown> {
  const n = form.numbers;
  return {
    ...DEFAULT_RUN_CONFIG,
    modelPath,
    datasetPath,
    lora: { ...DEFAULT_RUN_CONFIG.lora, r: num(n['lora.r']), alpha: num(n['lora.alpha']), dropout: num(n['lora.dropout']), targets: form.targets },
    train: {
      ...DEFAULT_RUN_CONFIG.train,
      learningRate: num(n['train.learningRate']),
      steps: num(n['train.steps']),
      batchSize: num(n['train.batchSize']),
      maxSeqLen: num(n['train.maxSeqLen']),
    },
  };
}

export type FormCheck = { ok: true; config: RunConfig; errors: Record<string, string> } | { ok: false; errors: Record<string, string> };

/** The same validator the services use; errors keep the first message per field. */
export function checkForm(form: FormValues, modelPath: string, datasetPath: string): FormCheck {
  const result = validateRunConfig(buildDraft(form, modelPath, datasetPath));
  return result.ok ? { ok: true, config: result.config, errors: {} } : { ok: false, errors: firstPerField(result.errors) };
}

export function firstPerField(errors: readonly FieldError[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of errors) if (!(e.field in out)) out[e.field] = e.message;
  return out;
}
