/**
 * "Models on this machine" under the model field: an Ollama store (OLLAMA_MODELS) holding the real SmolLM2 GGUF as
 * a blob with its manifest, plus a manifest whose blob is gone. The user opens the list, sees format, size and
 * quantization, clicks the model and gets its summary; the broken one says why it cannot be trained.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { realModelPath } from '../test/helpers/real-model.ts';
import { ollamaManifest, ollamaModelBlob } from '../test/helpers/model-stores.ts';
import { closeStudioWithBrowser, openStudioPage, startStudioWithBrowser, type TestStudio } from './helpers/studio.ts';

let studio: TestStudio;
let browser: Browser;
let page: Page;
let errors: string[];
let scratch: string;
const saved = { HOME: process.env.HOME, OLLAMA_MODELS: process.env.OLLAMA_MODELS, HF_HUB_CACHE: process.env.HF_HUB_CACHE };

before(async () => {
  const gguf = realModelPath();
  scratch = mkdtempSync(join(tmpdir(), 'lora-studio-local-models-'));
  const ollama = join(scratch, 'ollama-models');
  const digest = ollamaModelBlob(ollama, gguf);
  ollamaManifest(ollama, 'registry.ollama.ai/library/smollm2/135m', digest, statSync(gguf).size);
  ollamaManifest(ollama, 'registry.ollama.ai/library/gone/latest', `sha256:${'cd'.repeat(32)}`, 99);
  // The studio host runs in this process: these are what its services read.
  process.env.HOME = join(scratch, 'home');
  process.env.OLLAMA_MODELS = ollama;
  process.env.HF_HUB_CACHE = join(scratch, 'no-hub');
  ({ studio, browser } = await startStudioWithBrowser());
  ({ page, errors } = await openStudioPage(browser, studio));
});

after(async () => {
  await closeStudioWithBrowser(studio, browser);
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('the Ollama model is listed with format, size and quantization, and one click loads it as the base model', async () => {
  const list = page.getByTestId('model-picker').getByTestId('local-models');
  await list.locator('summary').click();
  const item = list.getByTestId('local-model').filter({ hasText: 'smollm2:135m' });
  await item.waitFor({ timeout: 60_000 });
  const text = (await item.textContent()) ?? '';
  assert.match(text, /Ollama · GGUF · \d+(\.\d)? MiB · Q4_1 · 13\dM params · LlamaForCausalLM/, text);
  const broken = list.getByTestId('local-model').filter({ hasText: 'gone:latest' });
  assert.match((await broken.getByTestId('local-model-problem').textContent()) ?? '', /cannot be trained: .*gone.*latest.*is missing/);
  assert.equal(await broken.getByRole('button').isDisabled(), true);

  await item.getByRole('button').click();
  await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
  assert.match((await page.getByTestId('model-name').textContent()) ?? '', /smollm2 135m/i); // its general.name
  assert.match(await page.getByTestId('model-path').inputValue(), /blobs[\\/]sha256-[0-9a-f]{64}$/);
  assert.deepEqual(errors, []);
});
