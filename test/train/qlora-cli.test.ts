// `lora-studio train --base-weights`: the flag overrides run.json's train.baseWeights and is written into the run
// folder's run.json; a bad value names the flag and the choices; resuming with another base than the run trained on
// is refused naming both.
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
