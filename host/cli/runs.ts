/**
 * `lora-studio runs list|show|cancel|pause|resume|stop-save`: the runs of a studio data folder (LORA_STUDIO_HOME, or
 * --home), read from its database.
 *
 * How an action reaches a run: every studio process (desktop app, web host) registers itself in the database's
 * `instances` table and heartbeats there, and polls the `commands` table. When a live studio uses the folder, the
 * CLI writes a command row and waits for that studio to carry it out (so an executing run stops through its engine,
 * with a checkpoint where the action asks for one) and prints the outcome. When none runs, the CLI changes the
 * database itself through the same state machine; the next studio start acts on it (a resumed run is queued, and
 * starts from its last checkpoint). "stop-save" needs the engine of the run, so it works only with a studio running.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { describeFieldErrors } from '../../common/field-labels.ts';
import type { EvalSample, RunState } from '../../common/protocol.ts';
import { parseTags, RunInfoPatchSchema, runMatches, type RunDeleteResult, type RunInfoPatch } from '../../common/run-info.ts';
import { metricsCsv } from '../../common/run-metrics.ts';
import { formatBytes } from '../../engine/host-api.ts';
import { AdapterStore } from '../services/adapter-store.ts';
import { COMMAND_ACTIONS, openStudioDb, type CommandAction, type CommandRecord, type InstanceRecord, type RunRecord, type StudioDb } from '../services/db.ts';
import { defaultHomeDir, openHome } from '../services/home.ts';
import { deletedMessage, deleteRun, updateRunInfo } from '../services/run-catalog.ts';
import { isRunState } from '../services/run-state.ts';
import { RunStore } from '../services/run-store.ts';
import { plainLogMessage } from '../../common/run-health.ts';

export interface RunsCliIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

interface CommonFlags {
  json?: boolean;
  home?: string;
}

interface ActionFlags extends CommonFlags {
  /** Seconds to wait for a running studio to carry the command out. */
  wait?: string;
}

export interface ActionOutcome {
  run: RunRecord;
  /** 'studio': a running studio did it (pid given); 'database': no studio ran, the database was changed. */
  via: 'studio' | 'database';
  pid?: number;
  message: string;
}

function homeOf(flags: CommonFlags): string {
  return flags.home ?? defaultHomeDir();
}

function fmtNum(v: number | null, digits = 4): string {
  return v === null || !Number.isFinite(v) ? '-' : v.toFixed(digits);
}

function fmtEta(ms: number | null): string {
  if (ms === null) return '-';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')).join('\n') + '\n';
}

function withDb<T>(flags: CommonFlags, fn: (db: StudioDb) => T): T {
  const db = openStudioDb(homeOf(flags));
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

export interface ListFlags extends CommonFlags {
  state?: string;
  /** Words that must all appear in the name, notes, tags, id, state, model or dataset (common/run-info.ts runMatches). */
  search?: string;
  /** Comma-separated tags that must all be on the run. */
  tag?: string;
}

export function listRuns(flags: ListFlags, io: RunsCliIo = process): RunRecord[] {
  const states = flags.state ? flags.state.split(',').map((s) => s.trim()) : undefined;
  for (const s of states ?? []) if (!isRunState(s)) throw new Error(`--state: unknown run state ${JSON.stringify(s)}`);
  const query = { ...(flags.search ? { text: flags.search } : {}), ...(flags.tag ? { tags: parseTags(flags.tag) } : {}) };
  const runs = withDb(flags, (db) => db.listRuns({ states: states as RunState[] | undefined })).filter((r) => runMatches(r, query));
  if (flags.json) io.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);
  else if (runs.length === 0) io.stdout.write(`no runs in ${homeOf(flags)}\n`);
  else {
    const rows = [['ID', 'STATE', 'STEP', 'LOSS', 'ETA', 'PRIO', 'TAGS', 'NAME']];
    for (const r of runs) rows.push([r.id, r.state, `${r.step}/${r.totalSteps}`, fmtNum(r.lastLoss), r.state === 'executing' ? fmtEta(r.etaMs) : '-', String(r.priority), r.tags.join(',') || '-', r.name]);
    io.stdout.write(table(rows));
  }
  return runs;
}

export function showRun(id: string, flags: CommonFlags, io: RunsCliIo = process): RunRecord {
  return withDb(flags, (db) => {
    const run = db.requireRun(id);
    const history = db.stateHistory(id);
    const events = db.events(id);
    const metrics = db.metricCount(id);
    const evalSamples = db.evalSamples(id);
    if (flags.json) {
      io.stdout.write(`${JSON.stringify({ run, history, events, metricPoints: metrics, evalSamples }, null, 2)}\n`);
      return run;
    }
    const lines = [
      `${run.name}`,
      `  id          ${run.id}`,
      `  tags        ${run.tags.length ? run.tags.join(', ') : '-'}`,
      ...(run.notes ? [`  notes       ${run.notes.split('\n').join('\n              ')}`] : []),
      `  state       ${run.state}${run.error ? ` — ${run.error}` : ''}`,
      `  step        ${run.step}/${run.totalSteps}${run.state === 'executing' ? `, ETA ${fmtEta(run.etaMs)}` : ''}`,
      `  loss        ${fmtNum(run.lastLoss)}   tokens/s ${fmtNum(run.tokensPerSecond, 0)}`,
      `  device      ${run.device}${run.backend ? ` (${run.backend})` : ''}   priority ${run.priority}`,
      `  checkpoint  ${run.checkpointPath ? `step ${run.checkpointStep}: ${run.checkpointPath}` : '-'}   resumed ${run.resumeCount}×`,
      `  adapter     ${run.adapterId ?? '-'}`,
      `  model       ${run.config.modelPath}`,
      `  dataset     ${run.config.datasetPath}`,
      `  LoRA        r=${run.config.lora.r} alpha=${run.config.lora.alpha} dropout=${run.config.lora.dropout} targets=${run.config.lora.targets.join(',')}`,
      `  training    lr=${run.config.train.learningRate} steps=${run.config.train.steps} batch=${run.config.train.batchSize} seq=${run.config.train.maxSeqLen}`,
      `  created     ${run.createdAt}   updated ${run.updatedAt}`,
      `  metrics     ${metrics} points`,
      'history:',
      ...history.map((h) => `  ${h.at}  ${h.from ?? '(new)'} → ${h.to}${h.reason ? `  ${h.reason}` : ''}`),
    ];
    if (events.length > 0) lines.push('events:', ...events.slice(-20).map((e) => `  ${e.at}  ${e.level.padEnd(5)} ${e.step !== null ? `[step ${e.step}] ` : ''}${plainLogMessage(e.message)}`));
    lines.push(...evalAnswerLines(run.config.evalPrompts?.prompts ?? [], evalSamples));
    io.stdout.write(`${lines.join('\n')}\n`);
    return run;
  });
}

/**
 * The 'eval prompts:' section of `runs show`: each prompt with its answer at the last step it was answered at (the
 * Run page's timeline shows every step; `--json` has them all). Prompts come from the run's config; a sample whose
 * prompt the config no longer lists (it cannot change after the start, but a database outlives configs) is shown too.
 */
function evalAnswerLines(prompts: readonly string[], samples: readonly EvalSample[]): string[] {
  if (prompts.length === 0 && samples.length === 0) return [];
  const count = Math.max(prompts.length, ...samples.map((s) => s.index + 1));
  const latest: (EvalSample | undefined)[] = Array.from({ length: count }, () => undefined);
  // samples come in step order: the last one of each prompt is its newest answer
  for (const s of samples) latest[s.index] = s;
  const steps = [...new Set(samples.map((s) => s.step))];
  const out = [`eval prompts: ${count} prompt${count === 1 ? '' : 's'}, answered at ${steps.length ? `step${steps.length === 1 ? '' : 's'} ${steps.join(', ')}` : 'no step yet'}`];
  latest.forEach((s, i) => {
    out.push(`  ${i + 1}. ${oneLine(prompts[i] ?? s?.prompt ?? '')}`);
    if (!s) {
      out.push('     (not answered yet)');
      return;
    }
    out.push(`     step ${s.step}, ${s.tokens} token${s.tokens === 1 ? '' : 's'}${s.stop === 'length' ? ', cut at the token limit' : ''}:`);
    out.push(...(s.answer === '' ? ['(empty answer)'] : s.answer.split('\n')).map((l) => `       ${l}`));
  });
  return out;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ⏎ ');
}

/** What an action does to a run's state when no studio is running (the database is changed directly). */
function offlineAction(db: StudioDb, run: RunRecord, action: (typeof COMMAND_ACTIONS)[number]): { run: RunRecord; message: string } {
  const why = 'from the command line (no studio was running)';
  switch (action) {
    case 'cancel':
      if (run.state === 'finalizing') throw new Error(`run ${run.id} is finalizing; it cannot be cancelled any more`);
      return { run: db.transition(run.id, 'cancelled', { reason: `cancelled ${why}`, patch: { etaMs: null, finishedAt: new Date().toISOString() } }), message: `run ${run.id} cancelled` };
    case 'pause':
      if (run.state !== 'queuing' && run.state !== 'executing') throw new Error(`run ${run.id} is ${run.state}; only a waiting or executing run can be paused`);
      // An executing run without a studio is one whose studio died: pausing keeps it from resuming by itself.
      return { run: db.transition(run.id, 'paused', { reason: `paused ${why}`, patch: { etaMs: null } }), message: `run ${run.id} paused; \`lora-studio runs resume ${run.id}\` queues it again` };
    case 'resume':
      if (run.state !== 'paused' && run.state !== 'failed') throw new Error(`run ${run.id} is ${run.state}; only a paused or failed run can be resumed`);
      return {
        run: db.transition(run.id, 'queuing', { reason: `resumed ${why}`, patch: { error: null } }),
        message: `run ${run.id} queued; it continues from its last checkpoint when the studio starts`,
      };
    case 'stop-save':
      throw new Error(`no studio is running run ${run.id}: "stop and save" needs its engine. Start the studio (the run resumes from its last checkpoint), or use pause or cancel`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A command carried out by the live studio of the folder, or (none running) by `offline` on the database. */
interface Dispatched {
  via: 'studio' | 'database';
  pid?: number;
  message: string;
}

async function dispatch(action: CommandAction, id: string, args: unknown, flags: ActionFlags, offline: (db: StudioDb, run: RunRecord) => string): Promise<Dispatched> {
  const waitMs = Math.max(1, Number(flags.wait ?? 30)) * 1000;
  if (!Number.isFinite(waitMs)) throw new Error(`--wait must be a number of seconds, got ${JSON.stringify(flags.wait)}`);
  const db = openStudioDb(homeOf(flags));
  try {
    const run = db.requireRun(id);
    const live: InstanceRecord[] = db.liveInstances();
    if (live.length === 0) return { via: 'database', message: offline(db, run) };
    const cmd = db.enqueueCommand(id, action, `cli pid ${process.pid}`, args);
    const deadline = Date.now() + waitMs;
    let done: CommandRecord | null = null;
    while (Date.now() < deadline) {
      const c = db.getCommand(cmd.id);
      if (c && c.doneAt) {
        done = c;
        break;
      }
      await sleep(100);
    }
    if (!done) {
      const withdrawn = db.withdrawCommand(cmd.id, `the CLI stopped waiting after ${waitMs / 1000} s`);
      throw new Error(
        withdrawn
          ? `the studio (pid ${live.map((i) => i.pid).join(', ')}) did not take the command within ${waitMs / 1000} s; nothing was changed`
          : `the studio (pid ${live.map((i) => i.pid).join(', ')}) took the command but did not finish it within ${waitMs / 1000} s; see \`lora-studio runs show ${id}\``,
      );
    }
    if (!done.ok) throw new Error(done.result ?? `the studio refused to ${action} run ${id}`);
    return { via: 'studio', pid: live[0].pid, message: done.result ?? `${action} done` };
  } finally {
    db.close();
  }
}

function viaText(d: Dispatched): string {
  return d.via === 'studio' ? `by the running studio, pid ${d.pid}` : 'no studio was running; the database was changed';
}

/** The run as the database holds it now. */
function reread(flags: CommonFlags, id: string): RunRecord {
  return withDb(flags, (db) => db.requireRun(id));
}

/** Sends an action to the studio that runs the folder, or applies it to the database when none does. */
export async function runAction(action: (typeof COMMAND_ACTIONS)[number], id: string, flags: ActionFlags, io: RunsCliIo = process): Promise<ActionOutcome> {
  let after: RunRecord | null = null;
  const d = await dispatch(action, id, null, flags, (db, run) => {
    const r = offlineAction(db, run, action);
    after = r.run;
    return r.message;
  });
  const outcome: ActionOutcome = { run: after ?? reread(flags, id), via: d.via, ...(d.pid !== undefined ? { pid: d.pid } : {}), message: d.message };
  if (flags.json) io.stdout.write(`${JSON.stringify(outcome, null, 2)}\n`);
  else io.stdout.write(`${outcome.message} (${viaText(d)}); state: ${outcome.run.state}\n`);
  return outcome;
}

/** The studio's stores over a data folder no studio is running, for the offline side of rename/tag/delete. */
function offlineStores(flags: CommonFlags, db: StudioDb): { store: RunStore; adapters: AdapterStore } {
  const home = openHome(homeOf(flags));
  return { store: new RunStore(home, db), adapters: new AdapterStore(home) };
}

/**
 * `runs rename|notes|tag`: a new name, notes or tags, through the running studio (so every window shows it) or
 * straight into the database and the run's run.json. Refusals name the field by its label.
 */
export async function updateRun(id: string, patch: RunInfoPatch, flags: ActionFlags, io: RunsCliIo = process): Promise<{ run: RunRecord; via: Dispatched['via'] }> {
  const parsed = RunInfoPatchSchema.safeParse(patch);
  if (!parsed.success) throw new Error(describeFieldErrors(parsed.error.issues.map((i) => ({ field: i.path.join('.'), message: i.message }))));
  const d = await dispatch('update', id, parsed.data, flags, (db) => {
    const run = updateRunInfo(offlineStores(flags, db).store, id, parsed.data);
    return `run ${id}: now "${run.name}"${run.tags.length ? `, tags ${run.tags.join(', ')}` : ''}`;
  });
  const run = reread(flags, id);
  if (flags.json) io.stdout.write(`${JSON.stringify({ run, via: d.via, message: d.message }, null, 2)}\n`);
  else io.stdout.write(`${d.message} (${viaText(d)})\n`);
  return { run, via: d.via };
}

/** The tag list after `tag ID [tags] --add … --remove …` (a plain list replaces them). */
export function nextTags(current: readonly string[], opts: { set?: string; add?: string; remove?: string }): string[] {
  let tags = opts.set !== undefined ? parseTags(opts.set) : [...current];
  if (opts.add) tags = [...tags, ...parseTags(opts.add)];
  if (opts.remove) {
    const gone = new Set(parseTags(opts.remove).map((t) => t.toLowerCase()));
    tags = tags.filter((t) => !gone.has(t.toLowerCase()));
  }
  return tags;
}

/** `runs delete ID`: refuses while the run is going (naming why); with --adapter its adapter goes too. */
export async function deleteRunCli(
  id: string,
  flags: ActionFlags & { adapter?: boolean; dryRun?: boolean },
  io: RunsCliIo = process,
): Promise<{ via: Dispatched['via'] | 'dry-run'; message: string; result: RunDeleteResult | null }> {
  const deleteAdapter = flags.adapter === true;
  if (flags.dryRun) {
    const r = withDb(flags, (db) => {
      const { store, adapters } = offlineStores(flags, db);
      return deleteRun(store, adapters, id, { deleteAdapter, dryRun: true });
    });
    const kept = r.adapterId && !r.adapterDeleted ? ` (its adapter ${r.adapterId}, ${formatBytes(r.adapterBytes)}, stays; --adapter removes it too)` : '';
    const message = `run ${id} ("${r.name}") would free ${formatBytes(r.freedBytes)}${kept}; nothing was removed`;
    io.stdout.write(flags.json ? `${JSON.stringify(r, null, 2)}\n` : `${message}\n`);
    return { via: 'dry-run', message, result: r };
  }
  // Filled in when this process deletes it; a running studio only sends its message back.
  let result: RunDeleteResult | null = null;
  const d = await dispatch('delete', id, { deleteAdapter }, flags, (db) => {
    const { store, adapters } = offlineStores(flags, db);
    const r = deleteRun(store, adapters, id, { deleteAdapter });
    result = r;
    return deletedMessage(r);
  });
  if (flags.json) io.stdout.write(`${JSON.stringify({ via: d.via, message: d.message, result }, null, 2)}\n`);
  else io.stdout.write(`${d.message} (${viaText(d)})\n`);
  return { via: d.via, message: d.message, result };
}

const ACTION_HELP: Record<(typeof COMMAND_ACTIONS)[number], string> = {
  cancel: 'cancel a run (an executing one stops at its next step, without saving)',
  pause: 'pause a run: an executing one writes a checkpoint and stops; resume continues from it',
  resume: 'queue a paused or failed run again; it continues from its last checkpoint',
  'stop-save': 'stop an executing run now and keep its adapter as it is (needs a running studio)',
};

/** `runs metrics ID --csv`: the run's points as CSV (common/run-metrics.ts metricsCsv), else JSON lines. */
export function runMetrics(id: string, flags: CommonFlags & { csv?: boolean; out?: string }, io: RunsCliIo = process): number {
  const points = withDb(flags, (db) => {
    db.requireRun(id);
    return db.metrics(id);
  });
  const text = flags.csv ? metricsCsv(points) : points.map((p) => `${JSON.stringify(p)}\n`).join('');
  if (flags.out) {
    try {
      writeFileSync(flags.out, text);
    } catch (e) {
      throw new Error(`--out ${flags.out}: cannot write (${(e as { code?: string }).code ?? (e instanceof Error ? e.message : String(e))})`, { cause: e });
    }
    io.stderr.write(`${points.length} points of run ${id} written to ${flags.out}\n`);
  } else io.stdout.write(text);
  return points.length;
}

export function registerRuns(program: Command): void {
  const runs = program.command('runs').description('list and control training runs of the studio data folder (LORA_STUDIO_HOME)');
  runs
    .command('list')
    .description('every run, newest first')
    .option('--state <states>', 'only runs in these states (comma-separated)')
    .option('--search <words>', 'only runs whose name, notes, tags, id, model or dataset hold every word')
    .option('--tag <tags>', 'only runs with all these tags (comma-separated)')
    .option('--home <dir>', 'studio data folder (default: LORA_STUDIO_HOME or the app-data folder)')
    .option('--json', 'print the runs as JSON')
    .action((flags: ListFlags) => {
      listRuns(flags);
    });
  runs
    .command('show')
    .description("a run's settings, state history and events")
    .argument('<id>', 'run id (see runs list)')
    .option('--home <dir>', 'studio data folder')
    .option('--json', 'print as JSON')
    .action((id: string, flags: CommonFlags) => {
      showRun(id, flags);
    });
  for (const action of COMMAND_ACTIONS) {
    runs
      .command(action)
      .description(ACTION_HELP[action])
      .argument('<id>', 'run id (see runs list)')
      .option('--home <dir>', 'studio data folder')
      .option('--wait <seconds>', 'how long to wait for a running studio to carry it out', '30')
      .option('--json', 'print the outcome as JSON')
      .action(async (id: string, flags: ActionFlags) => {
        await runAction(action, id, flags);
      });
  }
  const managed = (name: string, description: string) =>
    runs
      .command(name)
      .description(description)
      .option('--home <dir>', 'studio data folder')
      .option('--wait <seconds>', 'how long to wait for a running studio to carry it out', '30')
      .option('--json', 'print the outcome as JSON');
  managed('rename', 'give a run a new name').argument('<id>', 'run id (see runs list)').argument('<name>', 'the new name').action(async (id: string, name: string, flags: ActionFlags) => {
    await updateRun(id, { name }, flags);
  });
  managed('notes', "set a run's notes ('' clears them)").argument('<id>', 'run id').argument('<text>', 'the notes').action(async (id: string, notes: string, flags: ActionFlags) => {
    await updateRun(id, { notes }, flags);
  });
  managed('tag', "set a run's tags (a comma-separated list replaces them; --add/--remove change some)")
    .argument('<id>', 'run id')
    .argument('[tags]', 'the tags, comma-separated')
    .option('--add <tags>', 'add these tags')
    .option('--remove <tags>', 'remove these tags')
    .action(async (id: string, set: string | undefined, flags: ActionFlags & { add?: string; remove?: string }) => {
      if (set === undefined && !flags.add && !flags.remove) throw new Error('give the tags, or --add / --remove');
      const current = withDb(flags, (db) => db.requireRun(id).tags);
      await updateRun(id, { tags: nextTags(current, { ...(set !== undefined ? { set } : {}), ...(flags.add ? { add: flags.add } : {}), ...(flags.remove ? { remove: flags.remove } : {}) }) }, flags);
    });
  managed('delete', 'delete a run that is not going: its folder (checkpoints) and its records; its adapter stays unless --adapter')
    .argument('<id>', 'run id')
    .option('--adapter', "delete the run's adapter too")
    .option('--dry-run', 'only say what would be freed')
    .action(async (id: string, flags: ActionFlags & { adapter?: boolean; dryRun?: boolean }) => {
      await deleteRunCli(id, flags);
    });
  runs
    .command('metrics')
    .description("a run's metric points, one per step (JSON lines, or CSV with --csv)")
    .argument('<id>', 'run id')
    .option('--csv', 'CSV with a header row (step, loss, validationLoss, learningRate, gradNorm, …)')
    .option('--out <file>', 'write to this file instead of stdout')
    .option('--home <dir>', 'studio data folder')
    .action((id: string, flags: CommonFlags & { csv?: boolean; out?: string }) => {
      runMetrics(id, flags);
    });
}
