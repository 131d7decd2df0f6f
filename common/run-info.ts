/**
 * What a person writes about a run (its name, notes and tags) and the requests that manage runs and adapters
 * ('runs.update', 'runs.delete', 'adapters.delete'): one zod schema per request, used by the services, the CLI and
 * the renderer's as-you-type checks, and the one search rule the Runs list and `lora-studio runs list` share.
 *
 * Runs anywhere: imports nothing but zod.
 */
import { z } from 'zod';
import type { RunState } from './protocol.ts';

export const RUN_NAME_MAX = 200;
export const RUN_NOTES_MAX = 10_000;
export const RUN_TAG_MAX = 40;
export const RUN_TAGS_MAX = 20;

const id = z.string({ message: 'id is required' }).min(1, 'id is required');

export const RunNameSchema = z
  .string({ message: 'the run name must be text' })
  .trim()
  .min(1, 'the run name cannot be empty')
  .max(RUN_NAME_MAX, `the run name must be at most ${RUN_NAME_MAX} characters`);

export const RunNotesSchema = z.string({ message: 'notes must be text' }).max(RUN_NOTES_MAX, `notes must be at most ${RUN_NOTES_MAX.toLocaleString('en-US')} characters`);

/** A tag is a short label without commas (commas separate tags where they are typed as one line). */
export const RunTagSchema = z
  .string({ message: 'a tag must be text' })
  .trim()
  .min(1, 'a tag cannot be empty')
  .max(RUN_TAG_MAX, `a tag must be at most ${RUN_TAG_MAX} characters`)
  .refine((t) => !t.includes(','), 'a tag cannot hold a comma');

/** Tags, kept in the order given, each once (compared without case). */
export const RunTagsSchema = z
  .array(RunTagSchema, { message: 'tags must be a list' })
  .max(RUN_TAGS_MAX, `at most ${RUN_TAGS_MAX} tags`)
  .transform((tags) => tags.filter((t, i) => tags.findIndex((u) => u.toLowerCase() === t.toLowerCase()) === i));

/** The parts of a run a person may change at any time, whatever its state. */
export const RunInfoPatchSchema = z.object({
  name: RunNameSchema.optional(),
  notes: RunNotesSchema.optional(),
  tags: RunTagsSchema.optional(),
});
export type RunInfoPatch = z.infer<typeof RunInfoPatchSchema>;

/** 'runs.update': rename a run, or change its notes or tags. */
export const RunsUpdateParamsSchema = RunInfoPatchSchema.extend({ id });
export type RunsUpdateParams = z.input<typeof RunsUpdateParamsSchema>;

/**
 * 'runs.delete': removes a run's folder (checkpoints, adapter output) and its database rows (history, metrics,
 * events). Its adapter in the Adapters list stays unless `deleteAdapter`. `dryRun`: nothing is removed; the answer
 * says what would be freed (for the confirm dialog).
 */
export const RunsDeleteParamsSchema = z.object({ id, deleteAdapter: z.boolean().optional(), dryRun: z.boolean().optional() });
export type RunsDeleteParams = z.input<typeof RunsDeleteParamsSchema>;

/** 'adapters.delete': removes an adapter's folder and its database row; `dryRun` only measures it. */
export const AdaptersDeleteParamsSchema = z.object({ id, dryRun: z.boolean().optional() });
export type AdaptersDeleteParams = z.input<typeof AdaptersDeleteParamsSchema>;

/** An adapter's display name (the Adapters list, Save as… folder names): the folder and its id stay as they are. */
export const AdapterNameSchema = z
  .string({ message: 'the adapter name must be text' })
  .trim()
  .min(1, 'the adapter name cannot be empty')
  .max(RUN_NAME_MAX, `the adapter name must be at most ${RUN_NAME_MAX} characters`);

/** 'adapters.rename': gives an adapter a new display name; the list comes as 'adapters.changed'. */
export const AdaptersRenameParamsSchema = z.object({ id, name: AdapterNameSchema });
export type AdaptersRenameParams = z.input<typeof AdaptersRenameParamsSchema>;

const bytes = z.number().int().min(0);

/** What deleting a run frees (or would free, with dryRun). */
export const RunDeleteResultSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** false for a dry run. */
  deleted: z.boolean(),
  /** Bytes of the run folder (checkpoints, the engine's adapter output, logs). */
  runBytes: bytes,
  /** The run's adapter in the Adapters list, when it has one: its id and bytes (removed only with deleteAdapter). */
  adapterId: z.string().nullable(),
  adapterBytes: bytes,
  adapterDeleted: z.boolean(),
  /** runBytes, plus adapterBytes when the adapter goes too. */
  freedBytes: bytes,
});
export type RunDeleteResult = z.output<typeof RunDeleteResultSchema>;

/** What deleting an adapter frees (or would free, with dryRun). */
export const AdapterDeleteResultSchema = z.object({ id: z.string(), name: z.string(), deleted: z.boolean(), freedBytes: bytes });
export type AdapterDeleteResult = z.output<typeof AdapterDeleteResultSchema>;

/** States a run can be deleted in: it has ended, or it is held and nothing of it is in memory. */
export const DELETABLE_STATES: readonly RunState[] = ['completed', 'failed', 'cancelled', 'paused'];

const GOING: Partial<Record<RunState, string>> = {
  pending: 'being created',
  validating: 'being checked',
  queuing: 'waiting for its turn',
  executing: 'training',
  finalizing: 'saving its adapter',
};

/** What keeps a run from being deleted now ("training (step 3 of 40)") and what to do about it; null when nothing. */
export function deleteBlocker(run: { state: RunState; step: number; totalSteps: number }): { doing: string; fix: string } | null {
  if (DELETABLE_STATES.includes(run.state)) return null;
  const where = run.state === 'executing' ? ` (step ${run.step} of ${run.totalSteps})` : '';
  return {
    doing: `${GOING[run.state] ?? run.state}${where}`,
    fix: run.state === 'finalizing' ? 'wait until it has completed' : 'cancel or pause it first, or wait until it ends',
  };
}

/** Why a run cannot be deleted now, in words; null when it can. */
export function deleteRefusal(run: { id: string; name: string; state: RunState; step: number; totalSteps: number }): string | null {
  const b = deleteBlocker(run);
  return b ? `run "${run.name}" (${run.id}) is ${b.doing}; ${b.fix}, then delete it` : null;
}

/**
 * The name a run gets when none is given: "SmolLM2-135M · alpaca.jsonl · r8" (the services add " (2)" … when a run
 * already has it); the Train form shows it as the name field's placeholder.
 */
export function generatedRunName(modelName: string, datasetPath: string, r: number | string): string {
  const file = datasetPath.split(/[\\/]/).filter(Boolean).pop() ?? datasetPath;
  return `${modelName} · ${file} · r${r}`;
}

/** "a, b ,, c" → ["a", "b", "c"]: tags as typed in one line. */
export function parseTags(text: string): string[] {
  return text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
}

/** What the search looks at: a run's words and its settings' paths. */
export interface SearchableRun {
  id: string;
  name: string;
  notes?: string;
  tags?: readonly string[];
  state: string;
  config: { modelPath: string; datasetPath: string };
}

export interface RunQuery {
  /** Every word must appear in the name, notes, tags, id, state, model or dataset path (case-insensitive). */
  text?: string;
  /** Every one of these tags must be on the run (case-insensitive). */
  tags?: readonly string[];
}

/** The Runs list's search and tag filter, and `lora-studio runs list --search/--tag`. */
export function runMatches(run: SearchableRun, query: RunQuery): boolean {
  const tags = (run.tags ?? []).map((t) => t.toLowerCase());
  for (const want of query.tags ?? []) if (!tags.includes(want.trim().toLowerCase())) return false;
  const words = (query.text ?? '').toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  const hay = [run.name, run.notes ?? '', ...tags, run.id, run.state, run.config.modelPath, run.config.datasetPath].join('\n').toLowerCase();
  return words.every((w) => hay.includes(w));
}
