/**
 * Bundle-export worker (worker_thread entry): one 'bundle.export' per worker. Preparing a large dataset tokenizes
 * every record, which would stall the services' event loop (the desktop window, the web host) if it ran there.
 */
import { parentPort } from 'node:worker_threads';
import type { BundleCommand, BundleEvent } from '../../common/protocol.ts';
import { errorDetails } from '../engine-error.ts';
import { exportBundle } from './bundle.ts';

const port = parentPort;
if (!port) throw new Error('engine/export/bundle-worker.ts must run in a worker_thread');
const post = (e: BundleEvent): void => port.postMessage(e);
let jobId = '';

port.on('message', (cmd: BundleCommand) => {
  if (cmd.type !== 'bundle.export') {
    post({ type: 'error', jobId: '', message: `bundle worker: unknown command ${JSON.stringify((cmd as { type?: unknown }).type)}` });
    return;
  }
  jobId = cmd.jobId;
  exportBundle(cmd.config, cmd.outDir, { ...cmd.options, onProgress: (message) => post({ type: 'progress', jobId: cmd.jobId, message }) }).then(
    (summary) => post({ type: 'done', jobId: cmd.jobId, summary }),
    (e: unknown) => post({ type: 'error', jobId: cmd.jobId, ...errorDetails(e) }),
  );
});

process.on('uncaughtException', (e) => post({ type: 'error', jobId, ...errorDetails(e) }));
process.on('unhandledRejection', (e) => post({ type: 'error', jobId, ...errorDetails(e) }));
