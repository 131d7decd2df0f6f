/**
 * A QLoRA run as the services see it: starting one whose format cannot hold a tensor is refused before the run
 * exists, naming the field and the tensor; and the Playground finds the base an adapter was trained on from its
 * run's run.json, in the studio's layout (adapters/<id> + adapters/<id>.json → runs/<runId>/run.json) and in a
 * `lora-studio train` folder (<out>/adapter next to <out>/run.json).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_RUN_CONFIG } from '../../common/protocol.ts';
import { trainingBaseWeights } from '../../engine/io/base-weights.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { refusal, tempStudios } from '../helpers/temp-studio.ts';

const { tmp, services } = tempStudios('qlora-preflight-');

test('runs.start with a base format the model cannot hold is refused, naming train.baseWeights and the tensor', async () => {
  const s = services('start');
  const config = {
    modelPath: SAMPLE_MODEL_DIR,
    datasetPath: SAMPLE_DATASET_PATH,
    lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj'] },
    train: { learningRate: 1e-3, steps: 2, batchSize: 1, maxSeqLen: 96, baseWeights: 'q8_0' },
  };
  const e = await refusal(() => s.handle('runs.start', { config }));
  assert.equal(e.info.field, 'train.baseWeights');
  assert.match(e.message, /tensor 'model\.layers\.0\.mlp\.down_proj\.weight' \[64, 176\] cannot be held as q8_0/);
  assert.deepEqual(await s.handle('runs.list', {}), [], 'no run was created');
});

test('the Playground reads the base an adapter was trained on from its run.json', () => {
  const model = join(tmp, 'model.gguf');
  // The studio: adapters/<id> with adapters/<id>.json naming the run, runs/<runId>/run.json holding { config }.
  const home = join(tmp, 'home');
  mkdirSync(join(home, 'adapters', 'a1'), { recursive: true });
  mkdirSync(join(home, 'runs', 'run-7'), { recursive: true });
  writeFileSync(join(home, 'adapters', 'a1.json'), JSON.stringify({ id: 'a1', runId: 'run-7' }));
  writeFileSync(join(home, 'runs', 'run-7', 'run.json'), JSON.stringify({ id: 'run-7', state: 'completed', config: { ...DEFAULT_RUN_CONFIG, modelPath: model, datasetPath: 'd', train: { ...DEFAULT_RUN_CONFIG.train, baseWeights: 'as-stored' } } }));
  assert.deepEqual(trainingBaseWeights(join(home, 'adapters', 'a1'), model), { baseWeights: 'as-stored', keep: null });
  assert.equal(trainingBaseWeights(join(home, 'adapters', 'a1'), join(tmp, 'other.gguf')), null, 'trained on another model: no opinion');
  // `lora-studio train --out o`: o/run.json is the RunConfig itself; an old one says frozenWeightsF16.
  const out = join(tmp, 'cli-run');
  mkdirSync(join(out, 'adapter'), { recursive: true });
  writeFileSync(join(out, 'run.json'), JSON.stringify({ ...DEFAULT_RUN_CONFIG, modelPath: model, datasetPath: 'd', train: { ...DEFAULT_RUN_CONFIG.train, frozenWeightsF16: true } }));
  assert.deepEqual(trainingBaseWeights(join(out, 'adapter'), model), { baseWeights: 'f16', keep: null });
  assert.equal(trainingBaseWeights(join(tmp, 'nowhere', 'adapter'), model), null);
});
