/**
 * Model discovery in a worker_thread (entry): walking the stores and reading GGUF and safetensors headers touches
 * many files, so the services run it here and keep answering other requests meanwhile. Given the fingerprint of the
 * last answer, it first measures the folders' mtimes and says 'unchanged' when nothing moved.
 */
import { parentPort } from 'node:worker_threads';
import type { DiscoveryCommand, DiscoveryReply } from '../../common/models-discovery.ts';
import { discoverModels, discoveryFingerprint } from './model-discovery.ts';

const port = parentPort;
if (!port) throw new Error('engine/io/model-discovery-worker.ts must run in a worker_thread');

port.on('message', (cmd: DiscoveryCommand) => {
  const opts = { env: cmd.env, home: cmd.home };
  let reply: DiscoveryReply;
  try {
    const fingerprint = discoveryFingerprint(opts);
    if (cmd.previousFingerprint !== null && fingerprint === cmd.previousFingerprint) reply = { type: 'unchanged', id: cmd.id };
    else reply = { type: 'found', id: cmd.id, fingerprint, info: discoverModels(opts) };
  } catch (e) {
    reply = { type: 'failed', id: cmd.id, message: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply);
});
