/**
 * Importing a PEFT LoRA adapter made elsewhere (a folder, a Hugging Face hub cache snapshot, an external run) into
 * the Adapters list, so the playground, GGUF export and the quantization lab work on it like on a studio run's.
 *
 * It is checked before it is copied in: the files and adapter_config.json (engine/io/peft-adapter.ts), the target
 * modules the studio can apply, and — when the base model is on this machine (given, or named by the adapter's
 * base_model_name_or_path) — every tensor's layer and shape against that model. A refusal names the file and says
 * what does not match; the copy records the base model's local folder so "Try it" and GGUF export find it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { LORA_TARGETS, type AdapterImportResult } from '../../common/protocol.ts';
import { isGgufFile, readModelConfig } from '../../engine/host-api.ts';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, loadAdapter, parseAdapterKey, readAdapterConfig } from '../../engine/host-api.ts';
import { SafetensorsFile } from '../../engine/host-api.ts';
import type { LoraTargetName } from '../../engine/host-api.ts';
import { safeFileName, type AdapterStore } from './adapter-store.ts';
import { StudioError } from './errors.ts';
import { newId } from './ids.ts';

export interface ImportAdapterInput {
  /** An adapter folder, a hub cache folder (models--org--name or one of its snapshots), or a hub id in the cache. */
  path: string;
  /** The base model folder to check the adapter against (default: its base_model_name_or_path, when local). */
  modelPath?: string;
  name?: string;
  /** Recorded as where the adapter came from (default: the resolved folder). */
  importedFrom?: string;
  /** Request fields the problems are about (default 'path' and 'modelPath'). */
  fields?: { path: string; modelPath: string };
}

/** The Hugging Face hub cache: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub (as huggingface_hub). */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return resolve(env.HF_HUB_CACHE);
  if (env.HF_HOME) return join(resolve(env.HF_HOME), 'hub');
  return join(env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'huggingface', 'hub');
}

/** A Hugging Face hub id (org/name), as adapters.import accepts instead of a path. */
export const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** The snapshot a cached repo folder (models--org--name) points at: refs/main, else the newest snapshot. */
function snapshotOf(repoDir: string): string | null {
  const snapshots = join(repoDir, 'snapshots');
  if (!existsSync(snapshots)) return null;
  const ref = join(repoDir, 'refs', 'main');
  if (existsSync(ref)) {
    const rev = readFileSync(ref, 'utf8').trim();
    if (rev && existsSync(join(snapshots, rev))) return join(snapshots, rev);
  }
  const revs = readdirSync(snapshots).filter((r) => statSync(join(snapshots, r)).isDirectory());
  revs.sort((a, b) => statSync(join(snapshots, b)).mtimeMs - statSync(join(snapshots, a)).mtimeMs);
  return revs.length ? join(snapshots, revs[0]) : null;
}

/** A hub id's snapshot folder in the local cache, or null. */
export function findInHubCache(hubId: string, env: NodeJS.ProcessEnv = process.env): string | null {
  if (!HUB_ID.test(hubId)) return null;
  const repo = join(hubCacheDir(env), `models--${hubId.replace('/', '--')}`);
  return existsSync(repo) ? snapshotOf(repo) : null;
}

/** What the user pointed at → the folder holding adapter_config.json; the message says what to pick instead. */
export function resolveAdapterFolder(input: string, field: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!existsSync(input)) {
    if (!isAbsolute(input) && HUB_ID.test(input)) {
      const snap = findInHubCache(input, env);
      if (snap) return snap;
      throw new StudioError({ message: `${input} is not in the local Hugging Face cache (${hubCacheDir(env)}); download it first (huggingface-cli download ${input}) or choose the adapter folder`, field });
    }
    throw new StudioError({ message: `adapter folder ${input} does not exist`, field, file: input });
  }
  if (!statSync(input).isDirectory()) throw new StudioError({ message: `${input} is a file; choose the adapter folder (adapter_config.json + adapter_model.safetensors)`, field, file: input });
  if (existsSync(join(input, ADAPTER_CONFIG_FILE))) return input;
  if (basename(input).startsWith('models--')) {
    const snap = snapshotOf(input);
    if (snap && existsSync(join(snap, ADAPTER_CONFIG_FILE))) return snap;
  }
  const hint = existsSync(join(input, 'adapter', ADAPTER_CONFIG_FILE)) ? ` (it holds adapter/: choose ${join(input, 'adapter')})` : '';
  throw new StudioError({ message: `${input} is not a PEFT adapter folder: ${ADAPTER_CONFIG_FILE} not found${hint}`, field, file: input });
}

/** The base model folder on this machine for a base_model_name_or_path, or null. */
function localModel(nameOrPath: string | null, env: NodeJS.ProcessEnv): string | null {
  if (!nameOrPath) return null;
  if (existsSync(join(nameOrPath, 'config.json'))) return resolve(nameOrPath);
  const snap = findInHubCache(nameOrPath, env);
  return snap && existsSync(join(snap, 'config.json')) ? snap : null;
}

/** Targets of the weights, from the safetensors header alone (no base model needed). */
function weightTargets(dir: string): Set<LoraTargetName> {
  const file = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(file)) throw new Error(`${dir} is not a PEFT adapter folder: ${ADAPTER_WEIGHTS_FILE} not found`);
  const f = SafetensorsFile.open(file);
  const pairs = new Map<string, Set<string>>();
  try {
    for (const key of f.names()) {
      const p = parseAdapterKey(key);
      if (!p) throw new Error(`${file}: tensor '${key}' is not a LoRA weight of a module the studio adapts (${LORA_TARGETS.join(', ')})`);
      const slot = `${p.layer}.${p.target}`;
      const have = pairs.get(slot) ?? new Set<string>();
      have.add(p.which);
      pairs.set(slot, have);
    }
  } finally {
    f.close();
  }
  for (const [slot, have] of pairs) if (have.size !== 2) throw new Error(`${file}: layer ${slot.replace('.', ' ')} has lora_${[...have][0]} but not lora_${have.has('A') ? 'B' : 'A'}`);
  if (pairs.size === 0) throw new Error(`${file}: no LoRA tensors found`);
  return new Set([...pairs.keys()].map((k) => k.split('.')[1] as LoraTargetName));
}

function fail(e: unknown, field: string, file?: string): never {
  if (e instanceof StudioError) throw e;
  throw new StudioError({ message: e instanceof Error ? e.message : String(e), field, ...(file ? { file } : {}) });
}

/** Checks an adapter folder (and its fit to a base model) and copies it into the store. */
export function importAdapter(store: AdapterStore, input: ImportAdapterInput, env: NodeJS.ProcessEnv = process.env): AdapterImportResult {
  const fields = input.fields ?? { path: 'path', modelPath: 'modelPath' };
  const dir = resolveAdapterFolder(input.path, fields.path, env);
  const warnings: string[] = [];
  let cfg: ReturnType<typeof readAdapterConfig>;
  let targets: Set<LoraTargetName>;
  try {
    cfg = readAdapterConfig(dir);
    targets = weightTargets(dir);
  } catch (e) {
    fail(e, fields.path, dir);
  }
  // target_modules: what the studio cannot apply, and names without weights (a list; a regex is judged by the weights)
  if (Array.isArray(cfg.targetModules)) {
    const unsupported = cfg.targetModules.filter((t) => !(LORA_TARGETS as readonly string[]).includes(t));
    if (unsupported.length > 0) {
      throw new StudioError({
        message: `${join(dir, ADAPTER_CONFIG_FILE)}: target_modules ${JSON.stringify(unsupported)} cannot be applied by the studio, which adapts ${LORA_TARGETS.join(', ')} only`,
        field: fields.path,
        file: join(dir, ADAPTER_CONFIG_FILE),
      });
    }
    const empty = cfg.targetModules.filter((t) => !targets.has(t as LoraTargetName));
    const extra = [...targets].filter((t) => !(cfg.targetModules as string[]).includes(t));
    if (empty.length > 0 || extra.length > 0) {
      const parts = [empty.length ? `lists ${empty.join(', ')} but ${ADAPTER_WEIGHTS_FILE} has no weights for ${empty.length === 1 ? 'it' : 'them'}` : '', extra.length ? `does not list ${extra.join(', ')}, which ${ADAPTER_WEIGHTS_FILE} has weights for` : ''].filter(Boolean);
      throw new StudioError({ message: `${join(dir, ADAPTER_CONFIG_FILE)}: target_modules ${parts.join(', and ')}`, field: fields.path, file: join(dir, ADAPTER_CONFIG_FILE) });
    }
  }

  const base = cfg.baseModelNameOrPath;
  let modelDir: string | null;
  if (input.modelPath) {
    modelDir = resolve(input.modelPath);
    // A GGUF file is a base model as much as a folder is (engine/io/model-source.ts reads either).
    if (!isGgufFile(modelDir) && !existsSync(join(modelDir, 'config.json'))) throw new StudioError({ message: `${input.modelPath} is not a model folder or GGUF file: config.json not found`, field: fields.modelPath, file: input.modelPath });
  } else {
    modelDir = localModel(base, env);
    if (!modelDir) warnings.push(`the base model ${base ? JSON.stringify(base) : '(adapter_config.json names none)'} is not on this machine, so the adapter could not be checked against it; choose the base model when you use it`);
  }
  if (modelDir) {
    let modelConfig;
    try {
      modelConfig = readModelConfig(modelDir);
    } catch (e) {
      fail(e, fields.modelPath, isGgufFile(modelDir) ? modelDir : join(modelDir, 'config.json'));
    }
    try {
      loadAdapter(dir, modelConfig);
    } catch (e) {
      const said = base && localModel(base, env) !== modelDir ? ` (the adapter says it was trained on ${base})` : '';
      throw new StudioError({
        message: `${dir} does not fit the base model ${modelDir}${said}: ${e instanceof Error ? e.message : String(e)}`,
        field: input.modelPath ? fields.modelPath : fields.path,
        file: join(dir, ADAPTER_WEIGHTS_FILE),
      });
    }
  }
  const name = input.name?.trim() || safeFileName(basename(dir) === 'adapter' ? basename(resolve(dir, '..')) : basename(dir), 'adapter');
  const adapter = store.register({
    id: newId('adapter'),
    name: `${name}${name.includes(` r${cfg.r}`) ? '' : ` r${cfg.r}`}`,
    runId: null,
    sourceDir: dir,
    ...(modelDir ? { baseModelNameOrPath: modelDir } : {}),
    importedFrom: input.importedFrom ?? dir,
  });
  return { adapter, warnings };
}
