/**
 * `lora-studio train <run.json>`: a headless run. The engine trains in a worker (as in the app); stdout gets one JSON
 * MetricPoint per step, stderr the progress. Paths inside run.json are relative to the file.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { fieldLabel } from '../../common/field-labels.ts';
import { allowedValues, unknownKeys } from '../../common/field-rules.ts';
import { labTrainingPlan, reportKeyFormat } from '../../common/lab-plan.ts';
import { BASE_WEIGHTS, BaseWeightsKeepSchema, baseWeightsOf, KEEP_AS, keepLayersFromText, RunConfigSchema, validateRunConfig, type BaseWeights, type BaseWeightsKeep, type FieldError } from '../../common/protocol.ts';
import type { EngineEvent, RunConfig } from '../../common/protocol.ts';
import type { MixedPrecisionPlan } from '../../common/quant-report.ts';
import { startEngine } from '../../engine/host-api.ts';
import { describeBase } from '../../engine/host-api.ts';

export interface TrainCliOptions {
  out?: string;
  resume?: boolean;
  /** Overrides run.json's backend. */
  backend?: string;
  /** Overrides run.json's train.baseWeights (f32, f16, as-stored, q8_0, q4_0, q4_1, nf4, int4-g128). */
  baseWeights?: string;
  /** Overrides run.json's train.baseWeightsKeep: layer numbers, comma-separated ("0,1,29"). */
  keepLayers?: string;
  /** What --keep-layers holds them as (f32, f16, q8_0 …); default f16. */
  keepAs?: string;
  /** A quantization report (`lora-studio quant-report --json`): its mixed-precision plan sets baseWeights and baseWeightsKeep. */
  basePlan?: string;
}

/** --keep-layers / --keep-as as train.baseWeightsKeep, checked by the schema run.json is checked by. */
function keepOption(layers: string, as: string | undefined): BaseWeightsKeep {
  const parsed = BaseWeightsKeepSchema.safeParse({ layers: keepLayersFromText(layers), as: as ?? 'f16' });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${issue.path[0] === 'as' ? '--keep-as' : '--keep-layers'}: ${issue.message} (got ${JSON.stringify(issue.path[0] === 'as' ? as : layers)})`);
  }
  return parsed.data;
}

/**
 * The mixed-precision plan of a quantization report for this run's base: the plan whose base format is run.json's
 * baseWeights when it names one, else the report's first plan. Errors name the report file.
 */
function planFromReport(file: string, baseWeights: BaseWeights | undefined): { baseWeights: BaseWeights; keep: BaseWeightsKeep | null } {
  let report: { plans?: unknown };
  try {
    report = JSON.parse(readFileSync(file, 'utf8')) as { plans?: unknown };
  } catch (e) {
    throw new Error(`--base-plan ${file}: cannot read it as a quantization report (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
  const plans = Array.isArray(report.plans) ? (report.plans as MixedPrecisionPlan[]) : null;
  if (!plans) throw new Error(`--base-plan ${file}: not a quantization report (no "plans"); write one with lora-studio quant-report --json`);
  const usable = plans.filter((p) => typeof p.base === 'string' && typeof p.high === 'string' && Array.isArray(p.keepLayers));
  const chosen = baseWeights && baseWeights !== 'f32' ? usable.find((p) => reportKeyFormat(p.base) === baseWeights) : usable[0];
  if (!chosen) {
    throw new Error(`--base-plan ${file}: no mixed-precision plan${baseWeights && baseWeights !== 'f32' ? ` for base ${baseWeights}` : ''} in it (plans: ${usable.map((p) => `${p.base} → ${p.high}`).join(', ') || 'none'}); a plan needs a format of 8 bits or more beside the base in the report`);
  }
  const t = labTrainingPlan(chosen);
  if (!t.ok) throw new Error(`--base-plan ${file}: ${t.reason}`);
  return { baseWeights: t.baseWeights, keep: t.keep };
}

function baseWeightsOption(v: string): BaseWeights {
  const b = BASE_WEIGHTS.find((x) => x === v);
  if (!b) throw new Error(`--base-weights must be one of ${BASE_WEIGHTS.join(', ')}, got ${JSON.stringify(v)}`);
  return b;
}

/**
 * A resumed run continues on the base it was trained on: its run folder's run.json says which, and a different
 * setting now (the checkpoint's LoRA was fitted to that base's rounding) is refused rather than mixed.
 */
function checkResumeBase(runDir: string, config: RunConfig): void {
  let previous: unknown;
  try {
    previous = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
  } catch {
    return; // no run.json yet (a folder from elsewhere): nothing to compare
  }
  const v = validateRunConfig(previous);
  if (!v.ok) return;
  const keep = v.config.train.baseWeightsKeep ?? null;
  const was = describeBase({ baseWeights: baseWeightsOf(v.config.train), keep });
  const now = describeBase({ baseWeights: baseWeightsOf(config.train), keep: config.train.baseWeightsKeep ?? null });
  const flags = `--base-weights ${baseWeightsOf(v.config.train)}${keep ? ` --keep-layers ${keep.layers.join(',')} --keep-as ${keep.as}` : ''}`;
  if (was !== now) throw new Error(`${join(runDir, 'run.json')}: the run was trained with base weights ${was}; resuming it with ${now} would continue on a different base. Resume with ${flags}, or start a new run`);
}

const BACKENDS = ['auto', 'cpu', 'webgpu'] as const;

function backendOption(v: string): RunConfig['backend'] {
  const b = BACKENDS.find((x) => x === v);
  if (!b) throw new Error(`--backend must be one of ${BACKENDS.join(', ')}, got ${JSON.stringify(v)}`);
  return b;
}

/** Reads and validates a run.json; errors name the file and each bad field. */
export function readRunConfig(file: string): RunConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as { code?: string }).code ?? (e instanceof Error ? e.message : String(e))})`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
  // A studio run folder's run.json holds the run (name, state, …) with its config inside: train that config.
  if (isStudioRunFile(json)) json = json.config;
  const v = validateRunConfig(json);
  const unknown = unknownKeys(RunConfigSchema, json);
  if (!v.ok || unknown.length > 0) {
    const lines = [...(v.ok ? [] : v.errors.map((e) => configProblem(e, json))), ...unknown.map(unknownKeyProblem)];
    throw new Error(`${file}: invalid run config\n${lines.map((l) => `  ${l}`).join('\n')}`);
  }
  const base = dirname(resolve(file));
  return { ...v.config, modelPath: resolve(base, v.config.modelPath), datasetPath: resolve(base, v.config.datasetPath) };
}

function isStudioRunFile(json: unknown): json is { id: string; state: string; config: unknown } {
  if (typeof json !== 'object' || json === null) return false;
  const r = json as Record<string, unknown>;
  return typeof r.id === 'string' && typeof r.state === 'string' && typeof r.config === 'object' && r.config !== null && !('lora' in r);
}

/** The value at a dotted path of the file, for the message ("got 0"); undefined when it is not there. */
function valueAt(json: unknown, path: string): unknown {
  let v: unknown = json;
  for (const k of path.split('.').filter(Boolean)) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

/**
 * "lora.r: rank must be at least 1 (Rank (r); got 0; allowed: a whole number from 1 to 1024)": the key path as
 * the file spells it, the schema's message, the label the app shows, the value found and the range, read off the
 * same schema (common/field-rules.ts) so the CLI has no rules of its own.
 */
export function configProblem(e: FieldError, json: unknown): string {
  if (!e.field) return `(top level): ${e.message}`;
  const got = valueAt(json, e.field);
  const allowed = allowedValues(RunConfigSchema, e.field);
  const details = [fieldLabel(e.field), got === undefined ? 'missing' : `got ${JSON.stringify(got)}`, ...(allowed ? [`allowed: ${allowed}`] : [])];
  return `${e.field}: ${e.message} (${details.join('; ')})`;
}

/** A key the config has no setting for: a typo would otherwise be ignored and the default used instead. */
function unknownKeyProblem(u: { path: string; known: string[] }): string {
  const last = u.path.split('.').pop() ?? u.path;
  const squash = (k: string) => k.toLowerCase().replace(/[^a-z0-9]/g, '');
  const near = u.known.find((k) => squash(k) === squash(last));
  const parent = u.path.includes('.') ? u.path.slice(0, u.path.lastIndexOf('.')) : '(top level)';
  return `${u.path}: not a setting${near ? ` — did you mean ${near}?` : ''} (${parent} takes ${u.known.join(', ')})`;
}

function defaultRunDir(config: RunConfig): string {
  const home = process.env.LORA_STUDIO_HOME ? join(process.env.LORA_STUDIO_HOME, 'runs') : resolve('runs');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const name = (config.name ?? 'run').replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 60) || 'run';
  return join(home, `${name}-${stamp}`);
}

function describe(e: Extract<EngineEvent, { type: 'error' }>): string {
  const where = e.file ? `${e.file}${e.line !== undefined ? `:${e.line}` : ''}: ` : '';
  const field = e.field && !e.message.includes(e.field) ? ` (field ${e.field})` : '';
  return e.file && e.message.includes(e.file) ? `${e.message}${field}` : `${where}${e.message}${field}`;
}

/** Runs the training to the end; resolves with the adapter folder (or null when stopped). */
export async function trainCommand(file: string, opts: TrainCliOptions, io = { stdout: process.stdout, stderr: process.stderr }): Promise<string | null> {
  const read = readRunConfig(file);
  const withBackend = opts.backend !== undefined ? { ...read, backend: backendOption(opts.backend) } : read;
  const config = withBaseOptions(withBackend, opts);
  const runDir = resolve(opts.out ?? defaultRunDir(config));
  if (opts.resume) checkResumeBase(runDir, config);
  mkdirSync(runDir, { recursive: true });
  writeFileSync(join(runDir, 'run.json'), JSON.stringify(config, null, 2) + '\n');
  const engine = startEngine();
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts === 1) {
      io.stderr.write('\nstopping after this step and saving a checkpoint (Ctrl-C again to quit at once)\n');
      engine.send({ type: 'stop', save: true });
    } else void engine.terminate();
  };
  process.on('SIGINT', onSigint);
  try {
    return await new Promise<string | null>((resolvePromise, reject) => {
      engine.on((e) => {
        switch (e.type) {
          case 'started':
            io.stderr.write(
              `training ${config.name ?? file} on ${e.backend}${e.adapterName ? ` (${e.adapterName})` : ''}: ${e.totalSteps} steps, ${e.parameters.trainable} trainable of ${e.parameters.total} parameters` +
                (e.resumedFromStep ? `, resuming from step ${e.resumedFromStep}` : '') +
                `\nrun folder: ${runDir}\n`,
            );
            break;
          case 'metric': {
            io.stdout.write(JSON.stringify(e.point) + '\n');
            const p = e.point;
            const extra = (p.validationLoss !== undefined ? ` val ${p.validationLoss.toFixed(4)}` : '') + (p.lossScale !== undefined ? ` scale ${p.lossScale}` : '') + (p.skipped ? ' (skipped)' : '');
            io.stderr.write(`step ${p.step}/${config.train.steps} loss ${p.loss.toFixed(4)} lr ${p.learningRate.toExponential(2)} ${Math.round(p.tokensPerSecond)} tok/s${extra}\n`);
            break;
          }
          case 'log':
            io.stderr.write(`${e.level === 'info' ? '' : `${e.level}: `}${e.message}\n`);
            break;
          case 'checkpoint':
            io.stderr.write(`checkpoint at step ${e.step}: ${e.path}\n`);
            break;
          case 'eval':
            // The fixed evaluation prompts (config.evalPrompts), on stderr: stdout stays one metric point per line.
            io.stderr.write(`eval step ${e.step} prompt ${e.index + 1}: ${JSON.stringify(e.answer)}\n`);
            break;
          case 'stopped':
            io.stderr.write(`stopped at step ${e.step}${e.checkpoint ? `; resume with --out ${runDir} --resume (checkpoint ${e.checkpoint})` : ''}\n`);
            resolvePromise(null);
            break;
          case 'done':
            io.stderr.write(
              `done: ${e.steps} steps, final loss ${e.finalLoss?.toFixed(4) ?? 'n/a'}` +
                (e.peakGpuBytes !== undefined ? `, peak GPU memory ${(e.peakGpuBytes / 1024 ** 3).toFixed(3)} GiB` : '') +
                `\nadapter: ${e.adapterDir}\n`,
            );
            resolvePromise(e.adapterDir);
            break;
          case 'error':
            reject(new Error(describe(e)));
            break;
        }
      });
      engine.send({ type: 'train', runId: config.name ?? 'cli', config, runDir, resume: opts.resume ?? false });
    });
  } finally {
    process.off('SIGINT', onSigint);
    await engine.terminate();
  }
}

/** run.json with --base-weights, --base-plan and --keep-layers/--keep-as applied (in that order). */
function withBaseOptions(config: RunConfig, opts: TrainCliOptions): RunConfig {
  const train = { ...config.train };
  if (opts.baseWeights !== undefined) train.baseWeights = baseWeightsOption(opts.baseWeights);
  if (opts.basePlan !== undefined) {
    const p = planFromReport(resolve(opts.basePlan), train.baseWeights);
    train.baseWeights = p.baseWeights;
    if (p.keep) train.baseWeightsKeep = p.keep;
    else delete train.baseWeightsKeep;
  }
  if (opts.keepLayers !== undefined) train.baseWeightsKeep = keepOption(opts.keepLayers, opts.keepAs);
  else if (opts.keepAs !== undefined) throw new Error('--keep-as needs --keep-layers');
  return { ...config, train };
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train a LoRA adapter headless from a run config (JSON); one JSON metric line per step on stdout')
    .argument('<run.json>', 'run configuration (as the app writes it); paths are relative to this file')
    .option('--out <dir>', 'run folder (checkpoints/ and adapter/ go here); default: a new folder under $LORA_STUDIO_HOME/runs or ./runs')
    .option('--resume', 'continue from the newest checkpoint in --out')
    .option('--backend <auto|cpu|webgpu>', "compute backend (overrides run.json's backend; auto: webgpu on a hardware GPU adapter, else cpu)")
    .option(
      '--base-weights <setting>',
      `how the frozen base is held (overrides run.json's train.baseWeights): ${BASE_WEIGHTS.join(', ')}; as-stored keeps a GGUF's q8_0/q4_0/q4_1/q4_k/q6_k layers packed, q8_0…int4-g128 quantize at load (QLoRA); default f32`,
    )
    .option('--keep-layers <list>', 'a mixed plan: these decoder layers (comma-separated, from 0) keep a higher precision than --base-weights (overrides train.baseWeightsKeep)')
    .option('--keep-as <format>', `what --keep-layers holds them as: ${KEEP_AS.join(', ')}; default f16`)
    .option('--base-plan <report.json>', 'take base weights and kept layers from a quantization report\'s mixed-precision plan (lora-studio quant-report --json)')
    .action(async (file: string, opts: TrainCliOptions) => {
      if (opts.resume && !opts.out) throw new Error('--resume needs --out <run folder>');
      const adapter = await trainCommand(file, opts);
      if (adapter === null) process.exitCode = 130;
    });
}
