/**
 * The training form as the user types it (strings, so "1e-" mid-typing is not lost), and its translation into a
 * RunConfigInput that common/protocol.ts validates. Field keys are the dotted config paths validateRunConfig reports.
 */
import {
  baseWeightsOf,
  DEFAULT_RUN_CONFIG,
  keepLayersFromText,
  QUANTIZE_AT_LOAD_FORMATS,
  validateRunConfig,
  type BaseWeights,
  type BaseWeightsKeep,
  type DatasetFormat,
  type FieldError,
  type LoraTarget,
  type RunConfig,
  type TrainOn,
} from '../../../common/protocol.ts';

export const NUMBER_FIELDS = [
  'lora.r',
  'lora.alpha',
  'lora.dropout',
  'train.learningRate',
  'train.steps',
  'train.batchSize',
  'train.maxSeqLen',
  'train.validationPercent',
  'train.evalEverySteps',
  'train.seed',
  'train.gradAccumulation',
  'train.warmupSteps',
  'train.weightDecay',
  'train.maxGradNorm',
] as const;
export type NumberField = (typeof NUMBER_FIELDS)[number];

/** How the dataset becomes examples: the choices of the dataset page, sent as RunConfig.datasetFormat and .data. */
export interface DataChoices {
  format: DatasetFormat;
  trainOn: TrainOn;
  badRecords: 'fail' | 'skip';
  packing: boolean;
  /** '' = split by train.validationPercent instead. */
  validationPath: string;
}

/** Where and how the run computes: RunConfig.backend, train.precision, train.gradientCheckpointing, train.baseWeights. */
export interface ComputeChoices {
  backend: RunConfig['backend'];
  precision: RunConfig['train']['precision'];
  gradientCheckpointing: boolean;
  /** How the frozen base is held (f32, f16, as stored, quantized at load: QLoRA). */
  baseWeights: BaseWeights;
  /**
   * A mixed plan (train.baseWeightsKeep) as typed: layer numbers ("0, 29"); '' or absent = none. Sent only with a
   * quantize-at-load baseWeights, the only setting it applies to.
   */
  keepLayers?: string;
  /** What the kept layers are held as; absent = q8_0. */
  keepAs?: BaseWeightsKeep['as'];
}

/** The kept layers as the form sends them: numbers where typed as numbers, the rest as typed for the schema to name. */
function keepOf(c: ComputeChoices): { layers: (number | string)[]; as: BaseWeightsKeep['as'] } | undefined {
  const text = (c.keepLayers ?? '').trim();
  if (!text || !(QUANTIZE_AT_LOAD_FORMATS as readonly string[]).includes(c.baseWeights)) return undefined;
  return { layers: keepLayersFromText(text), as: c.keepAs ?? 'q8_0' };
}

/** A config's kept layers as the form shows them. */
function keepChoices(train: RunConfig['train']): Pick<ComputeChoices, 'keepLayers' | 'keepAs'> {
  return { keepLayers: train.baseWeightsKeep?.layers.join(', ') ?? '', keepAs: train.baseWeightsKeep?.as ?? 'q8_0' };
}

/** The Advanced group's choices that are not numbers: train.schedule and lora.rslora. */
export interface AdvancedChoices {
  schedule: RunConfig['train']['schedule'];
  rslora: boolean;
}

/** The fixed evaluation prompts as typed (RunConfig.evalPrompts when on); absent = off. */
export interface EvalPromptsChoices {
  enabled: boolean;
  prompts: string[];
  everySteps: string;
  maxNewTokens: string;
}

export interface FormValues {
  /** RunConfig.name; '' = the services generate one (model · dataset · rank). */
  name: string;
  numbers: Record<NumberField, string>;
  targets: LoraTarget[];
  data: DataChoices;
  compute: ComputeChoices;
  advanced: AdvancedChoices;
  evalPrompts?: EvalPromptsChoices;
}

export function defaultForm(): FormValues {
  const { lora, train } = DEFAULT_RUN_CONFIG;
  return {
    name: '',
    numbers: {
      'lora.r': String(lora.r),
      'lora.alpha': String(lora.alpha),
      'lora.dropout': String(lora.dropout),
      'train.learningRate': String(train.learningRate),
      'train.steps': String(train.steps),
      'train.batchSize': String(train.batchSize),
      'train.maxSeqLen': String(train.maxSeqLen),
      'train.validationPercent': String(train.validationPercent),
      'train.evalEverySteps': String(train.evalEverySteps),
      'train.seed': String(train.seed),
      'train.gradAccumulation': String(train.gradAccumulation),
      'train.warmupSteps': String(train.warmupSteps),
      'train.weightDecay': String(train.weightDecay),
      'train.maxGradNorm': String(train.maxGradNorm),
    },
    targets: [...lora.targets],
    data: { format: DEFAULT_RUN_CONFIG.datasetFormat, trainOn: 'auto', badRecords: 'fail', packing: false, validationPath: '' },
    // The app picks the GPU when there is a real one (headless run.json files default to cpu).
    compute: { backend: 'auto', precision: train.precision, gradientCheckpointing: train.gradientCheckpointing, baseWeights: baseWeightsOf(train), ...keepChoices(train) },
    advanced: { schedule: train.schedule, rslora: lora.rslora },
  };
}

/**
 * The form that would build `config` (a stored run's, a loaded settings file's): "Train again with these settings".
 * Settings the form has no input for (checkpoint intervals) are not carried; the run's own defaults apply again.
 */
export function formFromConfig(config: RunConfig): FormValues {
  const { lora, train, data } = config;
  const base = defaultForm();
  return {
    // A new run gets a name of its own: the old run's name is not carried.
    name: '',
    numbers: {
      'lora.r': String(lora.r),
      'lora.alpha': String(lora.alpha),
      'lora.dropout': String(lora.dropout),
      'train.learningRate': String(train.learningRate),
      'train.steps': String(train.steps),
      'train.batchSize': String(train.batchSize),
      'train.maxSeqLen': String(train.maxSeqLen),
      'train.validationPercent': String(train.validationPercent),
      'train.evalEverySteps': String(train.evalEverySteps),
      'train.seed': String(train.seed),
      'train.gradAccumulation': String(train.gradAccumulation),
      'train.warmupSteps': String(train.warmupSteps),
      'train.weightDecay': String(train.weightDecay),
      'train.maxGradNorm': String(train.maxGradNorm),
    },
    targets: [...lora.targets],
    data: {
      format: config.datasetFormat,
      trainOn: data?.trainOn ?? base.data.trainOn,
      badRecords: data?.badRecords ?? base.data.badRecords,
      packing: data?.packing ?? base.data.packing,
      validationPath: data?.validationPath ?? '',
    },
    compute: { backend: config.backend, precision: train.precision, gradientCheckpointing: train.gradientCheckpointing, baseWeights: baseWeightsOf(train), ...keepChoices(train) },
    advanced: { schedule: train.schedule, rslora: lora.rslora },
    ...(config.evalPrompts
      ? { evalPrompts: { enabled: true, prompts: [...config.evalPrompts.prompts], everySteps: String(config.evalPrompts.everySteps), maxNewTokens: String(config.evalPrompts.maxNewTokens) } }
      : {}),
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
  const validationPath = form.data.validationPath.trim();
  return {
    ...DEFAULT_RUN_CONFIG,
    ...(form.name.trim() ? { name: form.name.trim() } : {}),
    modelPath,
    datasetPath,
    datasetFormat: form.data.format,
    backend: form.compute.backend,
    lora: { ...DEFAULT_RUN_CONFIG.lora, r: num(n['lora.r']), alpha: num(n['lora.alpha']), dropout: num(n['lora.dropout']), targets: form.targets, rslora: form.advanced.rslora },
    train: {
      ...DEFAULT_RUN_CONFIG.train,
      learningRate: num(n['train.learningRate']),
      steps: num(n['train.steps']),
      batchSize: num(n['train.batchSize']),
      maxSeqLen: num(n['train.maxSeqLen']),
      // A validation file replaces the percent split (the engine refuses both at once).
      validationPercent: validationPath ? 0 : num(n['train.validationPercent']),
      evalEverySteps: num(n['train.evalEverySteps']),
      seed: num(n['train.seed']),
      gradAccumulation: num(n['train.gradAccumulation']),
      warmupSteps: num(n['train.warmupSteps']),
      weightDecay: num(n['train.weightDecay']),
      maxGradNorm: num(n['train.maxGradNorm']),
      schedule: form.advanced.schedule,
      precision: form.compute.precision,
      gradientCheckpointing: form.compute.gradientCheckpointing,
      // baseWeights says it; the older flag stays off so the two never disagree.
      frozenWeightsF16: false,
      baseWeights: form.compute.baseWeights,
      ...(keepOf(form.compute) ? { baseWeightsKeep: keepOf(form.compute) } : {}),
    },
    data: {
      trainOn: form.data.trainOn,
      badRecords: form.data.badRecords,
      packing: form.data.packing,
      ...(validationPath ? { validationPath } : {}),
    },
    ...(form.evalPrompts?.enabled
      ? { evalPrompts: { prompts: form.evalPrompts.prompts, everySteps: num(form.evalPrompts.everySteps), maxNewTokens: num(form.evalPrompts.maxNewTokens) } }
      : {}),
  };
}

export type FormCheck = { ok: true; config: RunConfig; errors: Record<string, string> } | { ok: false; errors: Record<string, string> };

/** The same validator the services use; errors keep the first message per field. */
export function checkForm(form: FormValues, modelPath: string, datasetPath: string): FormCheck {
  const result = validateRunConfig(buildDraft(form, modelPath, datasetPath));
  return result.ok ? { ok: true, config: result.config, errors: {} } : { ok: false, errors: firstPerField(result.errors) };
}

/** Fields the form shows as one input although the schema checks their parts (a kept layer, the kept format). */
const ONE_INPUT = ['train.baseWeightsKeep'];

export function firstPerField(errors: readonly FieldError[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of errors) {
    const field = ONE_INPUT.find((f) => e.field.startsWith(`${f}.`)) ?? e.field;
    if (!(field in out)) out[field] = e.message;
  }
  return out;
}
