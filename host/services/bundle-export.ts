/**
 * 'runs.exportBundle': a run's settings → an Accelerate + PEFT bundle folder (engine/export/bundle.ts), written in
 * a worker_thread so tokenizing a large dataset never stalls the services. The bundle goes into a new sub-folder of
 * the destination (named after the run, never over an existing folder), else under <home>/bundles/.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { DEFAULT_BUNDLE_LAUNCH, type BundleLaunch } from '../../common/bundle-launch.ts';
import type { BundleCommand, BundleEvent, BundleIncludeModel, BundleSummary, RunSummary } from '../../common/protocol.ts';
import { safeFileName } from './adapter-store.ts';
import { StudioError } from './errors.ts';
import { newId } from './ids.ts';
import { runWorkerJob, startWorkerHandle, workerEntry, type WorkerHandle } from './worker-handle.ts';

export type BundleWorkerHandle = WorkerHandle<BundleCommand, BundleEvent>;

export function startBundleWorker(): BundleWorkerHandle {
  return startWorkerHandle<BundleCommand, BundleEvent>(workerEntry('../../engine/export/bundle-worker.ts', import.meta.url), undefined, (e) => ({
    type: 'error',
    jobId: '',
    message: `bundle export worker failed: ${e.message}`,
  }));
}

export interface ExportRunBundle {
  run: RunSummary;
  /** A folder on the services' disk; the bundle is a new sub-folder of it. Default: <home>/bundles. */
  destination?: string;
  includeModel?: BundleIncludeModel;
  launch?: Partial<BundleLaunch>;
  bundlesDir: string;
  studioVersion: string;
  startWorker?: () => BundleWorkerHandle;
}

/** A new folder name under `parent`: "<run name>-bundle", then "… (2)", "… (3)". */
function freshFolder(parent: string, base: string): string {
  let target = join(parent, base);
  for (let n = 2; existsSync(target); n++) target = join(parent, `${base} (${n})`);
  return target;
}

export async function exportRunBundle(o: ExportRunBundle): Promise<BundleSummary> {
  const parent = o.destination ?? o.bundlesDir;
  if (o.destination !== undefined) {
    if (!isAbsolute(o.destination)) throw new StudioError({ message: `choose a folder to write the bundle into (got the relative path ${JSON.stringify(o.destination)})`, field: 'destination' });
    if (!existsSync(o.destination) || !statSync(o.destination).isDirectory()) throw new StudioError({ message: `${o.destination} is not an existing folder`, field: 'destination' });
  } else mkdirSync(parent, { recursive: true });
  const outDir = freshFolder(parent, `${safeFileName(o.run.name, o.run.id)}-bundle`);
  return runWorkerJob((o.startWorker ?? startBundleWorker)(), { type: 'bundle.export', jobId: newId('bundle'), config: o.run.config, outDir, options: { runId: o.run.id, name: o.run.name, includeModel: o.includeModel ?? 'auto', studioVersion: o.studioVersion, launch: { ...DEFAULT_BUNDLE_LAUNCH, ...o.launch } } }, {
    done: (e) => (e.type === 'done' ? e.summary : undefined),
    describe: (message) => `cannot export the run ${o.run.name}: ${message}`,
    keepField: false,
    exited: (code) => `the bundle export worker stopped (exit code ${code}) before the bundle was written`,
  });
}
