/**
 * `lora-studio export-bundle RUN|run.json --out DIR`: a run (by id, from the studio data folder, or a run.json) as a
 * folder Hugging Face Accelerate + PEFT train exactly as the studio would (see engine/export/bundle.ts).
 * `lora-studio import-adapter DIR [--model DIR]`: a PEFT LoRA adapter folder (or a hub cache entry) into the
 * Adapters list of the studio data folder, checked against its base model.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { BUNDLE_DROPOUT_MODES, BUNDLE_LAUNCHERS, DEFAULT_BUNDLE_LAUNCH, MAX_BUNDLE_PROCESSES, type BundleDropoutMode, type BundleLaunch, type BundleLauncher } from '../../common/bundle-launch.ts';
import { BUNDLE_INCLUDE_MODEL, type AdapterImportResult, type BundleIncludeModel, type BundleSummary, type RunConfig } from '../../common/protocol.ts';
import { exportBundle } from '../../engine/host-api.ts';
import { AdapterStore } from '../services/adapter-store.ts';
import { importAdapter } from '../services/adapter-import.ts';
import { openStudioDb } from '../services/db.ts';
import { defaultHomeDir, openHome } from '../services/home.ts';
import { readRunConfig } from './train.ts';

interface Io {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

export interface ExportBundleFlags {
  out: string;
  home?: string;
  includeModel?: string;
  launcher?: string;
  processes?: string;
  dropout?: string;
  json?: boolean;
}

/** --launcher, --processes, --dropout → the launch the README and the summary put first. */
function launchFlags(flags: ExportBundleFlags): BundleLaunch {
  const launcher = flags.launcher ?? DEFAULT_BUNDLE_LAUNCH.launcher;
  if (!(BUNDLE_LAUNCHERS as readonly string[]).includes(launcher)) throw new Error(`--launcher must be one of ${BUNDLE_LAUNCHERS.join(', ')}, got ${JSON.stringify(launcher)}`);
  const dropout = flags.dropout ?? DEFAULT_BUNDLE_LAUNCH.dropout;
  if (!(BUNDLE_DROPOUT_MODES as readonly string[]).includes(dropout)) throw new Error(`--dropout must be one of ${BUNDLE_DROPOUT_MODES.join(', ')}, got ${JSON.stringify(dropout)}`);
  const processes = flags.processes === undefined ? DEFAULT_BUNDLE_LAUNCH.processes : Number(flags.processes);
  if (!Number.isInteger(processes) || processes < 1 || processes > MAX_BUNDLE_PROCESSES) throw new Error(`--processes must be a whole number from 1 to ${MAX_BUNDLE_PROCESSES}, got ${JSON.stringify(flags.processes)}`);
  return { launcher: launcher as BundleLauncher, processes, dropout: dropout as BundleDropoutMode };
}

/** RUN is a run.json when it names an existing file, else a run id of the studio data folder. */
function runSource(run: string, home: string): { config: RunConfig; runId: string | null; name: string | undefined } {
  if (existsSync(run) && statSync(run).isFile()) {
    const config = readRunConfig(run);
    return { config, runId: null, name: config.name };
  }
  if (run.endsWith('.json')) throw new Error(`${run}: no such file (give a run.json or the id of a run in ${home})`);
  const db = openStudioDb(home);
  try {
    const r = db.requireRun(run);
    return { config: r.config, runId: r.id, name: r.name };
  } finally {
    db.close();
  }
}

export async function exportBundleCommand(run: string, flags: ExportBundleFlags, io: Io = process): Promise<BundleSummary> {
  const include = flags.includeModel ?? 'auto';
  const launch = launchFlags(flags);
  if (!(BUNDLE_INCLUDE_MODEL as readonly string[]).includes(include)) throw new Error(`--include-model must be one of ${BUNDLE_INCLUDE_MODEL.join(', ')}, got ${JSON.stringify(include)}`);
  const home = flags.home ?? defaultHomeDir();
  const src = runSource(run, home);
  const summary = await exportBundle(src.config, resolve(flags.out), {
    runId: src.runId,
    ...(src.name ? { name: src.name } : {}),
    includeModel: include as BundleIncludeModel,
    launch,
    onProgress: (m) => io.stderr.write(`${m}\n`),
  });
  if (flags.json) io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  else {
    io.stdout.write(
      [
        `bundle: ${summary.path}`,
        `  ${summary.steps} steps, ${summary.trainExamples} training / ${summary.validationExamples} validation examples, ${summary.targetTokens} target tokens`,
        `  base model ${summary.modelIncluded ? 'copied into model/' : 'not copied (pass --model to train.py where it lives elsewhere)'}`,
        'launch (README.md lists one GPU, DDP, DeepSpeed ZeRO-2, FSDP and Slurm):',
        `  ${summary.launch}`,
        `follow it: Runs → External runs → ${resolve(summary.path, 'output', 'metrics.jsonl')} → Follow`,
        '',
      ].join('\n'),
    );
  }
  return summary;
}

export interface ImportAdapterFlags {
  model?: string;
  name?: string;
  home?: string;
  json?: boolean;
}

export function importAdapterCommand(path: string, flags: ImportAdapterFlags, io: Io = process): AdapterImportResult {
  const store = new AdapterStore(openHome(flags.home ?? defaultHomeDir()));
  const result = importAdapter(store, { path, ...(flags.model ? { modelPath: flags.model } : {}), ...(flags.name ? { name: flags.name } : {}) });
  for (const w of result.warnings) io.stderr.write(`warning: ${w}\n`);
  if (flags.json) io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else io.stdout.write(`imported ${result.adapter.name} (${result.adapter.id}): r ${result.adapter.r}, alpha ${result.adapter.alpha}, ${result.adapter.targets.join(', ')}, base ${result.adapter.baseModel || '?'}\n  ${result.adapter.path}\n`);
  return result;
}

export function registerBundle(program: Command): void {
  program
    .command('export-bundle')
    .description('export a run as a folder for Hugging Face Accelerate + PEFT (one GPU, DDP, DeepSpeed ZeRO-2, FSDP, Slurm) that trains exactly as the studio would')
    .argument('<RUN|run.json>', 'a run id of the studio data folder, or a run config file')
    .requiredOption('--out <dir>', 'the bundle folder to create (must be new or empty)')
    .option('--include-model <auto|always|never>', 'copy the base model into the bundle (auto: when ≤ 64 MiB)', 'auto')
    .option('--launcher <name>', `the launch the summary and README put first: ${BUNDLE_LAUNCHERS.join(', ')}`, DEFAULT_BUNDLE_LAUNCH.launcher)
    .option('--processes <n>', 'processes (GPUs) of that launch', String(DEFAULT_BUNDLE_LAUNCH.processes))
    .option('--dropout <torch|studio>', "LoRA dropout masks of that launch: PEFT's own (torch) or the studio's (studio)", DEFAULT_BUNDLE_LAUNCH.dropout)
    .option('--home <dir>', 'studio data folder (default: LORA_STUDIO_HOME or the OS app-data folder)')
    .option('--json', 'print the bundle summary as JSON')
    .action(async (run: string, flags: ExportBundleFlags) => {
      await exportBundleCommand(run, flags);
    });
  program
    .command('import-adapter')
    .description('import a PEFT LoRA adapter folder (or a Hugging Face hub cache entry) into the Adapters list, checked against its base model')
    .argument('<dir|hub-id>', 'adapter folder (adapter_config.json + adapter_model.safetensors), a models--org--name cache folder, or org/name in the local hub cache')
    .option('--model <dir>', 'the base model folder to check it against (default: its base_model_name_or_path, when on this machine)')
    .option('--name <name>', 'name in the Adapters list')
    .option('--home <dir>', 'studio data folder (default: LORA_STUDIO_HOME or the OS app-data folder)')
    .option('--json', 'print the result as JSON')
    .action((path: string, flags: ImportAdapterFlags) => {
      importAdapterCommand(path, flags);
    });
}
