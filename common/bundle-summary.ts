/**
 * A bundle written by 'runs.exportBundle' (engine/export/bundle.ts): the folder an Accelerate + PEFT cluster trains
 * as the studio would, and how it is launched. The TypeScript types in common/protocol.ts are inferred from these.
 */
import { z } from 'zod';
import { BUNDLE_DROPOUT_MODES, BUNDLE_LAUNCHERS, MAX_BUNDLE_PROCESSES } from './bundle-launch.ts';

const count = z.number().int().min(0);

/** How the bundle is started (common/bundle-launch.ts launchCommand turns it into the command). */
export const BundleLaunchSchema = z.object({
  launcher: z.enum(BUNDLE_LAUNCHERS),
  /** Processes (GPUs); always 1 for 'single-gpu'. */
  processes: z.number().int().min(1).max(MAX_BUNDLE_PROCESSES),
  dropout: z.enum(BUNDLE_DROPOUT_MODES),
});

export const BundleSummarySchema = z.object({
  /** The bundle folder on the services' disk. */
  path: z.string(),
  bundleId: z.string(),
  name: z.string(),
  steps: count,
  trainExamples: count,
  validationExamples: count,
  targetTokens: count,
  /** Whether the base model was copied into the bundle (model/). */
  modelIncluded: z.boolean(),
  /** Every file, relative to the bundle folder. */
  files: z.array(z.string()),
  /** The launch command as chosen at export (default 8 GPUs, DDP), from the bundle folder; the README lists the others. */
  launch: z.string(),
  chosenLaunch: BundleLaunchSchema,
});
