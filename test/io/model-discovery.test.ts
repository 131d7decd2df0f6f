/**
 * Model discovery over stores laid out as their tools write them, from real files: the real SmolLM2 GGUF as an
 * Ollama blob named by its sha256 with a manifest as `ollama pull` writes it, the sample model as a Hugging Face cache
 * snapshot of symlinks into blobs/ with refs/main (as huggingface_hub writes it), and LM Studio's publisher/repo
 * folders. What is listed is then opened by the same loader training uses.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { LocalModel } from '../../common/protocol.ts';
import { discoverModels, modelStoreDirs } from '../../engine/io/model-discovery.ts';
import { inspectModel, loadModel, readModelConfig } from '../../engine/io/model-source.ts';
import { ensureSample } from '../../engine/io/sample.ts';
import { repoRoot } from '../helpers/python.ts';
import { realModelPath } from '../helpers/real-model.ts';
import { hfRepo, HF_REV as REV, ollamaManifest, ollamaModelBlob } from '../helpers/model-stores.ts';
import { tempStudios } from '../helpers/temp-studio.ts';

const gguf = realModelPath();
const tmp = mkdtempSync(join(tmpdir(), 'discovery-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const home = join(tmp, 'home');
let sampleDir = '';
let ggufDigest = '';

before(async () => {
  sampleDir = (await ensureSample()).modelDir;
  // Ollama, default place (~/.ollama/models): one model from the library, one from hf.co, one whose blob is gone.
  const ollama = join(home, '.ollama', 'models');
  ggufDigest = ollamaModelBlob(ollama, gguf);
  const size = statSync(gguf).size;
  ollamaManifest(ollama, 'registry.ollama.ai/library/smollm2/135m-instruct-q4_1', ggufDigest, size);
  ollamaManifest(ollama, 'hf.co/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/Q4_1', ggufDigest, size);
  ollamaManifest(ollama, 'registry.ollama.ai/library/gone/latest', `sha256:${'ab'.repeat(32)}`, 1234);
  // Hugging Face cache, default place (~/.cache/huggingface/hub).
  const hub = join(home, '.cache', 'huggingface', 'hub');
  hfRepo(hub, 'studio-tests/tiny-sample', Object.fromEntries(readdirSync(sampleDir).map((f) => [f, join(sampleDir, f)])));
  hfRepo(hub, 'studio-tests/SmolLM2-GGUF', { 'SmolLM2-135M-Instruct.Q4_1.gguf': gguf });
  hfRepo(hub, 'studio-tests/readme-only', { 'README.md': join(repoRoot, 'README.md') });
  mkdirSync(join(hub, 'datasets--studio-tests--some-data', 'snapshots', REV), { recursive: true });
  // LM Studio: a real GGUF, and a truncated one (the first 64 KiB of it) as an interrupted download leaves it.
  const lm = join(home, '.lmstudio', 'models', 'lmstudio-community', 'SmolLM2-135M-Instruct-GGUF');
  mkdirSync(lm, { recursive: true });
  symlinkSync(gguf, join(lm, 'SmolLM2-135M-Instruct-Q4_1.gguf'));
  writeFileSync(join(lm, 'SmolLM2-135M-Instruct-Q8_0.gguf'), readFileSync(gguf).subarray(0, 65536));
  // Older LM Studio versions: ~/.cache/lm-studio/models, here a link to the same folder (listed once).
  mkdirSync(join(home, '.cache', 'lm-studio'), { recursive: true });
  symlinkSync(join(home, '.lmstudio', 'models'), join(home, '.cache', 'lm-studio', 'models'));
});

function byName(models: LocalModel[], name: string): LocalModel {
  const m = models.find((x) => x.name === name);
  assert.ok(m, `${name} not found among ${models.map((x) => x.name).join(', ')}`);
  return m;
}

test('the stores are looked for where each tool puts them, honouring HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME and OLLAMA_MODELS', () => {
  const dirs = (env: Record<string, string>): string[] => modelStoreDirs({ env, home: '/h' }).map((d) => `${d.store}=${d.dir}`);
  assert.deepEqual(dirs({}), ['hf-cache=/h/.cache/huggingface/hub', 'ollama=/h/.ollama/models', 'lmstudio=/h/.lmstudio/models', 'lmstudio=/h/.cache/lm-studio/models']);
  assert.equal(dirs({ XDG_CACHE_HOME: '/x' })[0], 'hf-cache=/x/huggingface/hub');
  assert.equal(dirs({ XDG_CACHE_HOME: '/x', HF_HOME: '/hf' })[0], 'hf-cache=/hf/hub');
  assert.equal(dirs({ HF_HOME: '/hf', HF_HUB_CACHE: '/hub' })[0], 'hf-cache=/hub');
  assert.equal(dirs({ OLLAMA_MODELS: '/srv/ollama' })[1], 'ollama=/srv/ollama');
});

test('an Ollama model is found through its manifest as the GGUF blob, and that blob loads as the real model', () => {
  const { models, searched } = discoverModels({ env: {}, home });
  assert.deepEqual(searched.map((s) => s.exists), [true, true, true, true]);
  const real = inspectModel(gguf);
  const m = byName(models, 'smollm2:135m-instruct-q4_1');
  assert.equal(m.problem, undefined);
  assert.equal(m.path, join(home, '.ollama', 'models', 'blobs', ggufDigest.replace(':', '-')));
  assert.deepEqual([m.store, m.format, m.sizeBytes, m.architecture, m.quantization, m.parameters], ['ollama', 'gguf', statSync(gguf).size, 'LlamaForCausalLM', 'Q4_1', real.parameters]);
  assert.deepEqual(readModelConfig(m.path), readModelConfig(gguf));
  assert.equal(byName(models, 'hf.co/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF:Q4_1').path, m.path);
  // The template and params layers are blobs too, but not models: only the model layer is listed.
  assert.equal(models.filter((x) => x.store === 'ollama').length, 3);
});

test('an Ollama manifest whose model blob is missing is listed with a message naming the manifest and the blob', () => {
  const m = byName(discoverModels({ env: {}, home }).models, 'gone:latest');
  assert.ok(m.problem);
  assert.ok(m.problem.includes(join(home, '.ollama', 'models', 'manifests', 'registry.ollama.ai', 'library', 'gone', 'latest')), m.problem);
  assert.ok(m.problem.includes(`sha256-${'ab'.repeat(32)} is missing`), m.problem);
});

test('a Hugging Face cache snapshot (symlinks into blobs/) is found at refs/main and loads as the folder it mirrors', () => {
  const { models } = discoverModels({ env: {}, home });
  const m = byName(models, 'studio-tests/tiny-sample');
  assert.equal(m.problem, undefined);
  assert.equal(m.path, join(home, '.cache', 'huggingface', 'hub', 'models--studio-tests--tiny-sample', 'snapshots', REV));
  assert.equal(m.revision, REV);
  assert.equal(m.format, 'hf');
  assert.equal(m.sizeBytes, readdirSync(sampleDir).reduce((a, f) => a + statSync(join(sampleDir, f)).size, 0));
  const direct = inspectModel(sampleDir);
  assert.deepEqual([m.architecture, m.quantization, m.parameters], [direct.architecture, direct.dtype, direct.parameters]);
  assert.deepEqual(Array.from(loadModel(m.path).norm), Array.from(loadModel(sampleDir).norm));
  // A "-GGUF" repo lists its GGUF files; a repo without a model says why; datasets are not models.
  const g = byName(models, 'studio-tests/SmolLM2-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf');
  assert.deepEqual([g.format, g.quantization, g.problem], ['gguf', 'Q4_1', undefined]);
  const readme = byName(models, 'studio-tests/readme-only');
  assert.match(readme.problem ?? '', /config\.json/);
  assert.ok(!models.some((x) => x.name.includes('some-data')));
});

test('LM Studio GGUFs are listed once each; a truncated one carries the reader’s message naming the file', () => {
  const lm = discoverModels({ env: {}, home }).models.filter((x) => x.store === 'lmstudio');
  assert.deepEqual(lm.map((x) => x.name).sort(), ['lmstudio-community/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf', 'lmstudio-community/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q8_0.gguf']);
  const good = byName(lm, 'lmstudio-community/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf');
  assert.deepEqual([good.architecture, good.quantization, good.problem], ['LlamaForCausalLM', 'Q4_1', undefined]);
  const cut = byName(lm, 'lmstudio-community/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q8_0.gguf');
  assert.ok(cut.problem?.startsWith(cut.path), cut.problem);
  assert.equal(cut.sizeBytes, 65536);
});

test('OLLAMA_MODELS and HF_HUB_CACHE move the stores; stores that do not exist are reported as searched, not found', () => {
  const r = discoverModels({ env: { OLLAMA_MODELS: join(home, '.ollama', 'models'), HF_HUB_CACHE: join(tmp, 'no-hub') }, home: join(tmp, 'empty-home') });
  assert.deepEqual(r.searched.map((s) => s.exists), [false, true, false, false]);
  assert.deepEqual(r.models.map((m) => m.name).sort(), ['gone:latest', 'hf.co/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF:Q4_1', 'smollm2:135m-instruct-q4_1']);
});

test('the models.discover service and `lora-studio models --json` list the same models', async () => {
  const { services } = tempStudios('discovery-services-');
  const keys = ['HOME', 'HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'XDG_CACHE_HOME', 'OLLAMA_MODELS'] as const;
  const saved = keys.map((k) => process.env[k]);
  for (const k of keys) delete process.env[k];
  process.env.HOME = home;
  let viaService;
  try {
    viaService = await services('a').handle('models.discover', {});
  } finally {
    keys.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
  }
  assert.deepEqual(viaService, discoverModels({ env: {}, home }));
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: home, LORA_STUDIO_FROM_SOURCE: '1' };
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/lora-studio.mjs'), 'models', '--json'], { encoding: 'utf8', env, timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), viaService);
  const human = spawnSync(process.execPath, [join(repoRoot, 'bin/lora-studio.mjs'), 'models'], { encoding: 'utf8', env, timeout: 120_000 });
  assert.equal(human.status, 0, human.stderr);
  assert.match(human.stdout, /✓ \[Ollama\] smollm2:135m-instruct-q4_1 {2}\(GGUF · \d+\.?\d* MiB · LlamaForCausalLM · Q4_1\)/);
  assert.match(human.stdout, /✗ \[Ollama\] gone:latest[^\n]*\n[^\n]*\n {4}cannot be trained: .*is missing/);
});
