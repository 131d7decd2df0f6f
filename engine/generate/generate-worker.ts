/**
 * Generation worker (worker_thread entry) for the playground: runs one job per 'generate.run' and posts
 * GenerateEvents. The cpu decoder is a synchronous loop, so cancelling goes through a shared flag it reads at every
 * token rather than through a message it could not receive until the end. The model stays loaded between jobs.
 */
import { parentPort } from 'node:worker_threads';
import type { GenerateCommand, GenerateEvent } from '../../common/protocol.ts';
import { errorDetails } from '../engine-error.ts';
import { PlaygroundEngine } from './playground-job.ts';

const port = parentPort;
if (!port) throw new Error('engine/generate/generate-worker.ts must run in a worker_thread');

const post = (e: GenerateEvent): void => port.postMessage(e);
const engine = new PlaygroundEngine();
let current: string | null = null;

async function run(cmd: GenerateCommand): Promise<void> {
  current = cmd.jobId;
  const flag = new Int32Array(cmd.cancelFlag);
  const cancelled = (): boolean => Atomics.load(flag, 0) !== 0;
  try {
    const r = await engine.run(cmd.request, {
      started: (info) => post({ type: 'started', jobId: cmd.jobId, ...info }),
      output: (o) => post({ type: 'output', jobId: cmd.jobId, ...o }),
      cancelled,
    });
    post({ type: 'ended', jobId: cmd.jobId, cancelled: r.cancelled, error: null });
  } catch (e) {
    post({ type: 'ended', jobId: cmd.jobId, cancelled: cancelled(), error: errorDetails(e) });
  } finally {
    current = null;
  }
}

port.on('message', (cmd: GenerateCommand) => {
  if (cmd.type !== 'generate.run') {
    post({ type: 'ended', jobId: '', cancelled: false, error: { message: `generate worker: unknown command ${JSON.stringify((cmd as { type?: unknown }).type)}` } });
    return;
  }
  if (current) {
    post({ type: 'ended', jobId: cmd.jobId, cancelled: false, error: { message: `this generation worker is already running job ${current}` } });
    return;
  }
  void run(cmd);
});

process.on('uncaughtException', (e) => post({ type: 'ended', jobId: current ?? '', cancelled: false, error: errorDetails(e) }));
process.on('unhandledRejection', (e) => post({ type: 'ended', jobId: current ?? '', cancelled: false, error: errorDetails(e) }));
