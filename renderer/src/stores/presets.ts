/**
 * Presets of the Train form: a few built in ("Quick test", "r16 all-linear", "Quality", "QLoRA 4-bit"), and the user's own saved by
 * name. A user preset is the form as a common/train-form-snapshot.ts snapshot (the same checked shape the kept form
 * and settings files use), without the model and dataset paths. Applying a preset changes only the settings it
 * holds — never the model, the dataset, how the data is read, or the backend — and says what it changed (field by
 * label, old → new) so it can be undone.
 */
import { fieldLabel } from '../../../common/field-labels.ts';
import { LORA_TARGETS, type LoraTarget } from '../../../common/protocol.ts';
import { readTrainPresets, TRAIN_FORM_SNAPSHOT_VERSION, TrainPresetSchema, type TrainPreset } from '../../../common/train-form-snapshot.ts';
import { keptFromSnapshot, snapshotOf, type KeyValueStorage } from './form-storage.ts';
import { NUMBER_FIELDS, type AdvancedChoices, type ComputeChoices, type FormValues, type NumberField } from './form.ts';

export const PRESETS_STORAGE_KEY = 'lora-studio.train-presets';

/** What a preset sets; anything it leaves out keeps the form's value. */
export interface PresetSettings {
  numbers?: Partial<Record<NumberField, string>>;
  targets?: LoraTarget[];
  compute?: Partial<Omit<ComputeChoices, 'backend'>>;
  advanced?: Partial<AdvancedChoices>;
}

export interface FormPreset {
  /** 'builtin:quick' or 'user:<name>'. */
  id: string;
  name: string;
  description: string;
  builtIn: boolean;
  settings: PresetSettings;
}

const ALL_LINEAR: LoraTarget[] = [...LORA_TARGETS];

/** The numbers of "r16 all-linear", which "QLoRA 4-bit" trains with too. */
const R16_NUMBERS = {
  'lora.r': '16',
  'lora.alpha': '32',
  'lora.dropout': '0.05',
  'train.learningRate': '2e-4',
  'train.steps': '500',
  'train.batchSize': '4',
  'train.gradAccumulation': '4',
  'train.maxSeqLen': '1024',
  'train.warmupSteps': '25',
  'train.weightDecay': '0',
  'train.maxGradNorm': '1',
} as const;

export const BUILT_IN_PRESETS: readonly FormPreset[] = [
  {
    id: 'builtin:quick',
    name: 'Quick test',
    description: 'a few short steps to check that the model, the data and the machine work together',
    builtIn: true,
    settings: {
      numbers: { 'lora.r': '4', 'lora.alpha': '8', 'lora.dropout': '0', 'train.learningRate': '2e-3', 'train.steps': '20', 'train.batchSize': '2', 'train.gradAccumulation': '1', 'train.maxSeqLen': '128', 'train.warmupSteps': '0', 'train.validationPercent': '0', 'train.evalEverySteps': '0' },
      targets: ['q_proj', 'v_proj'],
      advanced: { schedule: 'constant', rslora: false },
      compute: { gradientCheckpointing: false },
    },
  },
  {
    id: 'builtin:r16',
    name: 'r16 all-linear',
    description: 'balanced: rank 16 on every linear layer, cosine schedule with warmup, a small validation split',
    builtIn: true,
    settings: {
      numbers: {
        ...R16_NUMBERS,
        'train.validationPercent': '5',
        'train.evalEverySteps': '50',
      },
      targets: ALL_LINEAR,
      advanced: { schedule: 'cosine', rslora: false },
    },
  },
  {
    id: 'builtin:quality',
    name: 'Quality',
    description: 'slower and steadier: rank 32 with rsLoRA on every linear layer, a larger effective batch, longer sequences, checkpointed activations',
    builtIn: true,
    settings: {
      numbers: {
        'lora.r': '32',
        'lora.alpha': '32',
        'lora.dropout': '0.05',
        'train.learningRate': '1e-4',
        'train.steps': '2000',
        'train.batchSize': '4',
        'train.gradAccumulation': '8',
        'train.maxSeqLen': '2048',
        'train.warmupSteps': '100',
        'train.weightDecay': '0.01',
        'train.maxGradNorm': '1',
        'train.validationPercent': '5',
        'train.evalEverySteps': '100',
      },
      targets: ALL_LINEAR,
      advanced: { schedule: 'cosine', rslora: true },
      compute: { gradientCheckpointing: true },
    },
  },
  {
    id: 'builtin:qlora4',
    name: 'QLoRA 4-bit',
    description: 'the base model quantized to NF4 as it loads (about a quarter of its f16 memory), rank 16 on every linear layer, checkpointed activations',
    builtIn: true,
    settings: {
      // r16 all-linear's optimisation, on a quantized base (its validation settings are left as the form has them).
      numbers: { ...R16_NUMBERS },
      targets: ALL_LINEAR,
      advanced: { schedule: 'cosine', rslora: false },
      compute: { gradientCheckpointing: true, baseWeights: 'nf4' },
    },
  },
];

/** The settings a form holds, as a preset would set them (everything but paths, data choices and the backend). */
export function settingsOfForm(form: FormValues): PresetSettings {
  const { backend: _backend, ...compute } = form.compute;
  void _backend;
  return { numbers: { ...form.numbers }, targets: [...form.targets], compute, advanced: { ...form.advanced } };
}

/** The form with the preset's settings on top. */
export function formWithPreset(form: FormValues, settings: PresetSettings): FormValues {
  return {
    ...form,
    numbers: { ...form.numbers, ...settings.numbers },
    targets: settings.targets ? [...settings.targets] : form.targets,
    compute: { ...form.compute, ...settings.compute },
    advanced: { ...form.advanced, ...settings.advanced },
  };
}

export interface FormChange {
  /** Dotted config path (lora.r, train.schedule …). */
  field: string;
  label: string;
  from: string;
  to: string;
}

/** What differs between two forms' settings, field by field, by label, in the form's order. */
export function formChanges(before: FormValues, after: FormValues): FormChange[] {
  const out: FormChange[] = [];
  const add = (field: string, from: string, to: string) => {
    if (from !== to) out.push({ field, label: fieldLabel(field), from: from === '' ? '(empty)' : from, to: to === '' ? '(empty)' : to });
  };
  const targets = (t: readonly LoraTarget[]) => (t.length === LORA_TARGETS.length ? 'all 7' : LORA_TARGETS.filter((x) => t.includes(x)).join(', '));
  for (const f of NUMBER_FIELDS.filter((f) => f.startsWith('lora.'))) add(f, before.numbers[f], after.numbers[f]);
  add('lora.targets', targets(before.targets), targets(after.targets));
  add('lora.rslora', before.advanced.rslora ? 'on' : 'off', after.advanced.rslora ? 'on' : 'off');
  for (const f of NUMBER_FIELDS.filter((f) => f.startsWith('train.'))) add(f, before.numbers[f], after.numbers[f]);
  add('train.schedule', before.advanced.schedule, after.advanced.schedule);
  add('train.precision', before.compute.precision, after.compute.precision);
  add('train.gradientCheckpointing', before.compute.gradientCheckpointing ? 'on' : 'off', after.compute.gradientCheckpointing ? 'on' : 'off');
  add('train.baseWeights', before.compute.baseWeights, after.compute.baseWeights);
  const kept = (c: FormValues['compute']): string => ((c.keepLayers ?? '').trim() ? `${(c.keepLayers ?? '').trim()} as ${c.keepAs ?? 'q8_0'}` : 'none');
  add('train.baseWeightsKeep', kept(before.compute), kept(after.compute));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The user's presets (localStorage)

/** A stored preset as the picker lists it. */
export function presetFromStored(p: TrainPreset): FormPreset {
  const form = keptFromSnapshot(p.snapshot).form;
  return { id: `user:${p.name.toLowerCase()}`, name: p.name, description: p.savedAt ? `saved ${p.savedAt.slice(0, 10)}` : 'your preset', builtIn: false, settings: settingsOfForm(form) };
}

export function loadUserPresets(storage: KeyValueStorage | null): TrainPreset[] {
  if (!storage) return [];
  try {
    const text = storage.getItem(PRESETS_STORAGE_KEY);
    return text ? readTrainPresets(JSON.parse(text)) : [];
  } catch {
    return []; // unreadable JSON or blocked storage: no user presets, the built-ins still work
  }
}

function storePresets(storage: KeyValueStorage | null, presets: readonly TrainPreset[]): void {
  if (!storage) return;
  try {
    storage.setItem(PRESETS_STORAGE_KEY, JSON.stringify(presets));
  } catch {
    // Full or blocked storage: the preset lives until the page closes.
  }
}

/** Why a name cannot be used for a new preset, or null. A user preset of the same name is replaced (asked first in the UI). */
export function presetNameProblem(name: string): string | null {
  const parsed = TrainPresetSchema.shape.name.safeParse(name);
  if (!parsed.success) return parsed.error.issues[0]?.message ?? 'not a usable name';
  if (BUILT_IN_PRESETS.some((b) => b.name.toLowerCase() === parsed.data.toLowerCase())) return `"${parsed.data}" is a built-in preset; choose another name`;
  return null;
}

/** Saves the form's settings under a name (replacing a user preset of that name); the new list. */
export function saveUserPreset(storage: KeyValueStorage | null, existing: readonly TrainPreset[], name: string, form: FormValues, now = new Date()): TrainPreset[] {
  const problem = presetNameProblem(name);
  if (problem) throw new Error(problem);
  const snapshot = snapshotOf({ form, modelPath: '', datasetPath: '' });
  const preset: TrainPreset = { name: name.trim(), savedAt: now.toISOString(), snapshot: { ...snapshot, version: TRAIN_FORM_SNAPSHOT_VERSION } };
  const next = [...existing.filter((p) => p.name.toLowerCase() !== preset.name.toLowerCase()), preset];
  storePresets(storage, next);
  return next;
}

export function deleteUserPreset(storage: KeyValueStorage | null, existing: readonly TrainPreset[], name: string): TrainPreset[] {
  const next = existing.filter((p) => p.name.toLowerCase() !== name.toLowerCase());
  storePresets(storage, next);
  return next;
}
