/**
 * "Export for a cluster": a run as a self-contained folder that Hugging Face Accelerate + PEFT train exactly as the
 * studio would have (train.py, the prepared data and step plan, the initial adapter, launch configurations, pinned
 * requirements, README). Data and initial adapter come from the studio's own code paths (prepareRunDataset, newLora
 * on the trainer's seed stream, the trainer's BatchIterator), so nothing is reimplemented that could drift.
 *
 * The folder is written under a temporary sibling and renamed into place at the end: a bundle is whole or absent.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_BUNDLE_LAUNCH, launchCommand, type BundleLaunch } from '../../common/bundle-launch.ts';
import { baseWeightsOf, type BundleIncludeModel, type BundleSummary, type RunConfig } from '../../common/protocol.ts';
import { readHfConfig } from '../io/hf-config.ts';
import { saveAdapter } from '../io/peft-adapter.ts';
import { loadTokenizer } from '../io/tokenizer.ts';
import { newLora } from '../model/lora.ts';
import type { TrainingExample } from '../model/types.ts';
import { trainerSettings } from '../train/run-config.ts';
import { prepareRunDataset, runPadTokenId } from '../train/run-data.ts';
import { INIT_STREAM } from '../train/seed-streams.ts';
import { Rng } from '../util/rng.ts';
import { ACCELERATE_CONFIGS, accelerateConfig, bundleReadme, DEEPSPEED_JSON, deepspeedJson, slurmScript, type BundleDescription } from './bundle-files.ts';
import { exampleTargets, planSteps } from './bundle-plan.ts';

export const BUNDLE_FORMAT = 'lora-studio-bundle';
export const BUNDLE_VERSION = 1;
/** Models up to this size are copied into the bundle by includeModel 'auto' (the sample model, tiny test models). */
export const AUTO_INCLUDE_MODEL_BYTES = 64 * 1024 * 1024;
const MODEL_FILE_RE = /^(config\.json|generation_config\.json|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|chat_template\.jinja|.*\.safetensors|model\.safetensors\.index\.json)$/;

export type { BundleSummary };

export interface ExportBundleOptions {
  /** The studio run the bundle comes from (recorded in bundle.json and in the external run's status). */
  runId?: string | null;
  name?: string;
  includeModel?: BundleIncludeModel;
  studioVersion?: string;
  /** The launch the README and the summary put first (default: 8 GPUs, DDP, PEFT's dropout). */
  launch?: BundleLaunch;
  onProgress?: (message: string) => void;
}


/** Where train.py and the requirements files are: next to this module in the sources, or under dist/. */
export function bundlePythonDir(): string {
  const candidates = [fileURLToPath(new URL('./python/', import.meta.url)), fileURLToPath(new URL('../../../engine/export/python/', import.meta.url))];
  return candidates.find((c) => existsSync(join(c, 'train.py'))) ?? candidates[0];
}

/** `org/name` when the model folder is a snapshot in a Hugging Face hub cache (models--org--name/snapshots/<rev>). */
export function hubIdOf(modelPath: string): string | null {
  const m = /models--([^/\\]+?)--([^/\\]+)[/\\]snapshots[/\\]/.exec(`${resolve(modelPath)}/`);
  return m ? `${m[1]}/${m[2]}` : null;
}

function modelFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => MODEL_FILE_RE.test(f) && statSync(join(dir, f)).isFile());
}

function folderBytes(dir: string, files: string[]): number {
  return files.reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

/** Writes one JSON line per item without building the whole file in memory. */
function writeJsonl<T>(path: string, items: Iterable<T>, toJson: (item: T) => unknown): number {
  const fd = openSync(path, 'w');
  let n = 0;
  try {
    let chunk = '';
    for (const item of items) {
      chunk += `${JSON.stringify(toJson(item))}\n`;
      n++;
      if (chunk.length > 1 << 20) {
        writeSync(fd, chunk);
        chunk = '';
      }
    }
    if (chunk) writeSync(fd, chunk);
  } finally {
    closeSync(fd);
  }
  return n;
}

const exampleJson = (e: TrainingExample): { input_ids: number[]; labels: number[] } => ({ input_ids: e.inputIds, labels: e.labels });

/** The folder must be new or empty: a bundle never lands on top of other files. */
function checkTarget(out: string): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw Object.assign(new Error(`${out} is a file; choose a new folder for the bundle`), { file: out });
  if (readdirSync(out).length > 0) throw Object.assign(new Error(`${out} is not empty; choose a new folder for the bundle`), { file: out });
}

export async function exportBundle(config: RunConfig, outDir: string, opts: ExportBundleOptions = {}): Promise<BundleSummary> {
  const out = resolve(outDir);
  checkTarget(out);
  const progress = opts.onProgress ?? ((): void => {});
  const settings = trainerSettings(config);
  const modelPath = resolve(config.modelPath);
  const modelConfig = readHfConfig(modelPath);
  const tokenizer = await loadTokenizer(modelPath);
  progress(`preparing dataset ${config.datasetPath}`);
  const data = await prepareRunDataset(config, tokenizer);
  if (data.train.length === 0) throw Object.assign(new Error(`${config.datasetPath}: no usable training examples`), { file: config.datasetPath });
  const padTokenId = runPadTokenId(tokenizer, modelConfig);

  const name = opts.name ?? config.name ?? basename(out);
  const chosen = opts.launch ?? DEFAULT_BUNDLE_LAUNCH;
  const launch: BundleLaunch = chosen.launcher === 'single-gpu' ? { ...chosen, processes: 1 } : chosen;
  const bundleId = randomUUID();
  mkdirSync(dirname(out), { recursive: true });
  const staging = join(dirname(out), `.${basename(out)}.partial-${process.pid}-${Date.now()}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(join(staging, 'data'), { recursive: true });
  try {
    progress('writing the data and the step plan');
    writeJsonl(join(staging, 'data', 'train.jsonl'), data.train, exampleJson);
    writeJsonl(join(staging, 'data', 'validation.jsonl'), data.validation, exampleJson);
    writeJsonl(join(staging, 'data', 'plan.jsonl'), planSteps(data.train, settings, padTokenId, modelConfig.numLayers), (s) => s);
    const targetTokens = data.train.reduce((n, e) => n + exampleTargets(e), 0);

    // The adapter the trainer would start from: newLora on the init stream, as trainer.ts does.
    const initial = newLora(modelConfig, settings.lora, new Rng(settings.seed + INIT_STREAM), Float32Array);
    saveAdapter(join(staging, 'initial_adapter'), initial, { baseModelNameOrPath: modelPath });

    const files = modelFiles(modelPath);
    const includeModel = opts.includeModel ?? 'auto';
    const copyModel = includeModel === 'always' || (includeModel === 'auto' && folderBytes(modelPath, files) <= AUTO_INCLUDE_MODEL_BYTES);
    if (copyModel) {
      progress('copying the base model');
      mkdirSync(join(staging, 'model'));
      for (const f of files) copyFileSync(join(modelPath, f), join(staging, 'model', f));
    }
    const hubId = hubIdOf(modelPath);
    const epochs = (settings.steps * settings.gradAccumulation * settings.batchSize) / data.train.length;
    const bundle = {
      format: BUNDLE_FORMAT,
      version: BUNDLE_VERSION,
      bundleId,
      createdAt: new Date().toISOString(),
      studioVersion: opts.studioVersion ?? null,
      source: { runId: opts.runId ?? null, name, config },
      model: { path: modelPath, included: copyModel ? 'model' : null, hubId, ggufFile: null, architecture: modelConfig.architecture, numLayers: modelConfig.numLayers, frozenWeightsF16: baseWeightsOf(config.train) === 'f16', baseWeights: baseWeightsOf(config.train) },
      lora: { ...settings.lora },
      optim: { learningRate: settings.learningRate, beta1: settings.beta1, beta2: settings.beta2, eps: settings.eps, weightDecay: settings.weightDecay, maxGradNorm: settings.maxGradNorm },
      schedule: { kind: settings.schedule, warmupSteps: settings.warmupSteps, totalSteps: settings.steps },
      steps: settings.steps,
      batchSize: settings.batchSize,
      gradAccumulation: settings.gradAccumulation,
      epochs,
      seed: settings.seed,
      precision: settings.precision,
      lossScale: settings.precision === 'fp16' ? { init: 65536, growthFactor: 2, backoffFactor: 0.5, growthInterval: settings.lossScaleGrowthInterval } : null,
      gradientCheckpointing: settings.gradientCheckpointing,
      evalEverySteps: settings.evalEverySteps,
      data: {
        train: 'data/train.jsonl',
        validation: data.validation.length > 0 ? 'data/validation.jsonl' : null,
        plan: 'data/plan.jsonl',
        trainExamples: data.train.length,
        validationExamples: data.validation.length,
        targetTokens,
        padTokenId,
        maxSeqLen: settings.maxSeqLen,
        packing: config.data?.packing ?? false,
        format: data.format,
        trainOn: config.data?.trainOn ?? 'auto',
        chatTemplate: data.chatTemplate ?? null,
      },
      initialAdapter: 'initial_adapter',
      launch,
    };
    writeFileSync(join(staging, 'bundle.json'), `${JSON.stringify(bundle, null, 2)}\n`);
    writeFileSync(join(staging, 'run.json'), `${JSON.stringify(config, null, 2)}\n`);

    const py = bundlePythonDir();
    for (const f of ['train.py', 'requirements.txt', 'requirements-deepspeed.txt']) copyFileSync(join(py, f), join(staging, f));
    const requirements = readFileSync(join(py, 'requirements.txt'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const deepspeedRequirement = readFileSync(join(py, 'requirements-deepspeed.txt'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.startsWith('deepspeed')) ?? 'deepspeed';
    const modelLine = copyModel
      ? `\`model/\` (a copy of ${modelPath}, inside this bundle)`
      : hubId
        ? `\`${hubId}\` from the Hugging Face hub (the studio used ${modelPath})`
        : `\`${modelPath}\` (the studio's folder; copy it next to the bundle or pass --model)`;
    const desc: BundleDescription = {
      name,
      settings,
      config,
      decoderLayerClass: modelConfig.architecture.replace(/ForCausalLM$/, 'DecoderLayer'),
      trainExamples: data.train.length,
      validationExamples: data.validation.length,
      targetTokens,
      epochs,
      modelLine,
      requirements,
      deepspeedRequirement,
      launch,
    };
    mkdirSync(join(staging, 'accelerate'));
    for (const c of ACCELERATE_CONFIGS) writeFileSync(join(staging, 'accelerate', c), accelerateConfig(c, desc));
    writeFileSync(join(staging, 'accelerate', DEEPSPEED_JSON), deepspeedJson(desc));
    writeFileSync(join(staging, 'slurm.sbatch'), slurmScript(desc));
    writeFileSync(join(staging, 'README.md'), bundleReadme(desc));
    writeFileSync(join(staging, '.gitignore'), 'output/\n.venv/\n');

    checkTarget(out);
    rmSync(out, { recursive: true, force: true });
    renameSync(staging, out);
    return {
      path: out,
      bundleId,
      name,
      steps: settings.steps,
      trainExamples: data.train.length,
      validationExamples: data.validation.length,
      targetTokens,
      modelIncluded: copyModel,
      files: listFiles(out),
      launch: `cd ${JSON.stringify(out)} && ${launchCommand(launch)}`,
      chosenLaunch: launch,
    };
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw e;
  }
}

function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(join(dir, name)).isDirectory()) out.push(...listFiles(join(dir, name), rel));
    else out.push(rel);
  }
  return out;
}

