/**
 * A cpu thread-pool worker: runs its part of a product or of attention on shared memory, then counts it done in the
 * control block (thread-pool.ts) and wakes the thread waiting for it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runPoolPart } from './pool-parts.ts';
import { DONE, FAILED, READY, SLOT, type PoolTask } from './thread-pool.ts';

const port = parentPort;
const data = workerData as { ctrl: SharedArrayBuffer; slot: number };
if (!port || !data?.ctrl) throw new Error('engine/backend/cpu/thread-pool-worker.ts must run as a cpu pool worker');
const ctrl = new Int32Array(data.ctrl);
const base = data.slot * SLOT;

port.on('message', (task: PoolTask) => {
  try {
    runPoolPart(task.part);
  } catch (e) {
    process.stderr.write(`cpu pool worker ${data.slot}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    Atomics.store(ctrl, base + FAILED, 1);
  }
  Atomics.add(ctrl, base + DONE, 1);
  Atomics.notify(ctrl, base + DONE);
});
Atomics.store(ctrl, base + READY, 1);
Atomics.notify(ctrl, base + READY);
