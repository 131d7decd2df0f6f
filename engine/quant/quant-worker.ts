/**
 * Quantization worker (worker_thread entry): runs one lab job per 'quant.run' and posts QuantEvents. 'quant.cancel'
 * aborts it at the next matrix or layer boundary. Progress is throttled so a 30-layer model does not flood the
 * services with a message per matrix.
 */
import { parentPort } from 'node:worker_threads';
import type { QuantCommand, QuantEvent } from '../../common/protocol.ts';
import { errorDetails } from '../engine-error.ts';
import { runQuantJob, type QuantJobProgress } from './quant-job.ts';

const port = parentPort;
if (!port) throw new Error('engine/quant/quant-worker.ts must run in a worker_thread');

const post = (e: QuantEvent): void => port.postMessage(e);
const PROGRESS_INTERVAL_MS = 100;
let current: { jobId: string; controller: AbortController } | null = null;

async function run(cmd: Extract<QuantCommand, { type: 'quant.run' }>): Promise<void> {
  const controller = new AbortController();
  current = { jobId: cmd.jobId, controller };
  let lastPost = 0;
  let lastPhase = '';
  const onProgress = (p: QuantJobProgress): void => {
    const now = Date.now();
    const edge = p.phase !== lastPhase || p.done === p.total;
    if (!edge && now - lastPost < PROGRESS_INTERVAL_MS) return;
    lastPost = now;
    lastPhase = p.phase;
    post({ type: 'progress', jobId: cmd.jobId, ...p });
  };
  try {
    const report = await runQuantJob(cmd.request, { onProgress, signal: controller.signal });
    post({ type: 'done', jobId: cmd.jobId, report });
  } catch (e) {
    const cancelled = controller.signal.aborted;
    post({ type: 'error', jobId: cmd.jobId, cancelled, ...errorDetails(e), ...(cancelled ? { message: 'cancelled' } : {}) });
  } finally {
    current = null;
  }
}

port.on('message', (cmd: QuantCommand) => {
  if (cmd.type === 'quant.cancel') {
    if (current?.jobId === cmd.jobId) current.controller.abort();
    return;
  }
  if (cmd.type === 'quant.run') {
    if (current) {
      post({ type: 'error', jobId: cmd.jobId, cancelled: false, message: `this quantization worker is already running job ${current.jobId}` });
      return;
    }
    void run(cmd);
    return;
  }
  post({ type: 'error', jobId: '', cancelled: false, message: `quant worker: unknown command ${JSON.stringify((cmd as { type?: unknown }).type)}` });
});

process.on('uncaughtException', (e) => post({ type: 'error', jobId: current?.jobId ?? '', cancelled: false, ...errorDetails(e) }));
process.on('unhandledRejection', (e) => post({ type: 'error', jobId: current?.jobId ?? '', cancelled: false, ...errorDetails(e) }));
