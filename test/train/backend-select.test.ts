// RunConfig.backend → the backend a run uses: auto skips software adapters, explicit webgpu without an adapter is an
// error naming the `backend` field, and what the services tell the UI ('backends.probe') follows the same policy.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BackendUnavailableError, describeBackends, resolveBackend, selectBackend, type AdapterProbe } from '../../engine/train/backend-select.ts';

const hardware: AdapterProbe = { available: true, name: 'nvidia / ada / NVIDIA GeForce RTX 4090', error: null, software: false };
const llvmpipe: AdapterProbe = { available: true, name: 'mesa / software / llvmpipe (LLVM 15.0.6)', error: null, software: true };
const none: AdapterProbe = { available: false, name: null, error: 'no WebGPU adapter', software: false };

test('auto: webgpu on a hardware adapter, cpu on a software one or none', () => {
  assert.deepEqual(resolveBackend('auto', hardware), { backend: 'webgpu', adapterName: hardware.name, reason: `auto: WebGPU adapter ${hardware.name}` });
  const soft = resolveBackend('auto', llvmpipe);
  assert.equal(soft.backend, 'cpu');
  assert.equal(soft.adapterName, null);
  assert.match(soft.reason, /llvmpipe.* is a software adapter/);
  const absent = resolveBackend('auto', none);
  assert.equal(absent.backend, 'cpu');
  assert.match(absent.reason, /no WebGPU adapter/);
});

test('explicit choices: cpu always; webgpu on any adapter (software included), none is an error naming the field', () => {
  for (const p of [hardware, llvmpipe, none]) assert.equal(resolveBackend('cpu', p).backend, 'cpu');
  assert.equal(resolveBackend('webgpu', hardware).adapterName, hardware.name);
  const soft = resolveBackend('webgpu', llvmpipe);
  assert.equal(soft.backend, 'webgpu');
  assert.match(soft.reason, /software adapter/);
  assert.throws(
    () => resolveBackend('webgpu', none),
    (e: unknown) => e instanceof BackendUnavailableError && e.field === 'backend' && /^backend: webgpu was chosen, but this machine has no WebGPU adapter \(no WebGPU adapter\)/.test(e.message),
  );
});

test('selectBackend does not probe for cpu; passes the probe to the policy otherwise', async () => {
  let probes = 0;
  const probe = async (): Promise<AdapterProbe> => {
    probes++;
    return llvmpipe;
  };
  assert.equal((await selectBackend('cpu', probe)).backend, 'cpu');
  assert.equal(probes, 0);
  assert.equal((await selectBackend('auto', probe)).backend, 'cpu');
  assert.equal((await selectBackend('webgpu', probe)).backend, 'webgpu');
  assert.equal(probes, 2);
});

test('describeBackends: what the Train form shows', () => {
  assert.deepEqual(describeBackends(hardware), {
    auto: 'webgpu',
    backends: [
      { id: 'cpu', available: true, name: 'CPU', reason: null },
      { id: 'webgpu', available: true, name: hardware.name, reason: null, software: false },
    ],
  });
  const soft = describeBackends(llvmpipe);
  assert.equal(soft.auto, 'cpu');
  assert.equal(soft.backends[1].available, true);
  assert.match(soft.backends[1].reason ?? '', /software adapter/);
  assert.deepEqual(describeBackends(none).backends[1], { id: 'webgpu', available: false, name: null, reason: 'no WebGPU adapter' });
});
