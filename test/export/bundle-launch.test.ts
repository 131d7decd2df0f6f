/**
 * The launch an export puts first (launcher, processes, dropout masks — the export dialog's and the CLI's choices):
 * recorded in bundle.json, first in the README and the summary; every command the studio shows for a bundle is read
 * by accelerate's own `accelerate launch` parser and config loader and by the bundle's train.py, so a user can paste
 * it as it is; and bad choices are refused naming the field (services) or the flag (CLI).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { BUNDLE_DROPOUT_MODES, BUNDLE_LAUNCHERS, launchCommand, type BundleLaunch } from '../../common/bundle-launch.ts';
import { RunConfigSchema } from '../../common/protocol.ts';
import { exportBundleCommand } from '../../host/cli/bundle.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import { runPython } from '../helpers/python.ts';
import { refusal, tempStudios } from '../helpers/temp-studio.ts';

const dir = mkdtempSync(join(tmpdir(), 'bundle-launch-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const sample = await ensureSample();
const runJson = join(dir, 'run.json');
writeFileSync(
  runJson,
  JSON.stringify(
    RunConfigSchema.parse({
      name: 'launch-test',
      modelPath: sample.modelDir,
      datasetPath: sample.datasetPath,
      lora: { r: 2, alpha: 4, dropout: 0.1, targets: ['q_proj'] },
      train: { learningRate: 1e-3, steps: 2, batchSize: 2, maxSeqLen: 64 },
    }),
  ),
);
const quiet = { stdout: { write: () => true }, stderr: { write: () => true } };
const bundle = join(dir, 'bundle');

test('export-bundle --launcher fsdp --processes 2 --dropout studio: bundle.json, the README and the summary put that launch first', async () => {
  const summary = await exportBundleCommand(runJson, { out: bundle, launcher: 'fsdp', processes: '2', dropout: 'studio' }, quiet);
  const chosen: BundleLaunch = { launcher: 'fsdp', processes: 2, dropout: 'studio' };
  assert.deepEqual(summary.chosenLaunch, chosen);
  const command = 'accelerate launch --config_file accelerate/fsdp.yaml --num_processes 2 train.py --dropout studio';
  assert.equal(summary.launch, `cd ${JSON.stringify(bundle)} && ${command}`);
  assert.deepEqual((JSON.parse(readFileSync(join(bundle, 'bundle.json'), 'utf8')) as { launch: unknown }).launch, chosen);
  const readme = readFileSync(join(bundle, 'README.md'), 'utf8');
  assert.ok(readme.includes(`As chosen at export: \`${command}\``), 'the README starts its launch section with the chosen command');
  for (const launcher of BUNDLE_LAUNCHERS) {
    const line = launchCommand({ launcher, processes: 8, dropout: 'torch' });
    assert.ok(readme.includes(line), `the README lists ${line}`);
  }
  assert.equal(summary.files.filter((f) => f.startsWith('accelerate/') && f.endsWith('.yaml')).length, BUNDLE_LAUNCHERS.length, 'one configuration per launcher');
});

test('every command the studio shows is read by accelerate launch and by train.py as it says', async () => {
  const launches: BundleLaunch[] = BUNDLE_LAUNCHERS.flatMap((launcher) => BUNDLE_DROPOUT_MODES.map((dropout) => ({ launcher, processes: 3, dropout })));
  const read = JSON.parse(runPython('launch_command_check.py', [bundle, JSON.stringify(launches.map(launchCommand))]).trim().split('\n').pop() ?? '') as {
    command: string;
    config_file: string;
    distributed_type: string;
    num_processes: number;
    training_script: string;
    dropout: string;
  }[];
  const kind = { 'single-gpu': 'NO', 'multi-gpu': 'MULTI_GPU', 'deepspeed-zero2': 'DEEPSPEED', fsdp: 'FSDP' } as const;
  assert.equal(read.length, launches.length);
  launches.forEach((l, i) => {
    const r = read[i];
    assert.equal(r.config_file, `accelerate/${l.launcher}.yaml`, r.command);
    assert.equal(r.distributed_type, kind[l.launcher], r.command);
    assert.equal(r.num_processes, l.launcher === 'single-gpu' ? 1 : 3, r.command);
    assert.equal(r.training_script, 'train.py', r.command);
    assert.equal(r.dropout, l.dropout, r.command);
  });
});

test('bad launch choices: the services name the field, the CLI the flag', async () => {
  const { services } = tempStudios('bundle-launch-services-');
  const s = services('studio');
  const cases: [Record<string, unknown>, string, string][] = [
    [{ launcher: 'mpi' }, 'launcher', 'launcher must be one of single-gpu, multi-gpu, deepspeed-zero2, fsdp'],
    [{ processes: 0 }, 'processes', 'processes must be at least 1'],
    [{ processes: 2.5 }, 'processes', 'processes must be a whole number'],
    [{ processes: null }, 'processes', 'processes must be a number'],
    [{ dropout: 'numpy' }, 'dropout', 'dropout must be one of torch, studio'],
  ];
  for (const [params, field, message] of cases) {
    const e = await refusal(() => s.handle('runs.exportBundle', { id: 'some-run', ...params }));
    assert.deepEqual(e.info.fieldErrors, [{ field, message }], JSON.stringify(params));
  }

  await assert.rejects(exportBundleCommand(runJson, { out: join(dir, 'x1'), launcher: 'mpi' }, quiet), { message: '--launcher must be one of single-gpu, multi-gpu, deepspeed-zero2, fsdp, got "mpi"' });
  await assert.rejects(exportBundleCommand(runJson, { out: join(dir, 'x2'), processes: 'eight' }, quiet), { message: '--processes must be a whole number from 1 to 1024, got "eight"' });
  await assert.rejects(exportBundleCommand(runJson, { out: join(dir, 'x3'), dropout: 'numpy' }, quiet), { message: '--dropout must be one of torch, studio, got "numpy"' });
});
