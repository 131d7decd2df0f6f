// The CLI commands of this area, run as a user runs them (bin/lora-studio.mjs from sources): train, eval-loss,
// generate — outputs, exit codes and error messages that name the file, line or field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { DEFAULT_RUN_CONFIG } from '../../common/protocol.ts';
import type { MetricPoint } from '../../common/protocol.ts';
import { loadModel } from '../../engine/io/hf-model.ts';
import { loadAdapter, saveAdapter } from '../../engine/io/peft-adapter.ts';
import { newLora } from '../../engine/model/lora.ts';
import { Rng } from '../../engine/util/rng.ts';
import { withSafetensors } from '../../engine/io/safetensors.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import { loadTokenizer } from '../../engine/io/tokenizer.ts';
import { formatPrompt } from '../../engine/generate/prompt-format.ts';
import { generate } from '../../engine/generate/generate.ts';
import { repoRoot } from '../helpers/python.ts';

const dir = mkdtempSync(join(tmpdir(), 'cli-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const sample = await ensureSample();

function cli(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/lora-studio.mjs'), ...args], {
    encoding: 'utf8',
    cwd: dir,
    env: { ...process.env, LORA_STUDIO_FROM_SOURCE: '1', ...env },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('train <run.json> --out: one JSON MetricPoint per step on stdout, progress on stderr, a loadable adapter', () => {
  const runJson = join(dir, 'run.json');
  // paths relative to the run file
  writeFileSync(
    runJson,
    JSON.stringify({
      name: 'cli run',
      modelPath: relative(dir, sample.modelDir),
      datasetPath: relative(dir, sample.datasetPath),
      lora: { r: 4, alpha: 8, dropout: 0.05, targets: ['q_proj', 'v_proj'] },
      train: { learningRate: 1e-2, steps: 3, batchSize: 2, maxSeqLen: 128 },
    }),
  );
  const out = join(dir, 'out-run');
  const r = cli(['train', runJson, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 3, r.stdout);
  const points = lines.map((l) => JSON.parse(l) as MetricPoint);
  assert.deepEqual(points.map((p) => p.step), [1, 2, 3]);
  for (const p of points) {
    for (const k of ['loss', 'learningRate', 'tokens', 'tokensPerSecond', 'elapsedMs', 'gradNorm'] as const) assert.equal(typeof p[k], 'number', `${k} in ${JSON.stringify(p)}`);
  }
  assert.match(r.stderr, /step 3\/3 loss/);
  assert.ok(r.stderr.includes(`adapter: ${join(out, 'adapter')}`), r.stderr);
  const model = loadModel(sample.modelDir);
  const lora = loadAdapter(join(out, 'adapter'), model.config);
  assert.equal(lora.config.r, 4);
});

test('train: an invalid run config names the file and every bad field; exit code 1', () => {
  const bad = join(dir, 'bad-run.json');
  writeFileSync(bad, JSON.stringify({ ...DEFAULT_RUN_CONFIG, modelPath: 'm', datasetPath: 'd', lora: { ...DEFAULT_RUN_CONFIG.lora, r: 0 }, train: { ...DEFAULT_RUN_CONFIG.train, learningRate: -1 } }));
  const r = cli(['train', bad, '--out', join(dir, 'never')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad-run\.json: invalid run config/);
  assert.match(r.stderr, /lora\.r: rank must be at least 1/);
  assert.match(r.stderr, /train\.learningRate: learning rate must be greater than 0/);
  // Each line: the key path, the schema's message, the app's label, the value found and the allowed range.
  assert.ok(r.stderr.includes('  lora.r: rank must be at least 1 (Rank (r); got 0; allowed: a whole number from 1 to 1024)'), r.stderr);
  assert.ok(r.stderr.includes('  train.learningRate: learning rate must be greater than 0 (Learning rate; got -1; allowed: a number, above 0 and at most 1)'), r.stderr);
  const { learningRate: _lr, ...trainWithoutLr } = DEFAULT_RUN_CONFIG.train;
  void _lr;
  writeFileSync(
    bad,
    JSON.stringify({ ...DEFAULT_RUN_CONFIG, modelPath: 'm', datasetPath: 'd', lora: { ...DEFAULT_RUN_CONFIG.lora, dropout: 1 }, train: { ...trainWithoutLr, learning_rate: 1e-4, steps: 1e9, schedule: 'fast' } }),
  );
  const r3 = cli(['train', bad]);
  assert.equal(r3.status, 1);
  const lines = r3.stderr.split('\n');
  const line = (key: string) => lines.find((l) => l.startsWith(`  ${key}:`)) ?? `(no line for ${key} in:\n${r3.stderr})`;
  assert.equal(line('lora.dropout'), '  lora.dropout: dropout must be below 1 (Dropout; got 1; allowed: a number, at least 0 and below 1)');
  assert.equal(line('train.steps'), '  train.steps: steps must be at most 10,000,000 (Steps; got 1000000000; allowed: a whole number from 1 to 10,000,000)');
  assert.match(line('train.schedule'), /^ {2}train\.schedule: .* \(Learning-rate schedule; got "fast"; allowed: one of constant, linear, cosine\)$/);
  assert.match(line('train.learningRate'), /^ {2}train\.learningRate: .*\(Learning rate; missing; allowed: a number, above 0 and at most 1\)$/);
  assert.match(line('train.learning_rate'), /^ {2}train\.learning_rate: not a setting — did you mean learningRate\? \(train takes learningRate, steps, /);
  writeFileSync(bad, '{"modelPath": ');
  const r2 = cli(['train', bad]);
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /bad-run\.json: not valid JSON/);
});

test('eval-loss: text and token-id lines agree; fresh LoRA gradients (B = 0 ⇒ dA = 0, dB ≠ 0); clear errors', async () => {
  const tok = await loadTokenizer(sample.modelDir);
  assert.ok(tok);
  const texts = ['The quick brown fox jumps over the lazy dog.', 'In the beginning there was a sample model.'];
  const textData = join(dir, 'text.jsonl');
  writeFileSync(textData, texts.map((t) => JSON.stringify({ text: t })).join('\n') + '\n');
  const idsData = join(dir, 'ids.jsonl');
  writeFileSync(idsData, texts.map((t) => JSON.stringify({ input_ids: tok.encode(t) })).join('\n') + '\n');
  const a = cli(['eval-loss', '--model', sample.modelDir, '--data', textData]);
  const b = cli(['eval-loss', '--model', sample.modelDir, '--data', idsData]);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(b.stdout, a.stdout);
  const base = JSON.parse(a.stdout) as { loss: number; tokens: number };
  assert.equal(base.tokens, texts.reduce((n, t) => n + tok.encode(t).length - 1, 0));

  const grads = join(dir, 'fresh-grads.safetensors');
  const g = cli(['eval-loss', '--model', sample.modelDir, '--data', idsData, '--grads', grads, '--lora-r', '4', '--lora-alpha', '8', '--lora-targets', 'q_proj,down_proj', '--seed', '1']);
  assert.equal(g.status, 0, g.stderr);
  assert.deepEqual(JSON.parse(g.stdout), base, 'B = 0: the fresh adapter does not change the loss');
  withSafetensors(grads, (f) => {
    const names = f.names().sort();
    assert.equal(names.length, 2 * 2 * 2, names.join());
    assert.ok(names.includes('base_model.model.model.layers.1.mlp.down_proj.lora_A.weight'));
    for (const n of names) {
      const info = f.info(n);
      assert.equal(info.dtype, 'F32');
      const v = f.readFloat(n);
      let maxAbs = 0;
      for (const x of v) maxAbs = Math.max(maxAbs, Math.abs(x));
      if (n.includes('lora_A')) assert.equal(maxAbs, 0, `${n} is zero when B = 0`);
      else assert.ok(maxAbs > 0, `${n} is nonzero`);
      if (n.includes('down_proj.lora_B')) assert.deepEqual(info.shape, [64, 4]);
    }
  });

  const half = cli(['eval-loss', '--model', sample.modelDir, '--data', idsData, '--dtype', 'fp16']);
  assert.equal(half.status, 0, half.stderr);
  const h = JSON.parse(half.stdout) as { loss: number; tokens: number };
  assert.equal(h.tokens, base.tokens);
  assert.ok(h.loss !== base.loss && Math.abs(h.loss - base.loss) < 1e-3 * base.loss, `fp16 weights: ${h.loss} vs fp32 ${base.loss}`);

  const gpu = cli(['eval-loss', '--model', sample.modelDir, '--data', idsData, '--backend', 'vulkan']);
  assert.equal(gpu.status, 1);
  assert.match(gpu.stderr, /--backend must be cpu or webgpu, got "vulkan"/);
  const broken = join(dir, 'broken.jsonl');
  writeFileSync(broken, `${JSON.stringify({ input_ids: [1, 2, 3] })}\n\n${JSON.stringify({ input_ids: [1, 2], labels: [1] })}\n`);
  const e = cli(['eval-loss', '--model', sample.modelDir, '--data', broken]);
  assert.equal(e.status, 1);
  assert.match(e.stderr, /broken\.jsonl line 3: "labels" has 1 entries but "input_ids" 2/);
  writeFileSync(broken, `${JSON.stringify({ input_ids: [1, 99999] })}\n`);
  assert.match(cli(['eval-loss', '--model', sample.modelDir, '--data', broken]).stderr, /broken\.jsonl line 1: "input_ids"\[1\] = 99999 is not a token id in \[0, 8008\)/);
});

test('generate: greedy is deterministic, sampling follows the seed, an adapter is applied', () => {
  const args = ['generate', '--model', sample.modelDir, '--prompt', 'Once upon a time', '--max-new-tokens', '8'];
  const g1 = cli(args);
  assert.equal(g1.status, 0, g1.stderr);
  assert.ok(g1.stdout.trim().length > 0);
  assert.equal(cli(args).stdout, g1.stdout);
  const s1 = cli([...args, '--temperature', '1.5', '--seed', '1']);
  const s1again = cli([...args, '--temperature', '1.5', '--seed', '1']);
  const s2 = cli([...args, '--temperature', '1.5', '--seed', '2']);
  assert.equal(s1.stdout, s1again.stdout);
  assert.notEqual(s1.stdout, s2.stdout);
  // an adapter with a large random B changes the greedy continuation
  const model = loadModel(sample.modelDir);
  const lora = newLora(model.config, { r: 4, alpha: 16, dropout: 0, targets: ['o_proj', 'down_proj'], rslora: false }, new Rng(1), Float32Array);
  const rng = new Rng(2);
  for (const layer of lora.layers) for (const p of Object.values(layer)) for (let i = 0; i < p.B.length; i++) p.B[i] = rng.normal();
  const adapterDir = join(dir, 'random-adapter');
  saveAdapter(adapterDir, lora, { baseModelNameOrPath: sample.modelDir });
  const withAdapter = cli([...args, '--adapter', adapterDir]);
  assert.equal(withAdapter.status, 0, withAdapter.stderr);
  assert.notEqual(withAdapter.stdout, g1.stdout);
  const bad = cli([...args, '--top-p', '0']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--top-p must be a number in \(0, 1\]/);
});

test('generate --prompt-format: the prompt is wrapped as training wrapped it, and chat stops at the end of turn', async () => {
  const model = loadModel(sample.modelDir);
  const tokenizer = await loadTokenizer(sample.modelDir);
  assert.ok(tokenizer);
  for (const promptFormat of ['alpaca', 'chat'] as const) {
    const r = cli(['generate', '--model', sample.modelDir, '--prompt', 'Name a river.', '--max-new-tokens', '12', '--prompt-format', promptFormat]);
    assert.equal(r.status, 0, r.stderr);
    const p = formatPrompt(tokenizer, model.config, { prompt: 'Name a river.', promptFormat });
    const ids = generate(model, null, p.ids, { maxNewTokens: 12, temperature: 0, topP: 1, seed: 42, eosTokenIds: p.stopIds });
    assert.equal(r.stdout, `${tokenizer.decode(ids, { skipSpecialTokens: true })}\n`, promptFormat);
  }
  const bad = cli(['generate', '--model', sample.modelDir, '--prompt', 'x', '--prompt-format', 'vicuna']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--prompt-format must be one of raw, alpaca, chat, got "vicuna"/);
});
