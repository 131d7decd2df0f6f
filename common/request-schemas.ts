/**
 * One zod schema per request: the params of every method in the protocol. The services validate every request
 * against this map (host/services/params.ts), the params types of common/protocol.ts StudioRequests are inferred from
 * it (z.input), and the method list STUDIO_METHODS is its keys, so a method exists once, with its shape, here.
 *
 * Imports only zod and the common/ modules that do not import common/protocol.ts at runtime: protocol.ts imports this
 * module (for STUDIO_METHODS), so a runtime import back would be a cycle.
 */
import { z } from 'zod';
import { BUNDLE_DROPOUT_MODES, BUNDLE_INCLUDE_MODEL, BUNDLE_LAUNCHERS, MAX_BUNDLE_PROCESSES } from './bundle-launch.ts';
import { MergedExportParamsSchema } from './merged-export.ts';
import { ModelsPullParamsSchema } from './models-pull.ts';
import { PROMPT_FORMATS } from './prompt-formats.ts';
import { LORA_GGUF_DTYPES, QUANT_ADAPTER_MODES, QUANT_FORMAT_NAMES } from './quant-formats.ts';
import { DATASET_FORMATS, LoraSettingsSchema, TrainSettingsSchema, TRAIN_ON, type RunConfigInput } from './run-config.ts';
import { AdaptersDeleteParamsSchema, AdaptersRenameParamsSchema, RunsDeleteParamsSchema, RunsUpdateParamsSchema } from './run-info.ts';
import type { HealthThresholds } from './run-health.ts';
import type { StudioSettings } from './protocol.ts';

/** 'settings.set': some settings, and some of the alert thresholds (the others stay). */
export type StudioSettingsPatch = Partial<Omit<StudioSettings, 'healthAlerts'>> & { healthAlerts?: Partial<HealthThresholds> };

/** The most text 'datasets.upload' carries (256 Mi characters). */
export const MAX_UPLOAD_CHARS = 256 * 1024 * 1024;

const empty = z.object({}).optional();
const id = z.string({ message: 'id is required' }).min(1, 'id is required');
const jobId = z.string({ message: 'jobId is required' }).min(1, 'jobId is required');
const modelFolder = z.string({ message: 'choose a model folder' }).min(1, 'choose a model folder');
const num = (what: string) => z.number({ message: `${what} must be a number` }).finite(`${what} must be finite`);
const positive = (what: string) => z.number({ message: `${what} must be a number` }).positive(`${what} must be greater than 0`).finite(`${what} must be finite`);

/** 'generate.start': what the Playground asks for (common/protocol.ts PlaygroundRequest is its type). */
export const PlaygroundRequestSchema = z.object({
  modelPath: modelFolder,
  /** A PEFT adapter folder; absent = the base model alone. */
  adapterPath: z.string().optional(),
  /** With an adapter: also answer with the base model (same settings and seed), to compare. */
  compareBase: z.boolean().optional(),
  /** With an adapter: also answer with this second adapter folder (same base model, prompt, settings and seed), side by side. */
  compareAdapterPath: z.string().optional(),
  prompt: z.string({ message: 'type a prompt' }).refine((s) => s.trim() !== '', 'type a prompt'),
  promptFormat: z.enum(PROMPT_FORMATS, { message: `prompt format must be one of ${PROMPT_FORMATS.join(', ')}` }),
  /** Chat: a built-in template name (as a run's data.chatTemplate) instead of the model's own. */
  chatTemplate: z.string().optional(),
  /** Chat: a system message before the user turn; Alpaca: replaces the preamble. */
  system: z.string().optional(),
  /** Chat: the conversation so far (user and assistant turns, oldest first); the prompt is the next user turn. */
  history: z
    .array(z.object({ role: z.enum(['user', 'assistant'], { message: 'a turn is a user or an assistant turn' }), content: z.string({ message: 'a turn needs its text' }) }), { message: 'history must be a list of turns' })
    .max(200, 'at most 200 turns')
    .optional(),
  maxNewTokens: num('max new tokens').int('max new tokens must be a whole number').min(1, 'max new tokens must be at least 1').max(4096, 'max new tokens must be at most 4096'),
  /** 0 = greedy. */
  temperature: num('temperature').min(0, 'temperature must be 0 (greedy) or more').max(5, 'temperature must be at most 5'),
  topP: num('top-p').gt(0, 'top-p must be greater than 0').max(1, 'top-p must be at most 1'),
  seed: num('seed').int('seed must be a whole number'),
  backend: z.enum(['auto', 'cpu', 'webgpu'], { message: 'backend must be auto, cpu or webgpu' }),
});

/** 'quant.start': what one lab job measures. */
export const QuantStartParamsSchema = z.object({
  modelPath: modelFolder,
  /** A PEFT adapter folder (an Adapters entry's path). */
  adapterPath: z.string().optional(),
  /** Format names from 'quant.formats'. */
  formats: z
    .array(z.enum(QUANT_FORMAT_NAMES, { message: `unknown format; choose from ${QUANT_FORMAT_NAMES.join(', ')}` }), { message: 'formats must be a list of format names' })
    .min(1, 'choose at least one format')
    .refine((f) => new Set(f).size === f.length, 'a format is listed twice'),
  /** With an adapter: which ways to combine it with the quantized base (both when absent). */
  adapterModes: z.array(z.enum(QUANT_ADAPTER_MODES)).optional(),
  /** Calibration text for the behaviour metrics; without it (and without useSampleCalib) only weights are measured. */
  calibPath: z.string().optional(),
  useSampleCalib: z.boolean().optional(),
  /** Calibration tokens in all (default 512) and per sequence (default 128). */
  calibTokens: z.number().int('calibration tokens must be a whole number').min(2, 'calibration tokens must be at least 2').max(65536, 'calibration tokens must be at most 65536').optional(),
  calibSeqLen: z.number().int('calibration sequence length must be a whole number').min(2, 'calibration sequence length must be at least 2').max(8192, 'calibration sequence length must be at most 8192').optional(),
  /** Replace the automatic flagging: absolute relative-error and KL thresholds, or k in k × median. */
  thresholds: z.object({ relErr: positive('the relative-error threshold').optional(), kl: positive('the KL threshold').optional(), multiplier: positive('the threshold multiplier').optional() }).optional(),
});

export const REQUEST_PARAM_SCHEMAS = {
  'app.info': empty,
  'models.sample': empty,
  'models.inspect': z.object({ path: modelFolder }),
  'models.discover': empty,
  'models.pull': ModelsPullParamsSchema,
  'models.pullCancel': z.object({ jobId }),
  'datasets.sample': empty,
  'datasets.inspect': z.object({
    path: z.string({ message: 'choose a dataset file' }).min(1, 'choose a dataset file'),
    modelPath: z.string().min(1).optional(),
    format: z.enum(DATASET_FORMATS).optional(),
    maxSeqLen: z.number().int().min(8, 'max sequence length must be at least 8').optional(),
    trainOn: z.enum(TRAIN_ON).optional(),
  }),
  /** Browser only: the file's content travels in the request and is stored under the studio home. */
  'datasets.upload': z.object({
    fileName: z.string({ message: 'fileName is required' }).min(1, 'fileName is required').max(255, 'file name is too long'),
    content: z.string({ message: 'content must be the text of the file' }).max(MAX_UPLOAD_CHARS, 'the file is over 256 MiB; use the desktop app or copy it next to the server'),
  }),
  // The config is checked by the run manager (validateRunConfig), whose field paths start at the config (`lora.r`);
  // optional here only so a missing config reaches that check as before.
  'runs.start': z.object({ config: z.custom<RunConfigInput>().optional(), priority: z.number().int('priority must be a whole number').optional() }),
  'runs.list': empty,
  'runs.get': z.object({ id }),
  'runs.metrics': z.object({ id, afterStep: z.number().optional() }),
  'runs.cancel': z.object({ id }),
  'adapters.list': empty,
  'adapters.saveAs': z.object({ id, destination: z.string({ message: 'choose a folder to save into' }).min(1, 'choose a folder to save into') }),
  'adapters.startDrag': z.object({ id }),
  'adapters.exportGguf': z.object({ id, dtype: z.enum(LORA_GGUF_DTYPES, { message: `dtype must be one of ${LORA_GGUF_DTYPES.join(', ')}` }).optional() }),
  'adapters.exportOllama': z.object({ id, destination: z.string().min(1, 'choose a folder to write into').optional() }),
  'adapters.exportMerged': MergedExportParamsSchema,
  'dialog.pickFolder': z.object({ title: z.string().optional() }).optional(),
  'dialog.pickFile': z.object({ title: z.string().optional(), extensions: z.array(z.string()).optional() }).optional(),
  'quant.formats': empty,
  'quant.start': QuantStartParamsSchema,
  'quant.cancel': z.object({ jobId }),
  'quant.get': z.object({ jobId }),
  'quant.list': empty,
  'backends.probe': z.object({ refresh: z.boolean().optional() }).optional(),
  'runs.pause': z.object({ id }),
  'runs.resume': z.object({ id }),
  'runs.stopAndSave': z.object({ id }),
  'runs.setPriority': z.object({ id, priority: z.number({ message: 'priority must be a number' }).int('priority must be a whole number') }),
  'runs.events': z.object({ id, afterId: z.number().int().min(0).optional() }),
  'runs.history': z.object({ id }),
  'runs.estimateMemory': z.object({ modelPath: modelFolder, lora: LoraSettingsSchema, train: TrainSettingsSchema, backend: z.enum(['cpu', 'webgpu']).optional() }),
  'settings.get': empty,
  // Only "an object" here: the settings store checks it field by field against the keys as sent, naming unknown
  // settings. The custom step types it as the patch the renderer sends; the record step does the checking.
  'settings.set': z.custom<StudioSettingsPatch>().pipe(z.record(z.string(), z.unknown())),
  'generate.start': PlaygroundRequestSchema,
  'generate.cancel': z.object({ jobId }),
  'adapters.import': z.object({ path: z.string({ message: 'choose an adapter folder' }).min(1, 'choose an adapter folder'), modelPath: z.string().min(1).optional(), name: z.string().max(200).optional() }),
  'runs.exportBundle': z.object({
    id,
    destination: z.string().min(1, 'choose a folder to write the bundle into').optional(),
    includeModel: z.enum(BUNDLE_INCLUDE_MODEL, { message: `includeModel must be one of ${BUNDLE_INCLUDE_MODEL.join(', ')}` }).optional(),
    launcher: z.enum(BUNDLE_LAUNCHERS, { message: `launcher must be one of ${BUNDLE_LAUNCHERS.join(', ')}` }).optional(),
    processes: z.number({ message: 'processes must be a number' }).int('processes must be a whole number').min(1, 'processes must be at least 1').max(MAX_BUNDLE_PROCESSES, `processes must be at most ${MAX_BUNDLE_PROCESSES}`).optional(),
    dropout: z.enum(BUNDLE_DROPOUT_MODES, { message: `dropout must be one of ${BUNDLE_DROPOUT_MODES.join(', ')}` }).optional(),
  }),
  'external.follow': z.object({
    path: z.string({ message: "choose the run's metrics.jsonl or the bundle's output folder" }).min(1, "choose the run's metrics.jsonl or the bundle's output folder"),
    autoImport: z.boolean().optional(),
  }),
  'external.list': empty,
  'external.metrics': z.object({ id, afterStep: z.number().optional() }),
  'external.unfollow': z.object({ id }),
  'external.importAdapter': z.object({ id, name: z.string().max(200).optional() }),
  'runs.update': RunsUpdateParamsSchema,
  'runs.delete': RunsDeleteParamsSchema,
  'adapters.delete': AdaptersDeleteParamsSchema,
  'adapters.rename': AdaptersRenameParamsSchema,
  'runs.evalSamples': z.object({ id, afterStep: z.number().int().min(-1).optional() }),
} as const satisfies Record<string, z.ZodType>;

export type RequestParamSchemas = typeof REQUEST_PARAM_SCHEMAS;
export type RequestMethod = keyof RequestParamSchemas;

/** Every method, so hosts can prove they handle all of them (the keys of REQUEST_PARAM_SCHEMAS, in its order). */
export const STUDIO_METHODS = Object.keys(REQUEST_PARAM_SCHEMAS) as readonly RequestMethod[];
