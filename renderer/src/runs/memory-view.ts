/**
 * The Train form's memory estimate: which request to send for the form as typed ('runs.estimateMemory'), and how
 * the answer splits into the parts of one stacked bar.
 */
import { DEFAULT_RUN_CONFIG, LoraSettingsSchema, TrainSettingsSchema, type MemoryEstimateInfo, type StudioParams } from '../../../common/protocol.ts';
import { buildDraft, type FormValues } from '../stores/form.ts';

export type EstimateParams = StudioParams<'runs.estimateMemory'>;

/** The fields that change how much memory a run needs; the others fall back to their defaults while mistyped. */
const SIZING_FIELDS: ReadonlySet<string> = new Set(['lora.r', 'lora.dropout', 'lora.targets', 'train.batchSize', 'train.maxSeqLen', 'train.precision', 'train.gradientCheckpointing', 'train.frozenWeightsF16']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Replaces values of non-sizing fields the schema refuses with the default, so a half-typed learning rate does not hide the estimate. */
function withDefaults(section: 'lora' | 'train', draft: Record<string, unknown>): Record<string, unknown> {
  const shape: Record<string, { safeParse(v: unknown): { success: boolean } }> = section === 'lora' ? LoraSettingsSchema.shape : TrainSettingsSchema.shape;
  const defaults: Record<string, unknown> = DEFAULT_RUN_CONFIG[section];
  const out: Record<string, unknown> = { ...draft };
  for (const [key, schema] of Object.entries(shape)) {
    if (SIZING_FIELDS.has(`${section}.${key}`)) continue;
    if (!schema.safeParse(out[key]).success) out[key] = defaults[key];
  }
  return out;
}

/**
 * The request for the form as typed, or why there is none yet (no model; a sizing field that does not parse,
 * named with the dotted path the form shows it under).
 */
export function estimateRequest(form: FormValues, modelPath: string, backend?: 'cpu' | 'webgpu'): { ok: true; params: EstimateParams } | { ok: false; message: string } {
  const path = modelPath.trim();
  if (!path) return { ok: false, message: 'choose a model to see how much memory a run needs' };
  const draft = buildDraft(form, path, '');
  const loraDraft = isRecord(draft.lora) ? withDefaults('lora', draft.lora) : {};
  const trainDraft = isRecord(draft.train) ? withDefaults('train', draft.train) : {};
  const lora = LoraSettingsSchema.safeParse(loraDraft);
  if (!lora.success) {
    const i = lora.error.issues[0];
    return { ok: false, message: `lora.${i.path.join('.')}: ${i.message}` };
  }
  const train = TrainSettingsSchema.safeParse(trainDraft);
  if (!train.success) {
    const i = train.error.issues[0];
    return { ok: false, message: `train.${i.path.join('.')}: ${i.message}` };
  }
  return { ok: true, params: { modelPath: path, lora: lora.data, train: train.data, ...(backend ? { backend } : {}) } };
}

export interface MemorySegment {
  key: 'weights' | 'lora' | 'gradients' | 'optimizer' | 'data' | 'activations';
  label: string;
  bytes: number;
  color: string;
}

const PARTS: readonly Omit<MemorySegment, 'bytes'>[] = [
  { key: 'weights', label: 'weights', color: '#6f7b91' },
  { key: 'lora', label: 'LoRA', color: '#5b9dff' },
  { key: 'gradients', label: 'gradients', color: '#8a6cff' },
  { key: 'optimizer', label: 'optimizer', color: '#e86bd0' },
  { key: 'data', label: 'data', color: '#3fd0a8' },
  { key: 'activations', label: 'activations', color: '#f0a04b' },
];

/** The parts of the total, in bar order, zero parts left out; they add up to `estimate.total`. */
export function memorySegments(estimate: MemoryEstimateInfo): MemorySegment[] {
  return PARTS.map((p) => ({ ...p, bytes: estimate[p.key] })).filter((s) => s.bytes > 0);
}

/** Percent of the bar each segment takes (of the sum of segments). */
export function segmentPercents(segments: readonly MemorySegment[]): number[] {
  const sum = segments.reduce((a, s) => a + s.bytes, 0);
  return segments.map((s) => (sum > 0 ? (100 * s.bytes) / sum : 0));
}

/** How the peak compares with this machine: over its memory, over what is free now, or fine. */
export function memoryFit(total: number, systemBytes: number, freeBytes: number): 'over' | 'tight' | 'ok' {
  if (systemBytes > 0 && total > systemBytes) return 'over';
  if (freeBytes > 0 && total > freeBytes) return 'tight';
  return 'ok';
}
