/**
 * `lora-studio runs …` on a data folder with no studio running: it lists and shows what the database holds, and
 * cancel / pause / resume change the database through the state machine (stop-save, which needs an engine, and
 * illegal moves are refused with the reason). The real binary is run once to prove the command is registered.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, describe, test } from 'node:test';
import { DEFAULT_RUN_CONFIG, type EvalSample, type RunState } from '../../common/protocol.ts';
import { deleteRunCli, listRuns, nextTags, runAction, runMetrics, showRun, updateRun, type ActionOutcome } from '../../host/cli/runs.ts';
import { newRunRecord, openStudioDb, type RunRecord } from '../../host/services/db.ts';
import { ALERT_TITLES, alertEventMessage } from '../../common/run-health.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lora-cli-runs-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const bin = fileURLToPath(new URL('../../bin/lora-studio.mjs', import.meta.url));

function capture() {
  let out = '';
  let err = '';
  return { io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } }, out: () => out, err: () => err };
}

/** A data folder whose database holds runs in the given states (reached through legal transitions). */
function seed(name: string, states: Record<string, RunState>): string {
  const home = join(tmp, name);
  const db = openStudioDb(home);
  const paths: Record<RunState, RunState[]> = {
    pending: [],
    validating: ['validating'],
    queuing: ['validating', 'queuing'],
    executing: ['validating', 'queuing', 'executing'],
    paused: ['validating', 'queuing', 'executing', 'paused'],
    finalizing: ['validating', 'queuing', 'executing', 'finalizing'],
    completed: ['validating', 'queuing', 'executing', 'finalizing', 'completed'],
    failed: ['validating', 'queuing', 'executing', 'failed'],
    cancelled: ['cancelled'],
  };
  let i = 0;
  for (const [id, state] of Object.entries(states)) {
    const at = new Date(Date.UTC(2026, 10, 27, 10, 0, i++)).toISOString();
    db.insertRun(newRunRecord({ id, name: `name of ${id}`, state: 'pending', config: { ...DEFAULT_RUN_CONFIG, modelPath: '/m', datasetPath: '/d.jsonl' }, createdAt: at, updatedAt: at, step: 0, totalSteps: 20, lastLoss: null, tokensPerSecond: null, etaMs: null, error: null, adapterId: null, backend: null }));
    for (const s of paths[state]) db.transition(id, s, { patch: s === 'failed' ? { error: 'boom' } : {} });
  }
  db.addEvent(Object.keys(states)[0], 'info', 'hello from the engine', 3);
  db.addEvent(Object.keys(states)[0], 'warn', alertEventMessage('loss-spike', 'loss 9.1 is 4.2× its recent median'), 4);
  db.appendMetrics(Object.keys(states)[0], [{ step: 1, loss: 2.5, learningRate: 1e-3, tokens: 10, tokensPerSecond: 5, elapsedMs: 1, gradNorm: 1, rssBytes: 734_003_200 }]);
  db.close();
  return home;
}

describe('list and show', () => {
  const home = seed('list', { a: 'completed', b: 'executing', c: 'queuing' });

  test('list prints a table, newest first; --json the records; --state filters', () => {
    const c = capture();
    const runs = listRuns({ home }, c.io);
    assert.deepEqual(runs.map((r) => r.id), ['c', 'b', 'a']);
    const lines = c.out().trim().split('\n');
    assert.match(lines[0], /^ID\s+STATE\s+STEP\s+LOSS/);
    assert.match(lines[1], /^c\s+queuing\s+0\/20/);
    const j = capture();
    listRuns({ home, json: true }, j.io);
    assert.deepEqual((JSON.parse(j.out()) as RunRecord[]).map((r) => [r.id, r.state]), [['c', 'queuing'], ['b', 'executing'], ['a', 'completed']]);
    assert.deepEqual(listRuns({ home, state: 'completed,queuing' }, capture().io).map((r) => r.id), ['c', 'a']);
    assert.throws(() => listRuns({ home, state: 'running' }, capture().io), /--state: unknown run state "running"/);
  });

  test('show prints config, history and events; --json has them all', () => {
    const c = capture();
    showRun('a', { home }, c.io);
    assert.match(c.out(), /state {7}completed/);
    assert.match(c.out(), /executing → finalizing/);
    assert.match(c.out(), /\[step 3\] hello from the engine/);
    // An alert reads as its title, never as the stored [alert:kind] key.
    assert.match(c.out(), new RegExp(`\\[step 4\\] ${ALERT_TITLES['loss-spike']}: loss 9\\.1 is 4\\.2× its recent median`));
    assert.doesNotMatch(c.out(), /\[alert:/);
    assert.match(c.out(), /metrics {5}1 points/);
    const j = capture();
    showRun('a', { home, json: true }, j.io);
    const parsed = JSON.parse(j.out()) as { run: RunRecord; history: { to: string }[]; events: { message: string }[]; metricPoints: number };
    assert.equal(parsed.run.id, 'a');
    assert.deepEqual(parsed.history.map((h) => h.to), ['pending', 'validating', 'queuing', 'executing', 'finalizing', 'completed']);
    assert.equal(parsed.metricPoints, 1);
    assert.throws(() => showRun('zzz', { home }, capture().io), /no run with id "zzz"/);
  });
});

describe('show prints the eval-prompt answers', () => {
  // Three prompts answered at steps 0, 10 and 20 of a run; the third prompt only at step 0 and 10 (the run stopped
  // mid-sampling at step 20), so its newest answer is older than the others'.
  const home = seed('eval', { e: 'completed' });
  const prompts = ['What is LoRA?', 'Two\nlines', 'Never sampled at 20'];
  const db = openStudioDb(home);
  db.db.prepare('UPDATE runs SET config = ? WHERE id = ?').run(JSON.stringify({ ...DEFAULT_RUN_CONFIG, modelPath: '/m', datasetPath: '/d.jsonl', evalPrompts: { prompts, everySteps: 10, maxNewTokens: 32 } }), 'e');
  const sample = (step: number, index: number, answer: string, stop: 'eos' | 'length' = 'eos'): EvalSample => ({ runId: 'e', step, index, prompt: prompts[index], answer, tokens: answer.length, stop });
  const samples = [sample(0, 0, 'no idea'), sample(0, 1, ''), sample(0, 2, 'zero'), sample(10, 0, 'an adapter'), sample(10, 1, 'x'), sample(10, 2, 'ten'), sample(20, 0, 'low-rank adaptation', 'length'), sample(20, 1, 'first\nsecond')];
  for (const x of samples) db.putEvalSample(x);
  db.close();

  test('each prompt with its newest answer and its step; --json has every answer', () => {
    const c = capture();
    showRun('e', { home }, c.io);
    const out = c.out();
    const section = out.slice(out.indexOf('eval prompts:'));
    assert.equal(
      section,
      [
        'eval prompts: 3 prompts, answered at steps 0, 10, 20',
        '  1. What is LoRA?',
        '     step 20, 19 tokens, cut at the token limit:',
        '       low-rank adaptation',
        '  2. Two ⏎ lines',
        '     step 20, 12 tokens:',
        '       first',
        '       second',
        '  3. Never sampled at 20',
        '     step 10, 3 tokens:',
        '       ten',
        '',
      ].join('\n'),
    );
    const j = capture();
    showRun('e', { home, json: true }, j.io);
    assert.deepEqual((JSON.parse(j.out()) as { evalSamples: EvalSample[] }).evalSamples, samples);
    // a run without eval prompts has no such section, and an empty list in JSON
    const plain = seed('no-eval', { n: 'completed' });
    const a = capture();
    showRun('n', { home: plain }, a.io);
    assert.doesNotMatch(a.out(), /eval prompts/);
    const aj = capture();
    showRun('n', { home: plain, json: true }, aj.io);
    assert.deepEqual((JSON.parse(aj.out()) as { evalSamples: EvalSample[] }).evalSamples, []);
  });

  test('the lora-studio binary prints them (runs show, runs show --json)', async () => {
    const env = { ...process.env, LORA_STUDIO_HOME: home, LORA_STUDIO_FROM_SOURCE: '1' };
    const run = (...args: string[]) => promisify(execFile)(process.execPath, [bin, 'runs', 'show', ...args], { env });
    assert.match((await run('e')).stdout, /eval prompts: 3 prompts, answered at steps 0, 10, 20\n {2}1\. What is LoRA\?\n {5}step 20, 19 tokens, cut at the token limit:\n {7}low-rank adaptation\n/);
    const parsed = JSON.parse((await run('e', '--json')).stdout) as { evalSamples: EvalSample[] };
    assert.deepEqual(parsed.evalSamples.map((x) => [x.step, x.index]), samples.map((x) => [x.step, x.index]));
  });
});

describe('actions with no studio running change the database', () => {
  const home = seed('act', { q: 'queuing', e: 'executing', p: 'paused', f: 'failed', done: 'completed', fin: 'finalizing' });

  async function act(action: Parameters<typeof runAction>[0], id: string): Promise<ActionOutcome> {
    return runAction(action, id, { home, json: true }, capture().io);
  }
  const state = (id: string): RunState => {
    const db = openStudioDb(home);
    try {
      return db.requireRun(id).state;
    } finally {
      db.close();
    }
  };

  test('pause a queued run, resume it, cancel it', async () => {
    const paused = await act('pause', 'q');
    assert.equal(paused.via, 'database');
    assert.equal(paused.run.state, 'paused');
    assert.equal((await act('resume', 'q')).run.state, 'queuing');
    assert.equal((await act('cancel', 'q')).run.state, 'cancelled');
    assert.equal(state('q'), 'cancelled');
  });

  test('a failed run is queued again with its error cleared; a paused one too', async () => {
    const r = await act('resume', 'f');
    assert.equal(r.run.state, 'queuing');
    assert.equal(r.run.error, null);
    assert.equal((await act('resume', 'p')).run.state, 'queuing');
  });

  test('an orphaned executing run (its studio died) can be paused so it does not resume by itself', async () => {
    assert.equal((await act('pause', 'e')).run.state, 'paused');
  });

  test('refusals say why and change nothing', async () => {
    await assert.rejects(act('stop-save', 'p'), /no studio is running run p: "stop and save" needs its engine/);
    await assert.rejects(act('cancel', 'done'), /illegal run state transition from completed to cancelled/);
    await assert.rejects(act('resume', 'done'), /run done is completed; only a paused or failed run can be resumed/);
    await assert.rejects(act('cancel', 'fin'), /run fin is finalizing; it cannot be cancelled any more/);
    await assert.rejects(act('pause', 'nope'), /no run with id "nope"/);
    assert.equal(state('done'), 'completed');
    assert.equal(state('fin'), 'finalizing');
  });

  test('the history records where the change came from', () => {
    const db = openStudioDb(home);
    const last = db.stateHistory('q').at(-1);
    db.close();
    assert.equal(last?.to, 'cancelled');
    assert.match(last?.reason ?? '', /command line \(no studio was running\)/);
  });
});

test('the lora-studio binary has the runs command', async () => {
  const home = seed('bin', { only: 'paused' });
  const { stdout } = await promisify(execFile)(process.execPath, [bin, 'runs', 'list', '--json'], { env: { ...process.env, LORA_STUDIO_HOME: home, LORA_STUDIO_FROM_SOURCE: '1' } });
  assert.deepEqual((JSON.parse(stdout) as RunRecord[]).map((r) => [r.id, r.state]), [['only', 'paused']]);
  const failed = await promisify(execFile)(process.execPath, [bin, 'runs', 'cancel', 'missing'], { env: { ...process.env, LORA_STUDIO_HOME: home, LORA_STUDIO_FROM_SOURCE: '1' } }).then(
    () => null,
    (e: { code?: number; stderr?: string }) => e,
  );
  assert.equal(failed?.code, 1);
  assert.match(failed?.stderr ?? '', /lora-studio: no run with id "missing"/);
});

describe('rename, notes, tags, delete and metrics with no studio running', () => {
  const home = seed('manage', { one: 'completed', two: 'queuing', three: 'cancelled' });
  const quiet = () => capture().io;

  test('rename, notes and tags change the database; list --search / --tag find them; show prints them', async () => {
    const c = capture();
    const r = await updateRun('one', { name: 'first baseline' }, { home }, c.io);
    assert.equal(r.via, 'database');
    assert.equal(r.run.name, 'first baseline');
    assert.match(c.out(), /run one: now "first baseline" \(no studio was running; the database was changed\)/);
    await updateRun('one', { notes: 'lr too high?' }, { home }, quiet());
    await updateRun('one', { tags: nextTags([], { set: 'baseline, smoke' }) }, { home }, quiet());
    await updateRun('two', { tags: nextTags(['x'], { add: 'sweep,Smoke', remove: 'X' }) }, { home }, quiet());
    assert.deepEqual(listRuns({ home, tag: 'smoke' }, quiet()).map((x) => x.id), ['two', 'one']);
    assert.deepEqual(listRuns({ home, tag: 'smoke,baseline' }, quiet()).map((x) => x.id), ['one']);
    assert.deepEqual(listRuns({ home, search: 'baseline lr' }, quiet()).map((x) => x.id), ['one']);
    assert.deepEqual(listRuns({ home, search: 'nothing-like-this' }, quiet()).map((x) => x.id), []);
    const table = capture();
    listRuns({ home }, table.io);
    assert.match(table.out(), /^ID\s+STATE\s+STEP\s+LOSS\s+ETA\s+PRIO\s+TAGS\s+NAME/);
    assert.match(table.out(), /one\s+completed.*baseline,smoke\s+first baseline/);
    const shown = capture();
    showRun('one', { home }, shown.io);
    assert.match(shown.out(), /tags {8}baseline, smoke/);
    assert.match(shown.out(), /notes {7}lr too high\?/);
    await assert.rejects(updateRun('one', { name: '' }, { home }, quiet()), /Run name cannot be empty/);
    await assert.rejects(updateRun('one', { tags: ['x'.repeat(41)] }, { home }, quiet()), /a tag must be at most 40 characters/);
    await assert.rejects(updateRun('nope', { name: 'x' }, { home }, quiet()), /no run with id "nope"/);
  });

  test('delete refuses a waiting run (naming why), measures with --dry-run, then removes the run', async () => {
    await assert.rejects(deleteRunCli('two', { home }, quiet()), /is waiting for its turn; cancel or pause it first/);
    const folder = join(home, 'runs', 'three', 'checkpoints');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'state.bin'), Buffer.alloc(3000));
    const dry = await deleteRunCli('three', { home, dryRun: true }, quiet());
    assert.equal(dry.result?.runBytes, 3000);
    assert.equal(dry.result?.deleted, false);
    assert.ok(existsSync(folder));
    const c = capture();
    const done = await deleteRunCli('three', { home }, c.io);
    assert.equal(done.via, 'database');
    assert.equal(done.result?.freedBytes, 3000);
    assert.match(c.out(), /run three \("name of three"\) deleted: 2\.93 KiB freed/);
    assert.equal(existsSync(join(home, 'runs', 'three')), false);
    assert.deepEqual(listRuns({ home }, quiet()).map((x) => x.id), ['two', 'one']);
    await assert.rejects(deleteRunCli('three', { home }, quiet()), /no run with id "three"/);
  });

  test('metrics --csv: a header and one row per step, values as stored', () => {
    const c = capture();
    const n = runMetrics('one', { home, csv: true }, c.io);
    assert.equal(n, 1);
    const [header, row, ...rest] = c.out().trimEnd().split('\n');
    assert.equal(header, 'step,loss,validationLoss,learningRate,gradNorm,lossScale,skipped,tokens,tokensPerSecond,elapsedMs,rssBytes,deviceBytes');
    assert.equal(row, '1,2.5,,0.001,1,,,10,5,1,734003200,');
    assert.deepEqual(rest, []);
    const out = join(tmp, 'one.csv');
    runMetrics('one', { home, csv: true, out }, quiet());
    assert.equal(readFileSync(out, 'utf8'), c.out());
    const lines = capture();
    runMetrics('one', { home }, lines.io);
    assert.equal((JSON.parse(lines.out()) as { loss: number }).loss, 2.5);
    assert.throws(() => runMetrics('zzz', { home, csv: true }, quiet()), /no run with id "zzz"/);
  });
});

test('the lora-studio binary has runs rename, tag, delete and metrics', async () => {
  const home = seed('bin-manage', { solo: 'completed' });
  const env = { ...process.env, LORA_STUDIO_HOME: home, LORA_STUDIO_FROM_SOURCE: '1' };
  const run = (...args: string[]) => promisify(execFile)(process.execPath, [bin, 'runs', ...args], { env });
  assert.match((await run('rename', 'solo', 'my best run')).stdout, /now "my best run"/);
  assert.match((await run('tag', 'solo', '--add', 'keep')).stdout, /tags keep/);
  assert.match((await run('metrics', 'solo', '--csv')).stdout, /^step,loss,/);
  assert.match((await run('delete', 'solo')).stdout, /run solo \("my best run"\) deleted/);
  assert.equal((await run('list')).stdout, `no runs in ${home}\n`);
});
