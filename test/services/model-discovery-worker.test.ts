/**
 * 'models.discover' runs off the services' event loop: over a large fake Hugging Face cache (many repos, each with a
 * config.json the loader reads), another request asked after it answers before it, and the loop keeps turning
 * while the walk is under way. Then the cache keyed by folder mtimes (an unchanged store is not read again, a new
 * repo is seen) and the time bound.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createModelDiscovery } from '../../host/services/model-discovery-service.ts';
import { discoverModels } from '../../engine/io/model-discovery.ts';
import { refusal, tempStudios } from '../helpers/temp-studio.ts';

const REV = '0123456789abcdef0123456789abcdef01234567';
const { tmp, services } = tempStudios('discovery-worker-');
const home = join(tmp, 'home');
const hub = join(home, '.cache', 'huggingface', 'hub');

function addRepo(name: string): void {
  const repo = join(hub, `models--studio-tests--${name}`);
  mkdirSync(join(repo, 'snapshots', REV), { recursive: true });
  mkdirSync(join(repo, 'refs'), { recursive: true });
  writeFileSync(join(repo, 'refs', 'main'), REV);
  // A llama config without weights: inspected (config read, safetensors looked for), listed with its problem.
  const config = { architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 4, vocab_size: 256, max_position_embeddings: 128, rms_norm_eps: 1e-5 };
  writeFileSync(join(repo, 'snapshots', REV, 'config.json'), JSON.stringify(config));
  for (let i = 0; i < 4; i++) writeFileSync(join(repo, 'snapshots', REV, `extra-${i}.txt`), 'x'.repeat(100));
}

const REPOS = 1000;
for (let i = 0; i < REPOS; i++) addRepo(`model-${String(i).padStart(4, '0')}`);

/** Runs `fn` with HOME at the fake home and no store variables set, as a user with only ~/.cache would have. */
async function withHome<T>(fn: () => Promise<T>): Promise<T> {
  const keys = ['HOME', 'HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'XDG_CACHE_HOME', 'OLLAMA_MODELS'] as const;
  const saved = keys.map((k) => process.env[k]);
  for (const k of keys) delete process.env[k];
  process.env.HOME = home;
  try {
    return await fn();
  } finally {
    keys.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
  }
}

test('another request answers while models.discover walks a large store, and the loop keeps turning', async () => {
  const studio = services('a');
  const order: string[] = [];
  let ticks = 0;
  let ticking = true;
  const tick = (): void => {
    if (!ticking) return;
    ticks++;
    setImmediate(tick);
  };
  const discovered = await withHome(async () => {
    const discovering = studio.handle('models.discover', {}).then((r) => {
      order.push('models.discover');
      ticking = false;
      return r;
    });
    setImmediate(tick);
    const info = studio.handle('app.info', {}).then((r) => {
      order.push('app.info');
      return r;
    });
    const settings = studio.handle('settings.get', {}).then((r) => {
      order.push('settings.get');
      return r;
    });
    await Promise.all([info, settings]);
    // A full turn of the loop (timers, I/O, immediates) while discovery is still out.
    await new Promise((resolve) => setTimeout(resolve, 0));
    await new Promise(setImmediate);
    order.push('the loop turned');
    return discovering;
  });
  assert.deepEqual(order, ['app.info', 'settings.get', 'the loop turned', 'models.discover']);
  assert.ok(ticks > 1, `the event loop turned ${ticks} times while discovery ran`);
  assert.equal(discovered.models.length, REPOS);
  // The worker's answer is the same as discovery run here.
  assert.deepEqual(discovered, discoverModels({ env: {}, home }));
});

test('an unchanged store is answered from the cache; a new repo (a changed folder mtime) is seen', async () => {
  let walks = 0;
  const discovery = createModelDiscovery({ onWalk: () => walks++ });
  try {
    await withHome(async () => {
      const first = await discovery.discover();
      const [second, third] = await Promise.all([discovery.discover(), discovery.discover()]);
      assert.equal(second, third, 'two requests at once share one walk');
      assert.equal(walks, 2);
      // 'unchanged': the kept answer itself, not a new copy from the worker.
      assert.equal(second, first);
      addRepo('added-later');
      const fourth = await discovery.discover();
      assert.notEqual(fourth, first);
      assert.equal(fourth.models.length, REPOS + 1);
      assert.ok(fourth.models.some((m) => m.name === 'studio-tests/added-later'));
    });
  } finally {
    await discovery.close();
  }
});

test('a walk longer than the time bound is stopped with a message naming the folders', async () => {
  const discovery = createModelDiscovery({ timeoutMs: 1 });
  try {
    const e = await withHome(() => refusal(() => discovery.discover()));
    assert.match(e.message, /looking for models took over 0 s and was stopped; one of .*huggingface[/\\]hub.* may be on a slow or unreachable disk/);
  } finally {
    await discovery.close();
  }
});
