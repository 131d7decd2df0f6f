/**
 * The words a person sees for a field: validators and services name fields by their dotted path (`lora.r`,
 * `maxNewTokens`, `thresholds.relErr`); every message shown in the UI or the CLI names them by these labels instead.
 * One table for every page, so the Train form, the Playground, the Lab and Settings say the same thing.
 */
import type { FieldError } from './protocol.ts';

export const FIELD_LABELS: Readonly<Record<string, string>> = {
  // Run config (Train page)
  name: 'Run name',
  notes: 'Notes',
  tags: 'Tags',
  modelPath: 'Model',
  datasetPath: 'Dataset',
  datasetFormat: 'Dataset format',
  backend: 'Backend',
  'lora.r': 'Rank (r)',
  'lora.alpha': 'Alpha',
  'lora.dropout': 'Dropout',
  'lora.targets': 'Target modules',
  'lora.rslora': 'rsLoRA',
  'train.learningRate': 'Learning rate',
  'train.steps': 'Steps',
  'train.batchSize': 'Batch size',
  'train.gradAccumulation': 'Gradient accumulation',
  'train.maxSeqLen': 'Max sequence length',
  'train.warmupSteps': 'Warmup steps',
  'train.schedule': 'Learning-rate schedule',
  'train.weightDecay': 'Weight decay',
  'train.maxGradNorm': 'Max grad norm',
  'train.seed': 'Seed',
  'train.gradientCheckpointing': 'Gradient checkpointing',
  'train.precision': 'Precision',
  'train.checkpointEverySteps': 'Checkpoint every (steps)',
  'train.checkpointEveryMinutes': 'Checkpoint every (minutes)',
  'train.validationPercent': 'Validation split',
  'train.evalEverySteps': 'Evaluate every (steps)',
  'train.frozenWeightsF16': 'Frozen weights as f16',
  'train.baseWeights': 'Base weights',
  'train.baseWeightsKeep': 'Kept layers',
  'train.baseWeightsKeep.layers': 'Kept layers',
  'train.baseWeightsKeep.as': 'Kept layers held as',
  'data.trainOn': 'Train on',
  'data.badRecords': 'Bad records',
  'data.packing': 'Packing',
  'data.validationPath': 'Validation file',
  evalPrompts: 'Evaluation prompts',
  'evalPrompts.prompts': 'Evaluation prompt',
  'evalPrompts.everySteps': 'Answer every',
  'evalPrompts.maxNewTokens': 'Max new tokens (evaluation)',
  // Playground
  adapterPath: 'Adapter',
  compareBase: 'Compare with the base model',
  compareAdapterPath: 'Second adapter',
  prompt: 'Prompt',
  promptFormat: 'Prompt format',
  chatTemplate: 'Chat template',
  system: 'System message',
  history: 'Conversation',
  maxNewTokens: 'Max new tokens',
  temperature: 'Temperature',
  topP: 'Top-p',
  seed: 'Seed',
  // Quantization lab
  formats: 'Formats',
  adapterModes: 'Adapter modes',
  calibPath: 'Calibration text',
  calibTokens: 'Calibration tokens',
  calibSeqLen: 'Calibration sequence length',
  'thresholds.relErr': 'Relative-error threshold',
  'thresholds.kl': 'KL threshold',
  'thresholds.multiplier': 'Threshold multiplier (× median)',
  // Studio settings
  checkpointEverySteps: 'Checkpoint every (steps)',
  checkpointEveryMinutes: 'Checkpoint every (minutes)',
  autoResume: 'Resume after a crash',
  maxConcurrentRunsPerDevice: 'Runs at once per device',
  prometheusPort: 'Prometheus port',
  validationTimeoutSeconds: 'Checking timeout (seconds)',
  startupTimeoutMinutes: 'Start-up timeout (minutes)',
  stepTimeoutMinutes: 'Step timeout (minutes)',
  cpuThreads: 'CPU threads',
};

/** `config.lora.r` and `lora.r` are the same field: requests wrap the run config in `config`. */
function localPath(field: string): string {
  return field.replace(/^(config|params)\./, '');
}

/** camelCase → "camel case" for a field the table does not list yet (better than the raw key, never empty). */
function words(key: string): string {
  const spaced = key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/[_.]+/g, ' ').trim().toLowerCase();
  return spaced ? spaced[0]!.toUpperCase() + spaced.slice(1) : key;
}

/** The label of a dotted field path; list items (`lora.targets.2`) take their list's label. */
export function fieldLabel(field: string): string {
  const path = localPath(field);
  if (Object.hasOwn(FIELD_LABELS, path)) return FIELD_LABELS[path]!;
  const withoutIndex = path.replace(/(\.\d+)+$/, '');
  if (Object.hasOwn(FIELD_LABELS, withoutIndex)) return FIELD_LABELS[withoutIndex]!;
  const last = withoutIndex.split('.').pop() ?? withoutIndex;
  return words(last);
}

/**
 * One problem as a sentence that names the field by its label: "Max new tokens: must be at most 4096". A message
 * that already starts with the field's own words ("steps must be at least 1") becomes "Steps must be at least 1".
 */
export function describeFieldError(error: FieldError): string {
  const message = error.message.trim();
  if (!error.field) return capitalize(message);
  const label = fieldLabel(error.field);
  const subject = label.replace(/\s*\(.*\)$/, '').toLowerCase();
  const lower = message.toLowerCase();
  if (lower.startsWith(subject + ' ')) return label + message.slice(subject.length);
  if (lower.startsWith(`the ${subject} `)) return label + message.slice(subject.length + 4);
  return `${label}: ${message}`;
}

/** Several problems, each its own sentence (never run together). */
export function describeFieldErrors(errors: readonly FieldError[]): string {
  return errors.map(describeFieldError).join('. ');
}

function capitalize(text: string): string {
  return text ? text[0]!.toUpperCase() + text.slice(1) : text;
}
