/**
 * How an exported bundle is started: which Accelerate configuration (one GPU, DDP, DeepSpeed ZeRO-2, FSDP), on how
 * many processes, with which LoRA dropout masks. One definition for the bundle's README (engine/export/bundle-files.ts),
 * the summary 'runs.exportBundle' answers with, and the export dialog (renderer ExportBundleDialog.tsx).
 */

/** Each launcher is the Accelerate configuration accelerate/<launcher>.yaml inside the bundle. */
export const BUNDLE_LAUNCHERS = ['single-gpu', 'multi-gpu', 'deepspeed-zero2', 'fsdp'] as const;
export type BundleLauncher = (typeof BUNDLE_LAUNCHERS)[number];

export const LAUNCHER_LABEL: Record<BundleLauncher, string> = {
  'single-gpu': 'One GPU',
  'multi-gpu': 'Several GPUs (DDP)',
  'deepspeed-zero2': 'DeepSpeed ZeRO-2',
  fsdp: 'FSDP',
};

/**
 * train.py's --dropout: 'torch' = PEFT's own nn.Dropout (fast; masks of its own, the same distribution), 'studio' =
 * the studio's masks drawn from its seeds (the run bit for bit as the studio would train it; pure Python, small models).
 */
export const BUNDLE_DROPOUT_MODES = ['torch', 'studio'] as const;
export type BundleDropoutMode = (typeof BUNDLE_DROPOUT_MODES)[number];

export const DROPOUT_MODE_LABEL: Record<BundleDropoutMode, string> = {
  torch: "PEFT's own dropout (fast)",
  studio: "The studio's dropout masks (identical run, small models)",
};

/** The most processes one launch line asks for (a node's GPUs; Slurm scales past it). */
export const MAX_BUNDLE_PROCESSES = 1024;

export interface BundleLaunch {
  launcher: BundleLauncher;
  /** Processes (GPUs); always 1 for 'single-gpu'. */
  processes: number;
  dropout: BundleDropoutMode;
}

/** What the CLI and the service use when nothing is chosen: 8 GPUs with DDP, PEFT's dropout. */
export const DEFAULT_BUNDLE_LAUNCH: BundleLaunch = { launcher: 'multi-gpu', processes: 8, dropout: 'torch' };

export function launcherConfigFile(launcher: BundleLauncher): string {
  return `accelerate/${launcher}.yaml`;
}

/** The command, run inside the bundle folder, that trains it as chosen. */
export function launchCommand(l: BundleLaunch): string {
  const processes = l.launcher === 'single-gpu' ? '' : ` --num_processes ${l.processes}`;
  const dropout = l.dropout === 'torch' ? '' : ` --dropout ${l.dropout}`;
  return `accelerate launch --config_file ${launcherConfigFile(l.launcher)}${processes} train.py${dropout}`;
}

export const BUNDLE_INCLUDE_MODEL = ['auto', 'always', 'never'] as const;
/** Copy the base model into the bundle: 'auto' when it is small (≤ 64 MiB), or always, or never. */
export type BundleIncludeModel = (typeof BUNDLE_INCLUDE_MODEL)[number];
