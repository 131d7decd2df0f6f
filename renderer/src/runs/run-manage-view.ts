/**
 * Managing a run on the Runs page, as pure functions: the name/notes/tags editor checked as it is typed (the same
 * schema the services apply, messages by the fields' labels), the tag filter's chips, what the delete question says
 * it frees, and the metrics CSV's file name.
 */
import { describeFieldError } from '../../../common/field-labels.ts';
import type { RunSummary } from '../../../common/protocol.ts';
import { parseTags, RunInfoPatchSchema, type RunDeleteResult, type RunInfoPatch } from '../../../common/run-info.ts';
import { formatBytes } from '../components/format.ts';

/** The editor as typed: tags as one comma-separated line. */
export interface RunInfoDraft {
  name: string;
  notes: string;
  tags: string;
}

export function draftOfRun(run: Pick<RunSummary, 'name' | 'notes' | 'tags'>): RunInfoDraft {
  return { name: run.name, notes: run.notes ?? '', tags: (run.tags ?? []).join(', ') };
}

export type RunInfoCheck =
  | { ok: true; patch: RunInfoPatch; changed: boolean }
  /** errors by field (name, notes, tags), each a sentence naming the field by its label. */
  | { ok: false; errors: Partial<Record<keyof RunInfoDraft, string>> };

/** The draft checked against common/run-info.ts; the patch holds only what differs from the run. */
export function checkRunInfo(draft: RunInfoDraft, run: Pick<RunSummary, 'name' | 'notes' | 'tags'>): RunInfoCheck {
  const parsed = RunInfoPatchSchema.safeParse({ name: draft.name, notes: draft.notes, tags: parseTags(draft.tags) });
  if (!parsed.success) {
    const errors: Partial<Record<keyof RunInfoDraft, string>> = {};
    for (const issue of parsed.error.issues) {
      const key = String(issue.path[0] ?? 'name') as keyof RunInfoDraft;
      errors[key] ??= describeFieldError({ field: key === 'tags' ? 'tags' : key, message: issue.message });
    }
    return { ok: false, errors };
  }
  const patch: RunInfoPatch = {};
  const v = parsed.data;
  if (v.name !== undefined && v.name !== run.name) patch.name = v.name;
  if (v.notes !== undefined && v.notes !== (run.notes ?? '')) patch.notes = v.notes;
  if (v.tags !== undefined && v.tags.join('\n') !== (run.tags ?? []).join('\n')) patch.tags = v.tags;
  return { ok: true, patch, changed: Object.keys(patch).length > 0 };
}

/** Every tag on the runs with how many runs carry it, most used first (then by name): the filter's chips. */
export function tagCounts(runs: readonly Pick<RunSummary, 'tags'>[]): { tag: string; count: number }[] {
  const counts = new Map<string, { tag: string; count: number }>();
  for (const r of runs) {
    for (const t of r.tags ?? []) {
      const key = t.toLowerCase();
      const c = counts.get(key);
      if (c) c.count++;
      else counts.set(key, { tag: t, count: 1 });
    }
  }
  return [...counts.values()].sort((a, b) => b.count - a.count || a.tag.localeCompare(b.tag));
}

/** Adds or removes a tag of the filter (compared without case). */
export function toggleTag(selected: readonly string[], tag: string): string[] {
  const has = selected.some((t) => t.toLowerCase() === tag.toLowerCase());
  return has ? selected.filter((t) => t.toLowerCase() !== tag.toLowerCase()) : [...selected, tag];
}

/** The delete question's sentence, from the services' dry run: what goes, what it frees, what stays. */
export function deleteQuestion(m: RunDeleteResult, deleteAdapter: boolean): string {
  const freed = m.runBytes + (deleteAdapter && m.adapterId ? m.adapterBytes : 0);
  const base = `Delete "${m.name}"? Its checkpoints, metrics, history and events are removed; this frees ${formatBytes(freed)}.`;
  if (!m.adapterId) return `${base} It has no adapter.`;
  return deleteAdapter ? `${base} Its adapter (${formatBytes(m.adapterBytes)}) is deleted too.` : `${base} Its adapter (${formatBytes(m.adapterBytes)}) stays in the Adapters list.`;
}

/** "baseline-lr-3e-3.metrics.csv": a file name safe on every OS. */
export function metricsCsvFileName(run: Pick<RunSummary, 'id' | 'name'>): string {
  const base = run.name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80) || run.id;
  return `${base}.metrics.csv`;
}
