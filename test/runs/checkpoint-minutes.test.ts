/**
 * Checkpoints every M minutes (besides every N steps): the trainer writes one whenever that much time passed since
 * the last, never more often, and not at all when the interval is 0. (A checkpoint that cannot be written is
 * disk-full.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { RunConfigSchema } from '../../common/protocol.ts';
import { countParameters } from '../../engine/model/llama.ts';
import type { TrainingExample } from '../../engine/model/types.ts';
import { trainerSettings } from '../../engine/train/run-config.ts';
import { Trainer } from '../../engine/train/trainer.ts';
import { tinyWeights } from '../helpers/tiny-weights.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lora-ckmin-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const model = tinyWeights({ family: 'llama', vocab: 64, hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2, ArrayCtor: Float32Array });
const examples: TrainingExample[] = Array.from({ length: 8 }, (_, e) => {
  const ids = Array.from({ length: 48 }, (_, t) => 1 + ((e * 13 + t * 5) % 63));
  return { inputIds: ids, labels: ids.slice() };
});

function trainer(runDir: string, train: Record<string, unknown>, onCheckpoint?: (step: number) => void): Trainer {
  const config = RunConfigSchema.parse({ modelPath: 'm', datasetPath: 'd', lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'] }, train: { learningRate: 1e-3, steps: 60, batchSize: 4, maxSeqLen: 48, ...train } });
  return new Trainer({ model, settings: trainerSettings(config), train: examples, validation: [], padTokenId: 0, runDir, onCheckpoint: (step) => onCheckpoint?.(step) }, countParameters(model));
}

test('every M minutes: spaced by at least M, none when M is 0', async () => {
  const minutes = 0.001; // 60 ms
  const at: { step: number; ms: number }[] = [];
  const t0 = performance.now();
  const result = await trainer(join(tmp, 'timed'), { checkpointEveryMinutes: minutes, steps: 200 }, (step) => at.push({ step, ms: performance.now() - t0 })).run();
  assert.equal(result.status, 'done');
  const elapsed = performance.now() - t0;
  assert.ok(at.length >= 1, `a ${elapsed.toFixed(0)} ms run wrote no checkpoint`);
  assert.ok(at.length <= Math.floor(elapsed / 60), `${at.length} checkpoints in ${elapsed.toFixed(0)} ms`);
  for (let i = 1; i < at.length; i++) {
    assert.ok(at[i].step > at[i - 1].step);
    assert.ok(at[i].ms - at[i - 1].ms >= 59, `checkpoints ${at[i - 1].step} and ${at[i].step} only ${(at[i].ms - at[i - 1].ms).toFixed(1)} ms apart`);
  }
  assert.ok(at[0].ms >= 59, 'the first one comes a full interval after the start');

  const none: number[] = [];
  await trainer(join(tmp, 'untimed'), {}, (step) => none.push(step)).run();
  assert.deepEqual(none, []);
});
