/**
 * One training benchmark case (run by bench.ts in a child process): load a random-weight model of a real shape,
 * run `steps` LoRA training steps (forward + backward + AdamW) and print one JSON row with tokens/s, step time and
 * peak RSS. The first step is a warm-up and is not timed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../engine/io/hf-model.ts';
import { newLora, forEachPair } from '../engine/model/lora.ts';
import { lossAndGrads, countParameters } from '../engine/model/llama.ts';
import type { Batch, FloatArray, LoraConfig } from '../engine/model/types.ts';
import { AdamW } from '../engine/train/adamw.ts';
import { Rng } from '../engine/util/rng.ts';
import { SHAPES, type ShapeName } from './shapes.ts';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'cpu' },
    shape: { type: 'string', default: 'tiny' },
    seq: { type: 'string', default: '128' },
    batch: { type: 'string', default: '1' },
    steps: { type: 'string', default: '3' },
    precision: { type: 'string', default: 'fp32' },
    checkpointing: { type: 'boolean', default: false },
    'make-only': { type: 'boolean', default: false },
  },
});
const shape = values.shape as ShapeName;
const spec = SHAPES[shape];
const dir = join(tmpdir(), 'lora-studio-bench', shape);

if (values['make-only']) {
  const { writeRandomModel } = await import('../engine/io/make-model.ts');
  writeRandomModel(dir, spec.hf, { seed: 1, dtype: 'F16' });
  process.exit(0);
}
if (!existsSync(join(dir, 'config.json'))) {
  // Made in its own process so the generator's memory does not count in this case's peak RSS.
  const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1], '--shape', shape, '--make-only'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`could not make the ${shape} model in ${dir}`);
}

if (values.backend !== 'cpu') {
  const { benchWebgpu } = await import('./webgpu-bench.ts');
  const row = await benchWebgpu({ shape, seq: Number(values.seq), batch: Number(values.batch), steps: Number(values.steps), precision: values.precision === 'fp16' ? 'fp16' : 'fp32', checkpointing: values.checkpointing ?? false, modelDir: dir });
  console.log(JSON.stringify({ bench: 'train', backend: 'webgpu', shape, ...row }));
  process.exit(0);
}
if (values.precision !== 'fp32') throw new Error('the cpu backend trains in fp32 only');

const model = loadModel(dir, { dtype: Float32Array });
const cfg = model.config;
const loraCfg: LoraConfig = { r: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], rslora: false };
const lora = newLora(cfg, loraCfg, new Rng(1), Float32Array);
const params: FloatArray[] = [];
forEachPair(lora, (_t, _l, p) => params.push(p.A, p.B));
const opt = new AdamW(params, {});

const B = Number(values.batch);
const T = Number(values.seq);
const rng = new Rng(2);
const inputIds = new Int32Array(B * T).map(() => rng.int(cfg.vocabSize));
const batch: Batch = { batchSize: B, seqLen: T, inputIds, labels: inputIds.slice() };

const steps = Math.max(2, Number(values.steps));
const times: number[] = [];
let loss = 0;
for (let s = 0; s < steps; s++) {
  const t0 = performance.now();
  const r = lossAndGrads(model, lora, batch, { training: true, checkpointing: values.checkpointing });
  const grads: FloatArray[] = [];
  if (r.grads) forEachPair(r.grads, (_t, _l, p) => grads.push(p.A, p.B));
  opt.step(grads, 1e-4);
  loss = r.loss;
  if (s > 0) times.push(performance.now() - t0);
}
const stepMs = times.reduce((a, b) => a + b, 0) / times.length;
const tokens = B * T;
console.log(
  JSON.stringify({
    bench: 'train',
    backend: 'cpu',
    shape,
    params: countParameters(model),
    batch: B,
    seq: T,
    checkpointing: values.checkpointing ?? false,
    stepMs,
    tokensPerSecond: (tokens / stepMs) * 1000,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    loss,
  }),
);
