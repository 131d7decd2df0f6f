/**
 * 'backends.probe' through the services, as the Train form asks it: the adapter is probed in a worker and the answer
 * agrees with a probe made here and with the engine's policy (engine/train/backend-select.ts); it is cached, and
 * `refresh` probes again. A probe that cannot answer becomes "webgpu unavailable" with the reason, never an error.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { probeAdapter } from '../../engine/backend/webgpu/device.ts';
import { resolveBackend, type AdapterProbe } from '../../engine/train/backend-select.ts';
import { BackendProbe, probeInWorker } from '../../host/services/backend-probe.ts';
import { createStudioServices } from '../../host/services/studio-services.ts';

const tmp = mkdtempSync(join(tmpdir(), 'backend-probe-'));
const services = createStudioServices({ home: join(tmp, 'home'), host: 'web' });
after(async () => {
  await services.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('backends.probe: cpu always, webgpu as this machine has it, auto as the engine will resolve it', async () => {
  const here = await probeAdapter();
  const r = await services.handle('backends.probe', {});
  assert.deepEqual(r.backends[0], { id: 'cpu', available: true, name: 'CPU', reason: null });
  const gpu = r.backends[1];
  assert.equal(gpu.id, 'webgpu');
  assert.equal(gpu.available, here.available);
  assert.equal(gpu.name, here.name);
  if (here.available) assert.equal(gpu.software, here.software);
  assert.equal(r.auto, resolveBackend('auto', here).backend);
  const info = await services.handle('app.info', {});
  assert.deepEqual(info.backends, ['cpu', 'webgpu']);
  await assert.rejects(services.handle('backends.probe', { refresh: 'yes' }), /Refresh: .*boolean/);
});

test('the probe runs once and is cached; refresh probes again; in a worker it gives what a probe here gives', async () => {
  let calls = 0;
  const answers: AdapterProbe[] = [
    { available: false, name: null, error: 'no WebGPU adapter', software: false },
    { available: true, name: 'amd / rdna3 / Radeon RX 7900 XTX', error: null, software: false },
  ];
  const p = new BackendProbe(async () => answers[Math.min(calls++, 1)]);
  assert.equal((await p.get()).auto, 'cpu');
  assert.equal((await p.get()).auto, 'cpu');
  assert.equal(calls, 1);
  const fresh = await p.get(true);
  assert.equal(calls, 2);
  assert.equal(fresh.auto, 'webgpu');
  assert.equal(fresh.backends[1].name, 'amd / rdna3 / Radeon RX 7900 XTX');
  assert.deepEqual(await probeInWorker(), await probeAdapter());
});
