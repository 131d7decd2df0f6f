/**
 * LORA_STUDIO_CPU_NATIVE=0 (as where the addon is not built): the cpu backend runs the portable TypeScript ops, and
 * what the user sees says so — the backend info, the step backend's device, the Runs page's backend of a run trained
 * through the services ("cpu (portable, slow)") and the warning in its event log with the reason.
 */
process.env.LORA_STUDIO_CPU_NATIVE = '0';

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunSummary } from '../../common/protocol.ts';
import { cpuBackendInfo, cpuOps, nativeModelOps } from '../../engine/backend/cpu/cpu-ops.ts';
import { nativeStatus } from '../../engine/backend/cpu/native.ts';
import { loadModel } from '../../engine/io/hf-model.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR, ensureSample } from '../../engine/io/sample.ts';
import { tempStudios } from '../helpers/temp-studio.ts';

await ensureSample();
const { services } = tempStudios('lora-portable-');

test('with LORA_STUDIO_CPU_NATIVE=0 the cpu backend is the portable one and says why', () => {
  assert.equal(nativeStatus().native, null);
  assert.equal(nativeModelOps(), null);
  const info = cpuBackendInfo();
  assert.equal(info.native, false);
  assert.equal(info.label, 'cpu (portable, slow)');
  assert.match(info.reason ?? '', /turned off \(LORA_STUDIO_CPU_NATIVE=0\)/);
  assert.equal(cpuOps(loadModel(SAMPLE_MODEL_DIR)).name, 'portable, slow');
});

test('a run trained on the portable path shows "cpu (portable, slow)" as its backend, with the reason in its log', async () => {
  const s = services('portable');
  const started = await s.handle('runs.start', {
    config: { modelPath: SAMPLE_MODEL_DIR, datasetPath: SAMPLE_DATASET_PATH, lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'] }, train: { learningRate: 1e-3, steps: 2, batchSize: 2, maxSeqLen: 64, seed: 1 } },
  });
  await s.whenIdle();
  const run: RunSummary = await s.handle('runs.get', { id: started.id });
  assert.equal(run.state, 'completed', run.error ?? '');
  assert.equal(run.backend, 'cpu (portable, slow)');
  const events = await s.handle('runs.events', { id: run.id });
  const lines = events.map((e) => `${e.level}: ${e.message}`);
  assert.ok(
    lines.some((l) => /^warn: cpu backend on \d+ threads?.*: cpu \(portable, slow\), because turned off \(LORA_STUDIO_CPU_NATIVE=0\)/.test(l)),
    `no warning about the portable kernels in the run log:\n${lines.join('\n')}`,
  );
  assert.ok(lines.some((l) => l.startsWith('info: training on cpu (portable, slow):')), lines.join('\n'));
});
