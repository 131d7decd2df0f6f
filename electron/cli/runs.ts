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
import type { Command } from 'commander';
import type { RunState } from '../../common/protocol.ts';
import { COMMAND_ACTIONS, openStudioDb, type CommandAction, type CommandRecord, type InstanceRecord, type RunRecord, type StudioDb } from '../services/db.ts';
import { defaultHomeDir } from '../services/home.ts';
import { isRunState } from '../services/run-state.ts';

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

export function listRuns(flags: CommonFlags & { state?: string }, io: RunsCliIo = process): RunRecord[] {
  const states = flags.state ? flags.state.split(',').map((s) => s.trim()) : undefined;
  for (const s of states ?? []) if (!isRunState(s)) throw new Error(`--state: unknown run state ${JSON.stringify(s)}`);
  const runs = withDb(flags, (db) => db.listRuns({ states: states as RunState[] | undefined }));
  if (flags.json) io.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);
  else if (runs.length === 0) io.stdout.write(`no runs in ${homeOf(flags)}\n`);
  else {
    const rows = [['ID', 'STATE', 'STEP', 'LOSS', 'ETA', 'PRIO', 'NAME']];
    for (const r of runs) rows.push([r.id, r.state, `${r.step}/${r.totalSteps}`, fmtNum(r.lastLoss), r.state === 'executing' ? fmtEta(r.etaMs) : '-', String(r.priority), r.name]);
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
    if (flags.json) {
      io.stdout.write(`${JSON.stringify({ run, history, events, metricPoints: metrics }, null, 2)}\n`);
      return run;
    }
    const lines = [
      `${run.name}`,
      `  id          ${run.id}`,
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
    if (events.length > 0) lines.push('events:', ...events.slice(-20).map((e) => `  ${e.at}  ${e.level.padEnd(5)} ${e.step !== null ? `[step ${e.step}] ` : ''}${e.message}`));
    io.stdout.write(`${lines.join('\n')}\n`);
    return run;
  });
}

/** What an action does to a run's state when no studio is running (the database is changed directly). */
function offlineAction(db: StudioDb, run: RunRecord, action: CommandAction): { run: RunRecord; message: string } {
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

/** Sends an action to the studio that runs the folder, or applies it to the database when none does. */
export async function runAction(action: CommandAction, id: string, flags: ActionFlags, io: RunsCliIo = process): Promise<ActionOutcome> {
  const waitMs = Math.max(1, Number(flags.wait ?? 30)) * 1000;
  if (!Number.isFinite(waitMs)) throw new Error(`--wait must be a number of seconds, got ${JSON.stringify(flags.wait)}`);
  const db = openStudioDb(homeOf(flags));
  let outcome: ActionOutcome;
  try {
    const run = db.requireRun(id);
    const live: InstanceRecord[] = db.liveInstances();
    if (live.length === 0) {
      const r = offlineAction(db, run, action);
      outcome = { run: r.run, via: 'database', message: r.message };
    } else {
      const cmd = db.enqueueCommand(id, action, `cli pid ${process.pid}`);
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
      outcome = { run: db.requireRun(id), via: 'studio', pid: live[0].pid, message: done.result ?? `${action} done` };
    }
  } finally {
    db.close();
  }
  if (flags.json) io.stdout.write(`${JSON.stringify(outcome, null, 2)}\n`);
  else io.stdout.write(`${outcome.message} (${outcome.via === 'studio' ? `by the running studio, pid ${outcome.pid}` : 'no studio was running; the database was changed'}); state: ${outcome.run.state}\n`);
  return outcome;
}

const ACTION_HELP: Record<CommandAction, string> = {
  cancel: 'cancel a run (an executing one stops at its next step, without saving)',
  pause: 'pause a run: an executing one writes a checkpoint and stops; resume continues from it',
  resume: 'queue a paused or failed run again; it continues from its last checkpoint',
  'stop-save': 'stop an executing run now and keep its adapter as it is (needs a running studio)',
};

export function registerRuns(program: Command): void {
  const runs = program.command('runs').description('list and control training runs of the studio data folder (LORA_STUDIO_HOME)');
  runs
    .command('list')
    .description('every run, newest first')
    .option('--state <states>', 'only runs in these states (comma-separated)')
    .option('--home <dir>', 'studio data folder (default: LORA_STUDIO_HOME or the app-data folder)')
    .option('--json', 'print the runs as JSON')
    .action((flags: CommonFlags & { state?: string }) => {
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
}
