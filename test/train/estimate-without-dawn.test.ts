/**
 * The Train form's estimate runs in the services process, which must not load Dawn (the `webgpu` package's native
 * dawn.node) to answer it: the webgpu figures come from the session's buffer list (backend/webgpu/llama-memory.ts),
 * which has to stay free of GPU imports. A child process imports the estimate with a resolve hook that refuses
 * the `webgpu` package, then computes a webgpu estimate; the same hook makes importing the device module fail, so
 * the check itself can fail.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const hooks = `export async function resolve(specifier, context, next) {
  if (specifier === 'webgpu' || specifier.startsWith('webgpu/')) throw new Error('DAWN_IMPORTED from ' + context.parentURL);
  return next(specifier, context);
}`;

function importWithoutDawn(module: string, body: string): { status: number | null; output: string } {
  const url = new URL(module, import.meta.url).href;
  const script = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}));
const m = await import(${JSON.stringify(url)});
${body}`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('../..', import.meta.url)), encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('the Train form’s webgpu estimate loads no Dawn', () => {
  const r = importWithoutDawn(
    '../../engine/train/memory-estimate.ts',
    `const { llamaConfig } = await import(${JSON.stringify(new URL('../../engine/model/llama-config.ts', import.meta.url).href)});
const cfg = llamaConfig({ vocabSize: 64, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, maxPositionEmbeddings: 64 });
const e = m.estimateTrainingMemory(cfg, { lora: { r: 4, targets: ['q_proj'], dropout: 0 }, train: { batchSize: 1, maxSeqLen: 16, precision: 'fp16' } }, { backend: 'webgpu' });
if (!(e.total > 0 && e.backend === 'webgpu')) throw new Error('no estimate');
console.log('ESTIMATE_OK');`,
  );
  assert.equal(r.status, 0, r.output);
  assert.match(r.output, /ESTIMATE_OK/);
});

test('the hook does catch a module that loads Dawn', () => {
  const r = importWithoutDawn('../../engine/backend/webgpu/device.ts', '');
  assert.notEqual(r.status, 0);
  assert.match(r.output, /DAWN_IMPORTED/);
});
