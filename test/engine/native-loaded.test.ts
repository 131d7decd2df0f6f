/**
 * The native cpu kernels are what the cpu backend really runs: loaded, on the best instruction set this CPU has,
 * named in the label the UI shows, and the op set a training step uses by default. Under CI=true this is the check
 * that CI never passes on the portable fallback by accident (scripts/test.mjs also stops when the build fails there).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cpuBackendInfo, cpuOps } from '../../engine/backend/cpu/cpu-ops.ts';
import { nativeStatus } from '../../engine/backend/cpu/native.ts';
import { configuredThreads } from '../../engine/backend/cpu/thread-pool.ts';
import { loadModel } from '../../engine/io/hf-model.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import { newLora } from '../../engine/model/lora.ts';
import { AdamW } from '../../engine/train/adamw.ts';
import { CpuStepBackend } from '../../engine/train/cpu-trainer-backend.ts';
import { loraTensors } from '../../engine/train/lora-params.ts';
import { Rng } from '../../engine/util/rng.ts';
import { tinyTrainerSettings } from '../helpers/tiny-trainer.ts';

const sampleDir = (await ensureSample()).modelDir;

test(`the native cpu kernels are loaded and used${process.env.CI === 'true' ? ' (CI=true)' : ''}`, () => {
  const st = nativeStatus();
  assert.ok(st.native, `the native cpu kernels did not load from ${st.path}: ${st.reason}`);
  const { isa, isas, threads } = st.native.info();
  assert.equal(threads, configuredThreads(), 'the addon runs the configured number of threads');
  // The dispatch picks the first (widest) instruction set the CPU runs; scalar only where nothing else is available.
  assert.equal(isa, isas[0], `the addon runs ${isa} although this CPU has ${isas.join(', ')}`);
  const info = cpuBackendInfo();
  assert.equal(info.native, true);
  assert.equal(info.label, `cpu (native ${isa}, ${threads} thread${threads === 1 ? '' : 's'})`);
  const model = loadModel(sampleDir);
  const ops = cpuOps(model);
  assert.equal(ops.name, `native ${isa}, ${threads} thread${threads === 1 ? '' : 's'}`);
  const lora = newLora(model.config, { r: 4, alpha: 8, dropout: 0, targets: ['q_proj'], rslora: false }, new Rng(1), Float32Array);
  const backend = new CpuStepBackend(model, lora, new AdamW(loraTensors(lora).map((t) => t.data)), tinyTrainerSettings(sampleDir, {}, {}));
  assert.equal(backend.deviceName, ops.name, 'a training step runs on the native kernels by default');
});
