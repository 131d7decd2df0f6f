/**
 * Runs and adapters as a person manages them: a run's name, notes and tags (any state), deleting a run that is not
 * going (its folder and its database rows, its adapter only when asked) and deleting an adapter. The services'
 * run manager and `lora-studio runs rename|note|tag|delete` with no studio running both come here, so the rules
 * (which states may go, what is freed) are written once.
 */
import { rmSync } from 'node:fs';
import { deleteRefusal, RunInfoPatchSchema, type AdapterDeleteResult, type RunDeleteResult } from '../../common/run-info.ts';
import { formatBytes } from '../../engine/host-api.ts';
import { folderSize, type AdapterStore } from './adapter-store.ts';
import type { RunRecord, StudioDb } from './db.ts';
import { StudioError } from './errors.ts';
import type { RunStore } from './run-store.ts';

/** Checks and applies a name/notes/tags change; the record after it. Refusals name the field by its label. */
export function updateRunInfo(store: RunStore, id: string, input: unknown): RunRecord {
  const parsed = RunInfoPatchSchema.safeParse(input ?? {});
  if (!parsed.success) throw StudioError.fields(parsed.error.issues.map((i) => ({ field: i.path.join('.'), message: i.message })));
  const patch = parsed.data;
  if (patch.name === undefined && patch.notes === undefined && patch.tags === undefined) {
    throw new StudioError({ message: 'nothing to change: give a new name, notes or tags' });
  }
  requireRun(store, id);
  const run = store.db.updateRun(id, patch);
  store.writeRunFile(run);
  return run;
}

/** A run of the store, or a refusal naming the id. */
export function requireRun(store: RunStore, id: string): RunRecord {
  const run = store.get(id);
  if (!run) throw new StudioError({ message: `no run with id ${JSON.stringify(id)} (it may have been deleted)`, field: 'id' });
  return run;
}

/** The run's adapter in the Adapters list, when it is still there. */
function adapterOf(adapters: AdapterStore, run: RunRecord): { id: string; bytes: number } | null {
  if (!run.adapterId) return null;
  try {
    const a = adapters.get(run.adapterId);
    return { id: a.id, bytes: a.sizeBytes };
  } catch {
    return null; // deleted on its own before
  }
}

/**
 * Deletes a run that is not going: its folder first (so a failure leaves it listed and deletable again), then its
 * rows (history, metrics, events go with it). Its adapter stays in the Adapters list, no longer linked, unless
 * `deleteAdapter`. With `dryRun` nothing changes and the answer says what would be freed.
 */
export function deleteRun(store: RunStore, adapters: AdapterStore, id: string, opts: { deleteAdapter?: boolean; dryRun?: boolean } = {}): RunDeleteResult {
  const run = requireRun(store, id);
  const refusal = deleteRefusal(run);
  if (refusal) throw new StudioError({ message: refusal, field: 'id' });
  const dir = store.runDir(id);
  const runBytes = folderSize(dir);
  const adapter = adapterOf(adapters, run);
  const adapterDeleted = !!adapter && opts.deleteAdapter === true;
  const result: RunDeleteResult = {
    id,
    name: run.name,
    deleted: false,
    runBytes,
    adapterId: adapter?.id ?? null,
    adapterBytes: adapter?.bytes ?? 0,
    adapterDeleted: false,
    freedBytes: runBytes + (adapterDeleted ? (adapter?.bytes ?? 0) : 0),
  };
  if (opts.dryRun) return { ...result, adapterDeleted };
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (e) {
    throw new StudioError({ message: `cannot remove the run folder ${dir}: ${e instanceof Error ? e.message : String(e)}; nothing else was removed`, field: 'id' });
  }
  store.db.deleteRun(id);
  if (adapter) {
    if (adapterDeleted) {
      adapters.remove(adapter.id);
      store.db.deleteAdapter(adapter.id);
    } else {
      adapters.forgetRun(adapter.id);
    }
  }
  return { ...result, deleted: true, adapterDeleted };
}

/** Deletes an adapter (its folder, studio file and row); runs that made it keep their record. */
export function deleteAdapter(db: StudioDb, adapters: AdapterStore, id: string, opts: { dryRun?: boolean } = {}): AdapterDeleteResult {
  const summary = adapters.get(id);
  if (opts.dryRun) return { id, name: summary.name, deleted: false, freedBytes: summary.sizeBytes };
  const freedBytes = adapters.remove(id);
  db.deleteAdapter(id);
  return { id, name: summary.name, deleted: true, freedBytes };
}

/** `base`, or `base (2)`, `base (3)` … when a run already has that name: generated names tell runs apart. */
export function uniqueRunName(db: StudioDb, base: string): string {
  const taken = new Set(db.listRuns().map((r) => r.name));
  if (!taken.has(base)) return base;
  let n = 2;
  while (taken.has(`${base} (${n})`)) n++;
  return `${base} (${n})`;
}

/** What the CLI prints for a deleted run (run by a studio or by the CLI itself). */
export function deletedMessage(r: RunDeleteResult): string {
  const adapter = r.adapterId ? (r.adapterDeleted ? ', with its adapter' : `; its adapter ${r.adapterId} stays in the Adapters list`) : '';
  return `run ${r.id} ("${r.name}") deleted${adapter}: ${formatBytes(r.freedBytes)} freed`;
}

