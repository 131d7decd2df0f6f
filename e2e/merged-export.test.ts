/**
 * "Export merged…" from the Adapters list: the user opens the dialog on an adapter, picks a format and a folder, and
 * is shown what was written (the folder and its size); the folder holds a Hugging Face model (config.json,
 * model.safetensors, the base's chat template). Exporting into the same folder again is refused under the folder
 * field, and Escape closes the dialog with focus back on the button.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { tinyHfConfig, writeRandomModel } from '../engine/io/make-model.ts';
import { readGguf } from '../engine/quant/gguf-reader.ts';
import { writeTestAdapter } from '../test/helpers/peft-folder.ts';
import { closeStudioWithBrowser, openStudioPage, startStudioWithBrowser, type TestStudio } from './helpers/studio.ts';

let studio: TestStudio;
let browser: Browser;
let page: Page;
let errors: string[];
let scratch: string;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'lora-studio-merged-export-'));
  const base = join(scratch, 'base');
  writeRandomModel(base, tinyHfConfig('llama'), { seed: 5, std: 0.2 });
  writeFileSync(join(base, 'chat_template.jinja'), '{% for m in messages %}{{ m.content }}{% endfor %}');
  const adapterDir = join(scratch, 'adapter');
  writeTestAdapter(adapterDir, base, 4, ['q_proj', 'v_proj']);
  ({ studio, browser } = await startStudioWithBrowser());
  await studio.api('adapters.import', { path: adapterDir, modelPath: base, name: 'tiny pirate' });
  ({ page, errors } = await openStudioPage(browser, studio));
});

after(async () => {
  await closeStudioWithBrowser(studio, browser);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('Export merged… writes a Hugging Face folder and shows where and how big; the same folder again is refused under its field', async () => {
  const item = page.getByTestId('adapter-item').filter({ hasText: 'tiny pirate' });
  const open = item.getByTestId('adapter-merged');
  await open.click({ timeout: 30_000 });
  const dialog = page.getByTestId('merged-dialog');
  await dialog.waitFor();
  const dest = join(scratch, 'merged-hf');
  await dialog.getByTestId('merged-format').selectOption('hf-safetensors');
  await dialog.getByTestId('merged-destination').fill(dest);
  await dialog.getByTestId('merged-export').click();
  const result = dialog.getByTestId('merged-result');
  await result.waitFor({ timeout: 60_000 });
  assert.equal((await dialog.getByTestId('merged-path').textContent())?.trim(), dest);
  assert.match((await dialog.getByTestId('merged-files').textContent()) ?? '', /config\.json, model\.safetensors, chat_template\.jinja/);
  assert.ok(statSync(join(dest, 'model.safetensors')).size > 0);
  assert.equal(readFileSync(join(dest, 'chat_template.jinja'), 'utf8'), '{% for m in messages %}{{ m.content }}{% endfor %}');

  await dialog.getByTestId('merged-export').click();
  const refusal = dialog.getByTestId('merged-error-destination');
  await refusal.waitFor({ timeout: 30_000 });
  assert.match((await refusal.textContent()) ?? '', /is not empty/);

  // Another format into a new folder: one GGUF file named after the adapter.
  const ggufDest = join(scratch, 'merged-gguf');
  await dialog.getByTestId('merged-format').selectOption('gguf-q8_0');
  await dialog.getByTestId('merged-destination').fill(ggufDest);
  await dialog.getByTestId('merged-export').click();
  await dialog.getByTestId('merged-result').waitFor({ timeout: 60_000 });
  const written = readdirSync(ggufDest);
  assert.equal(written.length, 1);
  assert.match(written[0], /^tiny-pirate[a-z0-9-]*-merged-q8_0\.gguf$/);
  const file = join(ggufDest, written[0]);
  const fileType = readGguf(file).kv.get('general.file_type');
  assert.ok(fileType && fileType.type !== 'array' && fileType.value === 7, JSON.stringify(fileType));

  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  // Focus goes back to the button that opened the dialog (this adapter's), as the dialog pattern requires.
  assert.equal(await page.evaluate<string | null>(`document.activeElement?.getAttribute('data-testid') ?? null`), 'adapter-merged');
  assert.deepEqual(errors, []);
});
