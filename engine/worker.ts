/**
 * Engine worker (worker_thread entry): receives EngineCommands from the services, trains, and posts EngineEvents.
 * One run at a time; 'stop' is honoured between steps. Every failure becomes an 'error' event.
 */
import { parentPort } from 'node:worker_threads';
import type { EngineCommand, EngineEvent } from '../common/protocol.ts';
import { errorDetails } from './engine-error.ts';
import { runTraining } from './train/run-training.ts';

const port = parentPort;
if (!port) throw new Error('engine/worker.ts must run in a worker_thread');

const post = (e: EngineEvent): void => port.postMessage(e);
let stopRequest: { save: boolean } | null = null;
let busy = false;

async function train(cmd: Extract<EngineCommand, { type: 'train' }>): Promise<void> {
  busy = true;
  stopRequest = null;
  try {
    await runTraining(cmd, { post, shouldStop: () => stopRequest });
  } catch (e) {
    post({ type: 'error', runId: cmd.runId, ...errorDetails(e) });
  } finally {
    busy = false;
  }
}

port.on('message', (cmd: EngineCommand) => {
  if (cmd.type === 'stop') {
    stopRequest = { save: cmd.save };
    return;
  }
  if (cmd.type === 'train') {
    if (busy) {
      post({ type: 'error', runId: cmd.runId, message: 'this engine is already running a training run' });
      return;
    }
    void train(cmd);
    return;
  }
  post({ type: 'error', runId: '', message: `engine: unknown command ${JSON.stringify((cmd as { type?: unknown }).type)}` });
});

// A bug that escapes the run must still reach the services as an event.
process.on('uncaughtException', (e) => post({ type: 'error', runId: '', ...errorDetails(e) }));
process.on('unhandledRejection', (e) => post({ type: 'error', runId: '', ...errorDetails(e) }));
