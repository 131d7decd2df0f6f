/**
 * Worker entry that probes the WebGPU adapter and posts what it found, then exits. The services probe here rather
 * than in their own thread: creating the Dawn instance loads the GPU driver, which can take a while and must not
 * stall the UI's requests, and the services never hold a device of their own.
 */
import { parentPort } from 'node:worker_threads';
import { probeAdapter } from './backend/webgpu/device.ts';

const port = parentPort;
if (!port) throw new Error('engine/backend-probe-worker.ts must run in a worker_thread');
port.postMessage(await probeAdapter());
// Dawn keeps native handles alive; the answer is out, so the thread can go.
process.exit(0);
