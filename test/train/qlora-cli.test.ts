// `lora-studio train --base-weights`: the flag overrides run.json's train.baseWeights and is written into the run
// folder's run.json; a bad value names the flag and the choices; resuming with another base than the run trained on
// is refused naming both; --keep-layers/--keep-as and --base-plan (the quantization lab's mixed plan) likewise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSample } from '../../engine/io/sample.ts';
import { repoRoot } from '../helpers/python.ts';

const dir = mkdtempSync(join(tmpdir(), 'qlora-cli-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const sample = await ensureSample();

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/lora-studio.mjs'), ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, LORA_STUDIO_FROM_SOURCE: '1' }, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const runJson = join(dir, 'run.json');
writeFileSync(
  runJson,
  JSON.stringify({
    modelPath: sample.modelDir,
    datasetPath: sample.datasetPath,
    lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'] },
    train: { learningRate: 1e-2, steps: 2, batchSize: 2, maxSeqLen: 64 },
    backend: 'cpu',
  }),
);

test('train --base-weights f16: the run trains on it and its run.json records it', () => {
  const out = join(dir, 'f16');
  const r = cli(['train', runJson, '--out', out, '--base-weights', 'f16']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /base weights: f16/);
  assert.equal(JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).train.baseWeights, 'f16');
  // Resuming that folder on another base is refused, naming what it trained on.
  const again = cli(['train', runJson, '--out', out, '--resume', '--base-weights', 'nf4']);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /trained with base weights f16; resuming it with nf4 .* --base-weights f16/);
});

test('train --base-weights with an unknown value names the flag and every choice', () => {
  const r = cli(['train', runJson, '--out', join(dir, 'never'), '--base-weights', 'q3']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--base-weights must be one of f32, f16, as-stored, q8_0, q4_0, q4_1, nf4, int4-g128, got "q3"/);
});

test('train: a run.json asking for q4_0 on a model whose rows it cannot hold names the tensor and its shape', () => {
  const r = cli(['train', runJson, '--out', join(dir, 'q4'), '--base-weights', 'q4_0']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /tensor 'model\.layers\.0\.mlp\.down_proj\.weight' \[64, 176\] cannot be held as q4_0/);
});

test('train --base-weights nf4 --keep-layers 1 --keep-as f16: a mixed base, logged, in run.json; resuming without it names the flags', () => {
  const out = join(dir, 'mixed');
  const r = cli(['train', runJson, '--out', out, '--base-weights', 'nf4', '--keep-layers', '1', '--keep-as', 'f16']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /base weights: nf4 with layer 1 kept as f16/);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).train.baseWeightsKeep, { layers: [1], as: 'f16' });
  const again = cli(['train', runJson, '--out', out, '--resume', '--base-weights', 'nf4']);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /trained with base weights nf4 with layer 1 kept as f16; resuming it with nf4 would .* --base-weights nf4 --keep-layers 1 --keep-as f16/);
});

test('train --keep-layers: a layer the model lacks, a bad list, a base with no precision to keep — each named', () => {
  const beyond = cli(['train', runJson, '--out', join(dir, 'k1'), '--base-weights', 'nf4', '--keep-layers', '0,7']);
  assert.equal(beyond.status, 1);
  assert.match(beyond.stderr, /layer 7 cannot be kept: the model has 2 layers \(0 to 1\)/);
  const bad = cli(['train', runJson, '--out', join(dir, 'k2'), '--base-weights', 'nf4', '--keep-layers', '0,x']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--keep-layers: a layer must be a number \(got "0,x"\)/);
  const twice = cli(['train', runJson, '--out', join(dir, 'k3'), '--base-weights', 'nf4', '--keep-layers', '1,1']);
  assert.match(twice.stderr, /--keep-layers: a layer is named twice/);
  const floats = cli(['train', runJson, '--out', join(dir, 'k4'), '--base-weights', 'f16', '--keep-layers', '0']);
  assert.equal(floats.status, 1);
  assert.match(floats.stderr, /keeping layers at higher precision needs a base quantized at load .*every layer is already held as floats/);
});

test('train --base-plan: the quantization report\'s mixed plan sets the base and its kept layers; a plan in int8 is refused', () => {
  const report = join(dir, 'report.json');
  const plan = (base: string, high: string, keepLayers: number[]) => ({ base, high, keepLayers });
  writeFileSync(report, JSON.stringify({ version: 1, plans: [plan('int4-g128', 'q8_0', [0]), plan('nf4/on-quantized', 'f16/on-quantized', [1, 0])] }));
  const out = join(dir, 'planned');
  const r = cli(['train', runJson, '--out', out, '--base-weights', 'nf4', '--base-plan', report]);
  assert.equal(r.status, 0, r.stderr);
  const train = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).train;
  assert.equal(train.baseWeights, 'nf4');
  assert.deepEqual(train.baseWeightsKeep, { layers: [0, 1], as: 'f16' });
  writeFileSync(report, JSON.stringify({ version: 1, plans: [plan('nf4', 'int8', [0])] }));
  const refused = cli(['train', runJson, '--out', join(dir, 'never2'), '--base-plan', report]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /--base-plan .*report\.json: training cannot hold kept layers as int8/);
  writeFileSync(report, '{"nothing": 1}');
  assert.match(cli(['train', runJson, '--out', join(dir, 'never3'), '--base-plan', report]).stderr, /not a quantization report \(no "plans"\)/);
});
