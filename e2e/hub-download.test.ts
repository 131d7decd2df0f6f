/**
 * "Download from Hugging Face" in the model picker, against a local server speaking the Hub's API (HF_ENDPOINT;
 * no test reaches the internet): a model id typed, Download pressed, progress shown, the snapshot in the HF cache
 * becomes the base model and shows in "Models on this machine"; Cancel part-way says the next download resumes;
 * a repository the Hub refuses shows the Hub's reason.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ensureSample } from '../engine/io/sample.ts';
import { startHubServer, type HubServer } from '../test/helpers/hub-server.ts';
import { closeStudioWithBrowser, openStudioPage, startStudioWithBrowser, type TestStudio } from './helpers/studio.ts';

const COMMIT = '0a1b2c3d4e5f60718293a4b5c6d7e8f901234567';
let studio: TestStudio;
let browser: Browser;
let page: Page;
let errors: string[];
let scratch: string;
let hub: HubServer;
const saved = { HOME: process.env.HOME, OLLAMA_MODELS: process.env.OLLAMA_MODELS, HF_HUB_CACHE: process.env.HF_HUB_CACHE, HF_ENDPOINT: process.env.HF_ENDPOINT, HF_TOKEN: process.env.HF_TOKEN, HF_HOME: process.env.HF_HOME };

before(async () => {
  const dir = (await ensureSample()).modelDir;
  const files = Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
  hub = await startHubServer({ 'studio-tests/tiny': { commit: COMMIT, files }, 'studio-tests/tiny-copy': { commit: COMMIT, files } }, []);
  scratch = mkdtempSync(join(tmpdir(), 'lora-studio-hub-download-'));
  // The studio host runs in this process: these are what its services read.
  process.env.HOME = join(scratch, 'home');
  process.env.OLLAMA_MODELS = join(scratch, 'no-ollama');
  process.env.HF_HUB_CACHE = join(scratch, 'hub');
  process.env.HF_HOME = join(scratch, 'hf-home');
  process.env.HF_ENDPOINT = hub.endpoint;
  delete process.env.HF_TOKEN;
  ({ studio, browser } = await startStudioWithBrowser());
  ({ page, errors } = await openStudioPage(browser, studio));
});

after(async () => {
  await closeStudioWithBrowser(studio, browser);
  await hub.close();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('a model id is downloaded into the HF cache, becomes the base model and is listed on this machine', async () => {
  const picker = page.getByTestId('model-picker');
  await picker.getByTestId('local-models').locator('summary').click();
  const box = picker.getByTestId('hub-download');
  // A refusal first: the Hub's reason, naming the repo.
  await box.getByTestId('hub-repo').fill('studio-tests/nope');
  await box.getByTestId('hub-pull').click();
  const refused = box.getByTestId('hub-error');
  await refused.waitFor({ timeout: 30_000 });
  assert.match((await refused.textContent()) ?? '', /Hugging Face answered 401 for studio-tests\/nope: the repository is private or gated, or does not exist/);

  await box.getByTestId('hub-repo').fill('studio-tests/tiny');
  await box.getByTestId('hub-pull').click();
  const done = box.getByTestId('hub-done');
  await done.waitFor({ timeout: 60_000 });
  const snapshot = join(scratch, 'hub', 'models--studio-tests--tiny', 'snapshots', COMMIT);
  assert.match((await done.textContent()) ?? '', /Downloaded studio-tests\/tiny \(\d+ files, .* fetched\)/);
  await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
  assert.equal(await page.getByTestId('model-path').inputValue(), snapshot);
  const listed = picker.getByTestId('local-model').filter({ hasText: 'studio-tests/tiny' });
  await listed.waitFor({ timeout: 60_000 });
  assert.match((await listed.textContent()) ?? '', /Hugging Face cache · HF folder/);
  assert.deepEqual(errors, []);
});

test('Cancel part-way stops the download and says the next one resumes', async () => {
  const box = page.getByTestId('model-picker').getByTestId('hub-download');
  hub.holdOnce('model.safetensors', 4096);
  await box.getByTestId('hub-repo').fill('studio-tests/tiny-copy');
  await box.getByTestId('hub-pull').click();
  await box.getByTestId('hub-progress').filter({ hasText: 'model.safetensors' }).waitFor({ timeout: 60_000 });
  await box.getByTestId('hub-cancel').click();
  await box.getByTestId('hub-cancelled').waitFor({ timeout: 30_000 });
  const blobs = readdirSync(join(scratch, 'hub', 'models--studio-tests--tiny-copy', 'blobs'));
  assert.equal(blobs.filter((b) => b.endsWith('.incomplete')).length, 1);
  hub.release();
  assert.deepEqual(errors, []);
});
