/**
 * Which files a studio served to a browser may touch. The desktop app acts for the person at the keyboard and keeps
 * their own file access; the web host acts for anyone holding its token, so there every path a request names (a
 * model, a dataset, an adapter, a calibration file, a folder to save into) must lie inside an allowed root: the
 * studio's data folder, the Hugging Face cache, the Ollama model store, the sample the studio ships, and the folders
 * given with `lora-studio serve --allow DIR`. Links are followed before the check, so a link inside a root cannot
 * lead out of it.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/host-api.ts';
import { hubCacheDir, HUB_ID } from './adapter-import.ts';
import { StudioError } from './errors.ts';

/** Request fields that hold a file or folder path, wherever they appear in the parameters. */
export const PATH_FIELDS: ReadonlySet<string> = new Set(['path', 'modelPath', 'datasetPath', 'validationPath', 'adapterPath', 'compareAdapterPath', 'calibPath', 'destination']);

export interface AllowedRoot {
  path: string;
  /** What it is, for the refusal message. */
  what: string;
}

/** Ollama's model store: OLLAMA_MODELS, else ~/.ollama/models, and the Linux service's /usr/share/ollama one. */
export function ollamaModelDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.OLLAMA_MODELS) return [resolve(env.OLLAMA_MODELS)];
  return [join(homedir(), '.ollama', 'models'), '/usr/share/ollama/.ollama/models'];
}

/** The roots of a web-host studio on `homeRoot`, with the folders the user allowed (`serve --allow`). */
export function webAllowedRoots(homeRoot: string, allowed: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): AllowedRoot[] {
  return [
    { path: homeRoot, what: 'the studio data folder' },
    { path: hubCacheDir(env), what: 'the Hugging Face cache' },
    ...ollamaModelDirs(env).map((path) => ({ path, what: 'the Ollama model store' })),
    { path: SAMPLE_MODEL_DIR, what: 'the sample model' },
    { path: SAMPLE_DATASET_PATH, what: 'the sample dataset' },
    ...allowed.map((dir) => ({ path: resolve(dir), what: 'allowed with --allow' })),
  ];
}

/** The real path of p: links resolved for the part that exists, the rest (not made yet) appended as written. */
function realPathOf(p: string): string {
  const missing: string[] = [];
  let cur = resolve(p);
  while (!existsSync(cur)) {
    const parent = dirname(cur);
    if (parent === cur) break;
    missing.unshift(basename(cur));
    cur = parent;
  }
  let real = cur;
  try {
    real = realpathSync(cur);
  } catch {
    // unreadable: checked as written
  }
  return missing.length > 0 ? join(real, ...missing) : real;
}

function inside(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Every path-field value in the parameters, with its dotted field name. */
function pathFields(value: unknown, prefix: string, out: { field: string; value: string }[], depth = 0): void {
  if (depth > 8 || typeof value !== 'object' || value === null) return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => pathFields(v, `${prefix}${prefix ? '.' : ''}${i}`, out, depth + 1));
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    const field = `${prefix}${prefix ? '.' : ''}${key}`;
    if (typeof v === 'string' && PATH_FIELDS.has(key)) out.push({ field, value: v });
    else pathFields(v, field, out, depth + 1);
  }
}

/**
 * Refuses a request whose parameters name a path outside the roots, naming the path, the field, the roots and how
 * to allow it. `adapters.import` may name a Hugging Face hub id (org/name) instead of a path: that is looked up in
 * the hub cache, which is a root.
 */
export function checkAllowedPaths(method: string, params: unknown, roots: readonly AllowedRoot[]): void {
  const found: { field: string; value: string }[] = [];
  pathFields(params, '', found);
  if (found.length === 0) return;
  const realRoots = roots.map((r) => ({ ...r, real: realPathOf(r.path) }));
  for (const { field, value } of found) {
    if (value === '') continue; // "not chosen": the request's own checks say so
    if (method === 'adapters.import' && field === 'path' && HUB_ID.test(value) && !existsSync(value)) continue;
    // A relative path would be taken against the server's working folder, which a browser user neither sees nor
    // chose (and which differs between machines): refuse it before resolving, the same on every host.
    if (!isAbsolute(value)) {
      throw new StudioError({ message: `choose a full path (got the relative path ${JSON.stringify(value)}, which the web studio would take relative to its own folder, not yours)`, field });
    }
    const real = realPathOf(value);
    if (realRoots.some((r) => inside(real, r.real))) continue;
    const listed = realRoots.map((r) => `${r.path} (${r.what})`).join(', ');
    // A file is allowed by its folder; a folder (or one to be made) by itself.
    const suggestion = existsSync(value) && statSync(value).isFile() ? dirname(resolve(value)) : resolve(value);
    throw new StudioError({
      message: `${value} is outside the folders this web studio may use (${listed}); to allow it, start the studio with: lora-studio serve --allow ${suggestion}`,
      field,
    });
  }
}
