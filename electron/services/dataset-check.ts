/**
 * The preflight's dataset check off the services' event loop: each run start prepares its dataset in a
 * worker_thread (engine/train/dataset-check-worker.ts), so requests, pushed metrics and running runs keep going
 * while a large file is tokenized; the worker keeps the result in the dataset cache for the engine.
 */
import type { DatasetCheckCommand, DatasetCheckReply } from '../../common/dataset-check.ts';
import { startWorkerModule } from '../../engine/engine-host.ts';
import { StudioError } from './errors.ts';
import { workerEntry } from './worker-handle.ts';

export function runDatasetCheck(cmd: DatasetCheckCommand): Promise<DatasetCheckReply> {
  const worker = startWorkerModule(workerEntry('../../engine/train/dataset-check-worker.ts', import.meta.url));
  return new Promise<DatasetCheckReply>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      fn();
    };
    const failed = (why: string): StudioError => new StudioError({ message: `checking the dataset failed: ${why}`, field: 'datasetPath', file: cmd.config.datasetPath });
    worker.on('message', (reply: DatasetCheckReply) => finish(() => resolve(reply)));
    worker.on('error', (e: Error) => finish(() => reject(failed(e.message))));
    worker.on('exit', (code) => finish(() => reject(failed(`the worker exited (code ${code})`))));
    worker.postMessage(cmd);
  });
}
