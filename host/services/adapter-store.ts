/**
 * Finished adapters, one PEFT folder each: adapters/<id>/ holds exactly what PEFT loads (adapter_config.json +
 * adapter_model.safetensors), so that folder is what a drag-out or "Save as…" hands over. What only the studio
 * needs (name, run, date) sits next to it in adapters/<id>.json.
 */
import { closeSync, cpSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';
import { readAdapterConfig } from '../../engine/host-api.ts';
import type { AdapterSummary } from '../../common/protocol.ts';
import { AdapterNameSchema } from '../../common/run-info.ts';
import type { StudioDb } from './db.ts';
import { StudioError } from './errors.ts';
import type { StudioHome } from './home.ts';
import { isSafeId } from './ids.ts';
import { writeFileAtomic } from './run-store.ts';

export const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors'] as const;

interface AdapterMeta {
  id: string;
  name: string;
  runId: string | null;
  createdAt: string;
  /** Where an imported adapter came from (a folder, a hub cache snapshot, an external run's output). */
  importedFrom?: string;
}

export interface RegisterAdapter {
  id: string;
  name: string;
  runId: string | null;
  /** Folder holding adapter_config.json + adapter_model.safetensors (e.g. runs/<id>/adapter). */
  sourceDir: string;
  /** Imported adapters: the base model folder on this machine, written into the copy's adapter_config.json. */
  baseModelNameOrPath?: string;
  importedFrom?: string;
}

function readJsonObject(file: string): Record<string, unknown> {
  const value: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${file} does not hold a JSON object`);
  return value as Record<string, unknown>;
}

/** Checks the PEFT files are there and readable, with a message naming the file that is not. */
export function checkAdapterFolder(dir: string): void {
  for (const f of ADAPTER_FILES) {
    if (!existsSync(join(dir, f))) throw new Error(`${dir} is not a PEFT adapter folder: ${f} not found`);
  }
  // The engine's own reading of the config: the same field-by-field refusals as when it loads the adapter.
  readAdapterConfig(dir);
  const weights = join(dir, 'adapter_model.safetensors');
  const size = statSync(weights).size;
  const head = Buffer.alloc(8);
  const fd = openSync(weights, 'r');
  try {
    readSync(fd, head, 0, 8, 0);
  } finally {
    closeSync(fd);
  }
  if (size < 8 || Number(head.readBigUInt64LE(0)) + 8 > size) throw new Error(`${weights} is not a safetensors file (header length out of range)`);
}

/** Bytes of every file under dir (0 when it is not there); symlinks count as themselves, never followed. */
export function folderSize(dir: string): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    let st;
    try {
      st = lstatSync(join(dir, name));
    } catch {
      continue; // removed while we looked
    }
    total += st.isDirectory() ? folderSize(join(dir, name)) : st.size;
  }
  return total;
}

/** A file-system friendly version of a display name ("Llama r8 / my data" → "Llama r8 - my data"). */
export function safeFileName(name: string, fallback: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what a file name must not hold
  const cleaned = name.replace(/[\\/:*?"<>|\u0000-\u001f]+/g, '-').replace(/^[.\s]+|[.\s]+$/g, '').slice(0, 120);
  return cleaned || fallback;
}

export class AdapterStore {
  private readonly dir: string;

  constructor(home: StudioHome) {
    this.dir = home.adapters;
  }

  /** Folder of an adapter; throws a StudioError naming the id when there is none. */
  pathOf(id: string): string {
    if (!isSafeId(id) || !existsSync(join(this.dir, id, 'adapter_config.json'))) {
      throw new StudioError({ message: `no adapter with id ${JSON.stringify(id)} (it may have been deleted)`, field: 'id' });
    }
    return join(this.dir, id);
  }

  get(id: string): AdapterSummary {
    const summary = this.summarize(id);
    if (!summary) throw new StudioError({ message: `no adapter with id ${JSON.stringify(id)} (it may have been deleted)`, field: 'id' });
    return summary;
  }

  /** Newest first; folders that are not readable adapters are left out rather than failing the list. */
  list(): AdapterSummary[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: AdapterSummary[] = [];
    for (const name of names) {
      if (!isSafeId(name)) continue;
      const s = this.summarize(name);
      if (s) out.push(s);
    }
    return out.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : b.id.localeCompare(a.id)));
  }

  /** Copies a finished adapter into the store; the copy is checked before it becomes visible. */
  register(input: RegisterAdapter): AdapterSummary {
    if (!isSafeId(input.id)) throw new Error(`invalid adapter id ${JSON.stringify(input.id)}`);
    checkAdapterFolder(input.sourceDir);
    const target = join(this.dir, input.id);
    const staging = `${target}.partial`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    // dereference: a Hugging Face cache snapshot holds symlinks into its blobs/ folder
    for (const f of ADAPTER_FILES) cpSync(join(input.sourceDir, f), join(staging, f), { dereference: true });
    for (const extra of ['README.md', 'tokenizer_config.json']) {
      if (existsSync(join(input.sourceDir, extra))) cpSync(join(input.sourceDir, extra), join(staging, extra), { dereference: true });
    }
    if (input.baseModelNameOrPath !== undefined) {
      const file = join(staging, 'adapter_config.json');
      writeFileAtomic(file, `${JSON.stringify({ ...readJsonObject(file), base_model_name_or_path: input.baseModelNameOrPath }, null, 2)}\n`);
    }
    checkAdapterFolder(staging);
    rmSync(target, { recursive: true, force: true });
    cpSync(staging, target, { recursive: true });
    rmSync(staging, { recursive: true, force: true });
    const meta: AdapterMeta = { id: input.id, name: input.name, runId: input.runId, createdAt: new Date().toISOString(), ...(input.importedFrom ? { importedFrom: input.importedFrom } : {}) };
    writeFileAtomic(join(this.dir, `${input.id}.json`), `${JSON.stringify(meta, null, 2)}\n`);
    return this.get(input.id);
  }

  /** "Save as…": copies the adapter folder into `destination`, next to whatever is there, never over it. */
  saveAs(id: string, destination: string): { path: string } {
    const source = this.pathOf(id);
    if (!isAbsolute(destination)) throw new StudioError({ message: `choose a folder to save into (got the relative path ${JSON.stringify(destination)})`, field: 'destination' });
    if (!existsSync(destination) || !statSync(destination).isDirectory()) {
      throw new StudioError({ message: `${destination} is not an existing folder`, field: 'destination' });
    }
    const base = safeFileName(this.get(id).name, id);
    let target = join(destination, base);
    for (let n = 2; existsSync(target); n++) target = join(destination, `${base} (${n})`);
    try {
      cpSync(source, target, { recursive: true });
    } catch (e) {
      throw new StudioError({ message: `cannot write ${target}: ${e instanceof Error ? e.message : String(e)}`, field: 'destination' });
    }
    return { path: target };
  }

  /** Removes an adapter's folder and its studio file; returns the bytes freed. */
  remove(id: string): number {
    const dir = this.pathOf(id);
    const bytes = folderSize(dir) + (existsSync(join(this.dir, `${id}.json`)) ? statSync(join(this.dir, `${id}.json`)).size : 0);
    try {
      rmSync(dir, { recursive: true, force: true });
      rmSync(join(this.dir, `${id}.json`), { force: true });
    } catch (e) {
      throw new StudioError({ message: `cannot remove the adapter folder ${dir}: ${e instanceof Error ? e.message : String(e)}`, field: 'id' });
    }
    return bytes;
  }

  /** A new display name, kept in adapters/<id>.json (the folder and the id stay); the name is trimmed by the caller's schema. */
  rename(id: string, name: string): AdapterSummary {
    const before = this.get(id);
    const file = join(this.dir, `${id}.json`);
    let meta: Record<string, unknown> = {};
    try {
      meta = readJsonObject(file);
    } catch {
      // Copied in by hand (no studio file yet) or a broken one: it is written whole from the summary.
    }
    const next: AdapterMeta = { id, name, runId: before.runId, createdAt: before.createdAt, ...(before.importedFrom ? { importedFrom: before.importedFrom } : {}) };
    try {
      writeFileAtomic(file, `${JSON.stringify({ ...meta, ...next }, null, 2)}\n`);
    } catch (e) {
      throw new StudioError({ message: `cannot write ${file}: ${e instanceof Error ? e.message : String(e)}`, field: 'name' });
    }
    return this.get(id);
  }

  /** The adapter outlives its run (the run was deleted): it no longer points at it. */
  forgetRun(id: string): void {
    const file = join(this.dir, `${id}.json`);
    if (!existsSync(file)) return;
    try {
      const meta = readJsonObject(file);
      writeFileAtomic(file, `${JSON.stringify({ ...meta, runId: null }, null, 2)}\n`);
    } catch {
      // A broken studio file only loses the run link, which is what forgetting does anyway.
    }
  }

  private summarize(id: string): AdapterSummary | null {
    const path = join(this.dir, id);
    let config: ReturnType<typeof readAdapterConfig>;
    try {
      config = readAdapterConfig(path);
      if (!existsSync(join(path, 'adapter_model.safetensors'))) return null;
    } catch {
      return null; // not an adapter the engine can use (its config says why when it is imported or tried)
    }
    let meta: Partial<AdapterMeta> = {};
    try {
      meta = readJsonObject(join(this.dir, `${id}.json`)) as Partial<AdapterMeta>;
    } catch {
      // Copied in by hand: the folder alone still describes the adapter.
    }
    const baseModel = config.baseModelNameOrPath ?? '';
    const targets = Array.isArray(config.targetModules) ? config.targetModules : [];
    return {
      id,
      name: typeof meta.name === 'string' && meta.name ? meta.name : `${basename(baseModel) || 'adapter'} r${config.r}`,
      runId: typeof meta.runId === 'string' ? meta.runId : null,
      createdAt: typeof meta.createdAt === 'string' ? meta.createdAt : statSync(path).mtime.toISOString(),
      baseModel,
      r: config.r,
      alpha: config.alpha,
      targets,
      path,
      sizeBytes: folderSize(path),
      ...(typeof meta.importedFrom === 'string' ? { importedFrom: meta.importedFrom } : {}),
    };
  }
}

/**
 * Renames an adapter everywhere the studio keeps its name: adapters/<id>.json (what the list reads) and its database
 * row, when it has one. `name` is checked here too (trimmed, not empty, not too long) so every caller refuses alike.
 */
export function renameAdapter(db: Pick<StudioDb, 'listAdapters' | 'upsertAdapter'>, adapters: AdapterStore, id: string, name: string): AdapterSummary {
  const parsed = AdapterNameSchema.safeParse(name);
  if (!parsed.success) throw new StudioError({ message: parsed.error.issues[0]?.message ?? 'the adapter name is not valid', field: 'name' });
  const renamed = adapters.rename(id, parsed.data);
  const row = db.listAdapters().find((a) => a.id === id);
  if (row) db.upsertAdapter({ ...row, name: renamed.name, summary: renamed });
  return renamed;
}
