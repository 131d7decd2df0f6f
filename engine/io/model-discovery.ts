/**
 * Models the user already has on disk, in the places other tools keep them:
 * - the Hugging Face cache (huggingface_hub's layout): HF_HUB_CACHE, else HF_HOME/hub, else
 *   $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. Each model repo is `models--{org}--{name}/`
 *   with `refs/main` (the commit), `snapshots/{commit}/` (symlinks into `blobs/`). The snapshot refs/main names is
 *   listed (else the newest); a snapshot with config.json is a model folder, one holding only .gguf files lists
 *   each of them (the "-GGUF" repos).
 * - Ollama's store: OLLAMA_MODELS, else ~/.ollama/models. `manifests/{registry}/{namespace}/{model}/{tag}` is a
 *   Docker-style JSON manifest; its layer of mediaType application/vnd.ollama.image.model is the GGUF, stored as
 *   `blobs/sha256-{hex}` (the digest with ':' written '-').
 * - LM Studio: ~/.lmstudio/models and ~/.cache/lm-studio/models, `{publisher}/{repo}/*.gguf`.
 * Every candidate is inspected the way the model field inspects it (header and safetensors headers only, no
 * weights), so what the list says can be trained can be, and anything else carries the loader's own message.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type { LocalModel, LocalModelsInfo, ModelStoreKind } from '../../common/protocol.ts';
import { inspectModel, isGgufFile } from './model-source.ts';

export interface DiscoveryOptions {
  /** Environment to read HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME and OLLAMA_MODELS from (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Home folder (default os.homedir()). */
  home?: string;
}

export const OLLAMA_MODEL_LAYER = 'application/vnd.ollama.image.model';

/** The folders each store is looked for in, in order. */
export function modelStoreDirs(opts: DiscoveryOptions = {}): { store: ModelStoreKind; dir: string }[] {
  const env = opts.env ?? process.env;
  const home = opts.home ?? homedir();
  const nonEmpty = (v: string | undefined): string | undefined => (v && v.trim() ? v : undefined);
  const hfHome = nonEmpty(env.HF_HOME) ?? join(nonEmpty(env.XDG_CACHE_HOME) ?? join(home, '.cache'), 'huggingface');
  const hub = nonEmpty(env.HF_HUB_CACHE) ?? nonEmpty(env.HUGGINGFACE_HUB_CACHE) ?? join(hfHome, 'hub');
  return [
    { store: 'hf-cache', dir: resolve(hub) },
    { store: 'ollama', dir: resolve(nonEmpty(env.OLLAMA_MODELS) ?? join(home, '.ollama', 'models')) },
    { store: 'lmstudio', dir: resolve(home, '.lmstudio', 'models') },
    { store: 'lmstudio', dir: resolve(home, '.cache', 'lm-studio', 'models') },
  ];
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function listDir(p: string): string[] {
  try {
    return readdirSync(p).sort();
  } catch {
    return [];
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Size of a folder's files, symlinks followed (the hub's snapshot files point into blobs/). */
function folderBytes(dir: string): number {
  let total = 0;
  for (const name of listDir(dir)) {
    const p = join(dir, name);
    try {
      const st = statSync(p);
      total += st.isDirectory() ? folderBytes(p) : st.size;
    } catch {
      // A dangling symlink (an interrupted download) has no size; inspect reports the missing file.
    }
  }
  return total;
}

/** One candidate, inspected: the summary's figures when the studio can read it, else the loader's message. */
function describe(store: ModelStoreKind, name: string, path: string, extra: Partial<LocalModel> = {}): LocalModel {
  const format: 'hf' | 'gguf' = isGgufFile(path) ? 'gguf' : 'hf';
  let sizeBytes: number;
  try {
    sizeBytes = format === 'gguf' ? statSync(path).size : folderBytes(path);
  } catch {
    sizeBytes = 0;
  }
  const base: LocalModel = { store, name, path, format, sizeBytes, architecture: null, quantization: null, parameters: null, ...extra };
  try {
    const s = inspectModel(path);
    return { ...base, architecture: s.architecture, quantization: s.dtype, parameters: s.parameters };
  } catch (e) {
    return { ...base, problem: message(e) };
  }
}

function hfCacheModels(hub: string): LocalModel[] {
  const out: LocalModel[] = [];
  for (const entry of listDir(hub)) {
    if (!entry.startsWith('models--')) continue; // datasets--…, spaces--…, .locks
    const repoDir = join(hub, entry);
    const repoId = entry.slice('models--'.length).split('--').join('/');
    const snapshots = join(repoDir, 'snapshots');
    let rev: string | undefined;
    try {
      rev = readFileSync(join(repoDir, 'refs', 'main'), 'utf8').trim() || undefined;
    } catch {
      rev = undefined;
    }
    if (!rev || !isDir(join(snapshots, rev))) {
      // No refs/main (a download by commit): the snapshot written last.
      const revs = listDir(snapshots).filter((r) => isDir(join(snapshots, r)));
      rev = revs.sort((a, b) => statSync(join(snapshots, b)).mtimeMs - statSync(join(snapshots, a)).mtimeMs)[0];
    }
    if (!rev) {
      out.push({ store: 'hf-cache', name: repoId, path: repoDir, format: 'hf', sizeBytes: 0, architecture: null, quantization: null, parameters: null, problem: `${repoDir}: no snapshot (the download did not finish)` });
      continue;
    }
    const snap = join(snapshots, rev);
    const ggufs = listDir(snap).filter((f) => f.toLowerCase().endsWith('.gguf'));
    if (!existsSync(join(snap, 'config.json')) && ggufs.length > 0) {
      for (const f of ggufs) out.push(describe('hf-cache', `${repoId}/${f}`, join(snap, f), { revision: rev }));
    } else {
      out.push(describe('hf-cache', repoId, snap, { revision: rev }));
    }
  }
  return out;
}

interface OllamaLayer {
  mediaType?: unknown;
  digest?: unknown;
}

/** Every manifest file under manifests/ (registry/namespace/model/tag, four levels). */
function manifestFiles(dir: string, depth = 0): string[] {
  const out: string[] = [];
  for (const name of listDir(dir)) {
    const p = join(dir, name);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory() && depth < 3) out.push(...manifestFiles(p, depth + 1));
    else if (st.isFile() && depth === 3) out.push(p);
  }
  return out;
}

/** "llama3.2:latest" for the default registry and namespace, else "namespace/model:tag" or "host/namespace/model:tag". */
function ollamaName(rel: string[]): string {
  const [registry, namespace, model, tag] = rel;
  if (registry === 'registry.ollama.ai') return namespace === 'library' ? `${model}:${tag}` : `${namespace}/${model}:${tag}`;
  return `${registry}/${namespace}/${model}:${tag}`;
}

function ollamaModels(root: string): LocalModel[] {
  const out: LocalModel[] = [];
  const manifests = join(root, 'manifests');
  for (const file of manifestFiles(manifests)) {
    const name = ollamaName(relative(manifests, file).split(/[\\/]/));
    const fail = (problem: string): void => {
      out.push({ store: 'ollama', name, path: file, format: 'gguf', sizeBytes: 0, architecture: null, quantization: null, parameters: null, problem });
    };
    let manifest: unknown;
    try {
      manifest = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      fail(`${file}: not a readable Ollama manifest (${message(e)})`);
      continue;
    }
    const layers = (manifest as { layers?: unknown }).layers;
    if (!Array.isArray(layers)) {
      fail(`${file}: the manifest has no "layers" list`);
      continue;
    }
    const model = (layers as OllamaLayer[]).find((l) => l && l.mediaType === OLLAMA_MODEL_LAYER);
    if (!model) {
      fail(`${file}: no layer of mediaType ${OLLAMA_MODEL_LAYER} (not a model: an embedding of another model, or a remote one)`);
      continue;
    }
    const digest = typeof model.digest === 'string' ? model.digest : '';
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) {
      fail(`${file}: the model layer's digest ${JSON.stringify(model.digest)} is not sha256:<64 hex digits>`);
      continue;
    }
    const blob = join(root, 'blobs', digest.replace(':', '-'));
    if (!existsSync(blob)) {
      fail(`${file}: the model layer's blob ${blob} is missing (run 'ollama pull ${name}' again)`);
      continue;
    }
    const adapter = (layers as OllamaLayer[]).some((l) => l && l.mediaType === 'application/vnd.ollama.image.adapter');
    const found = describe('ollama', name, blob);
    // A model Ollama runs with an adapter on top: the studio trains the base blob, without that adapter.
    out.push(adapter && !found.problem ? { ...found, name: `${name} (base, without its adapter)` } : found);
  }
  return out;
}

function lmStudioModels(root: string): LocalModel[] {
  const out: LocalModel[] = [];
  for (const publisher of listDir(root)) {
    for (const repo of listDir(join(root, publisher))) {
      const dir = join(root, publisher, repo);
      if (!isDir(dir)) continue;
      for (const f of listDir(dir)) {
        if (f.toLowerCase().endsWith('.gguf')) out.push(describe('lmstudio', `${publisher}/${repo}/${f}`, join(dir, f)));
      }
    }
  }
  return out;
}

/** Every model in every store that exists; a store's folder that cannot be read lists nothing. */
export function discoverModels(opts: DiscoveryOptions = {}): LocalModelsInfo {
  const models: LocalModel[] = [];
  const searched: LocalModelsInfo['searched'] = [];
  const seen = new Set<string>();
  for (const { store, dir } of modelStoreDirs(opts)) {
    const exists = isDir(dir);
    searched.push({ store, dir, exists });
    if (!exists) continue;
    const found = store === 'hf-cache' ? hfCacheModels(dir) : store === 'ollama' ? ollamaModels(dir) : lmStudioModels(dir);
    for (const m of found) {
      // ~/.cache/lm-studio may be a link to ~/.lmstudio: list each file once.
      let key: string;
      try {
        key = realpathSync(m.path);
      } catch {
        key = m.path;
      }
      if (store === 'lmstudio' && seen.has(key)) continue;
      seen.add(key);
      models.push(m);
    }
  }
  return { models, searched };
}

function mtimeOf(p: string): number {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
}

/**
 * What discovery's answer depends on, by folder mtimes only (no file is opened): each store folder, and the folders
 * whose entries change when a tool adds, removes or finishes a model (a repo's refs/ and snapshots/, Ollama's
 * manifests tree and blobs/, LM Studio's publisher and repo folders). Equal fingerprints → the last answer stands.
 */
export function discoveryFingerprint(opts: DiscoveryOptions = {}): string {
  const parts: string[] = [];
  const add = (p: string): void => {
    parts.push(`${p}\t${mtimeOf(p)}`);
  };
  for (const { store, dir } of modelStoreDirs(opts)) {
    add(dir);
    if (!isDir(dir)) continue;
    if (store === 'hf-cache') {
      for (const entry of listDir(dir)) {
        if (!entry.startsWith('models--')) continue;
        const repo = join(dir, entry);
        add(join(repo, 'refs'));
        add(join(repo, 'refs', 'main'));
        add(join(repo, 'snapshots'));
        for (const rev of listDir(join(repo, 'snapshots'))) add(join(repo, 'snapshots', rev));
      }
    } else if (store === 'ollama') {
      add(join(dir, 'blobs'));
      const walk = (p: string, depth: number): void => {
        add(p);
        if (depth < 3) for (const name of listDir(p)) if (isDir(join(p, name))) walk(join(p, name), depth + 1);
        if (depth === 3) for (const name of listDir(p)) add(join(p, name));
      };
      walk(join(dir, 'manifests'), 0);
    } else {
      for (const publisher of listDir(dir)) {
        add(join(dir, publisher));
        for (const repo of listDir(join(dir, publisher))) add(join(dir, publisher, repo));
      }
    }
  }
  return parts.join('\n');
}

/**
 * The Ollama names ("smollm2:135m", "hf.co/org/repo:tag") whose model layer is the blob at `blobPath`, when that
 * file is a blob of an Ollama store (…/blobs/sha256-{hex}); [] for any other file.
 */
export function ollamaNamesForBlob(blobPath: string): string[] {
  const m = /^sha256-([0-9a-f]{64})$/.exec(basename(blobPath));
  if (!m) return [];
  const root = dirname(dirname(resolve(blobPath)));
  if (basename(dirname(resolve(blobPath))) !== 'blobs') return [];
  const digest = `sha256:${m[1]}`;
  const manifests = join(root, 'manifests');
  const names: string[] = [];
  for (const file of manifestFiles(manifests)) {
    try {
      const layers = (JSON.parse(readFileSync(file, 'utf8')) as { layers?: unknown }).layers;
      if (Array.isArray(layers) && (layers as OllamaLayer[]).some((l) => l && l.mediaType === OLLAMA_MODEL_LAYER && l.digest === digest)) {
        names.push(ollamaName(relative(manifests, file).split(/[\\/]/)));
      }
    } catch {
      // An unreadable manifest names nothing (discovery reports it).
    }
  }
  return names.sort();
}
