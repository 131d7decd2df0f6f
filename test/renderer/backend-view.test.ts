// The Train form's Compute settings: what the backend line says for each choice and probe, and that the choices
// reach the RunConfig the services validate (backend, precision, gradient checkpointing).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeBackends } from '../../engine/train/backend-select.ts';
import { backendOptionLabel, backendView } from '../../renderer/src/components/backend-view.ts';
import { checkForm, defaultForm } from '../../renderer/src/stores/form.ts';

const rtx = describeBackends({ available: true, name: 'nvidia / ada / NVIDIA GeForce RTX 4090', error: null, software: false });
const llvmpipe = describeBackends({ available: true, name: 'mesa / software / llvmpipe', error: null, software: true });
const none = describeBackends({ available: false, name: null, error: 'no WebGPU adapter', software: false });

test('auto names the backend a run will use and the adapter', () => {
  assert.deepEqual(backendView('auto', rtx), { resolved: 'webgpu', line: 'Auto → WebGPU on nvidia / ada / NVIDIA GeForce RTX 4090', error: null, warning: null });
  const soft = backendView('auto', llvmpipe);
  assert.equal(soft.resolved, 'cpu');
  assert.match(soft.line, /^Auto → CPU — software adapter/);
  const absent = backendView('auto', none);
  assert.equal(absent.resolved, 'cpu');
  assert.equal(absent.line, 'Auto → CPU — no WebGPU adapter (no WebGPU adapter)');
  assert.equal(backendView('auto', null).resolved, null, 'not known before the probe answers');
});

test('explicit WebGPU: the adapter, a warning on a software one, an error without one; CPU needs no probe', () => {
  assert.deepEqual(backendView('webgpu', rtx), { resolved: 'webgpu', line: 'WebGPU on nvidia / ada / NVIDIA GeForce RTX 4090', error: null, warning: null });
  assert.match(backendView('webgpu', llvmpipe).warning ?? '', /slower than on the CPU backend/);
  const missing = backendView('webgpu', none);
  assert.equal(missing.resolved, null);
  assert.match(missing.error ?? '', /no WebGPU adapter .*choose Auto or CPU/);
  assert.equal(backendView('cpu', null).resolved, 'cpu');
  assert.equal(backendOptionLabel('webgpu', none), 'WebGPU (unavailable)');
  assert.equal(backendOptionLabel('webgpu', rtx), 'WebGPU');
  assert.equal(backendOptionLabel('auto', none), 'Auto');
});

test('the form sends backend, precision and checkpointing; the app defaults to auto', () => {
  const f = defaultForm();
  const d = checkForm(f, '/m', '/d.jsonl');
  assert.ok(d.ok);
  assert.equal(d.config.backend, 'auto');
  assert.equal(d.config.train.precision, 'fp32');
  assert.equal(d.config.train.gradientCheckpointing, false);
  assert.equal(d.config.train.baseWeights, 'f32');
  const c = checkForm({ ...f, compute: { backend: 'webgpu', precision: 'fp16', gradientCheckpointing: true, baseWeights: 'f16' } }, '/m', '/d.jsonl');
  assert.ok(c.ok);
  assert.equal(c.config.backend, 'webgpu');
  assert.equal(c.config.train.precision, 'fp16');
  assert.equal(c.config.train.gradientCheckpointing, true);
  assert.equal(c.config.train.baseWeights, 'f16');
});
