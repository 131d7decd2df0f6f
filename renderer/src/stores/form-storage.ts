/**
 * Keeps the Train form (model, dataset, every setting) across reloads and restarts, in localStorage. What is read
 * back passes common/train-form-snapshot.ts first, so a value written by an older studio (or edited by hand) falls
 * back to its default instead of breaking the page.
 */
import { migrateTrainFormSnapshot, TRAIN_FORM_SNAPSHOT_VERSION, type TrainFormSnapshot } from '../../../common/train-form-snapshot.ts';
import { defaultForm, NUMBER_FIELDS, type ComputeChoices, type FormValues } from './form.ts';

export const FORM_STORAGE_KEY = 'lora-studio.train-form';

/** The part of the Web Storage API used here (tests pass a Map-backed one). */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface KeptForm {
  modelPath: string;
  datasetPath: string;
  form: FormValues;
}

export function snapshotOf(kept: KeptForm): TrainFormSnapshot {
  const { form } = kept;
  return {
    version: TRAIN_FORM_SNAPSHOT_VERSION,
    modelPath: kept.modelPath,
    datasetPath: kept.datasetPath,
    name: form.name,
    numbers: { ...form.numbers },
    targets: [...form.targets],
    data: { ...form.data },
    compute: { ...form.compute },
    advanced: { ...form.advanced },
    ...(form.evalPrompts ? { evalPrompts: { ...form.evalPrompts, prompts: [...form.evalPrompts.prompts] } } : {}),
  };
}

/** The compute choices of a snapshot; one kept before baseWeights existed says frozenWeightsF16 instead. */
function computeFromSnapshot(base: ComputeChoices, c: TrainFormSnapshot['compute']): ComputeChoices {
  const baseWeights = c.baseWeights ?? (c.frozenWeightsF16 === true ? 'f16' : c.frozenWeightsF16 === false ? 'f32' : base.baseWeights);
  return {
    backend: c.backend ?? base.backend,
    precision: c.precision ?? base.precision,
    gradientCheckpointing: c.gradientCheckpointing ?? base.gradientCheckpointing,
    baseWeights,
    keepLayers: c.keepLayers ?? base.keepLayers,
    keepAs: c.keepAs ?? base.keepAs,
  };
}

/** A checked snapshot on top of the defaults: every part it lacks keeps its default. */
export function keptFromSnapshot(snapshot: TrainFormSnapshot): KeptForm {
  const base = defaultForm();
  const numbers = { ...base.numbers };
  for (const field of NUMBER_FIELDS) {
    const value = snapshot.numbers[field];
    if (value !== undefined) numbers[field] = value;
  }
  const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  return {
    modelPath: snapshot.modelPath,
    datasetPath: snapshot.datasetPath,
    form: {
      name: snapshot.name ?? '',
      numbers,
      targets: snapshot.targets ? [...new Set(snapshot.targets)] : base.targets,
      data: { ...base.data, ...defined(snapshot.data) },
      compute: computeFromSnapshot(base.compute, snapshot.compute),
      advanced: { ...base.advanced, ...defined(snapshot.advanced) },
      ...(snapshot.evalPrompts ? { evalPrompts: { ...snapshot.evalPrompts, prompts: [...snapshot.evalPrompts.prompts] } } : {}),
    },
  };
}

/** What was kept, or null (nothing kept, unreadable JSON, an unknown version): the page then starts from defaults. */
export function loadKeptForm(storage: KeyValueStorage | null): KeptForm | null {
  if (!storage) return null;
  let text: string | null;
  try {
    text = storage.getItem(FORM_STORAGE_KEY);
  } catch {
    return null; // storage disabled by the browser's privacy settings
  }
  if (!text) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  const snapshot = migrateTrainFormSnapshot(raw);
  return snapshot ? keptFromSnapshot(snapshot) : null;
}

export function saveKeptForm(storage: KeyValueStorage | null, kept: KeptForm): void {
  if (!storage) return;
  try {
    storage.setItem(FORM_STORAGE_KEY, JSON.stringify(snapshotOf(kept)));
  } catch {
    // Full or disabled storage: the form still works, it just is not kept.
  }
}

/** The window's localStorage, or null where there is none (Node tests) or it is blocked. */
export function browserStorage(): KeyValueStorage | null {
  try {
    return (globalThis as { localStorage?: KeyValueStorage }).localStorage ?? null;
  } catch {
    return null;
  }
}
