/**
 * The Train form's Base weights field in Chromium through the web host: each choice changes the memory estimate shown
 * under it (the weights part), its hint says what it does and points at the Quantization lab, and a format the model
 * cannot hold is named with the tensor and its shape.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { closeStudioWithBrowser, openStudioPage, startStudioWithBrowser, type TestStudio } from './helpers/studio.ts';

let studio: TestStudio;
let browser: Browser;
let page: Page;

before(async () => {
  ({ studio, browser } = await startStudioWithBrowser());
  ({ page } = await openStudioPage(browser, studio));
});

after(async () => {
  await closeStudioWithBrowser(studio, browser);
});

const weightsBytes = async (): Promise<number> => Number(await page.getByTestId('memory-segment-weights').getAttribute('data-bytes'));

test('Base weights: the estimate follows each choice; a format that cannot hold a tensor says which', async () => {
  await page.getByTestId('use-sample-model').click();
  await page.getByTestId('model-summary').waitFor({ timeout: 30_000 });
  await page.getByTestId('field-backend').selectOption('cpu');
  const select = page.getByTestId('field-train.baseWeights');
  assert.equal(await select.inputValue(), 'f32', 'f32 unless chosen');
  await page.locator('[data-testid="memory-estimate"][data-state="ready"]').waitFor({ timeout: 15_000 });
  const f32 = await weightsBytes();
  assert.ok(f32 > 0);

  await select.selectOption('f16');
  await page.waitForFunction(`Number(document.querySelector('[data-testid="memory-segment-weights"]')?.getAttribute('data-bytes')) < ${f32}`, undefined, { timeout: 10_000 });
  const f16 = await weightsBytes();
  await select.selectOption('nf4');
  await page.waitForFunction(`Number(document.querySelector('[data-testid="memory-segment-weights"]')?.getAttribute('data-bytes')) < ${f16}`, undefined, { timeout: 10_000 });
  assert.match((await page.getByTestId('hint-train.baseWeights').textContent()) ?? '', /QLoRA as bitsandbytes does it.*Quantization lab's per-layer report/);

  await select.selectOption('q4_0');
  await page.getByText(/mlp\.down_proj\.weight' \[64, 176\] cannot be held as q4_0/).first().waitFor({ timeout: 10_000 });

  await page.getByTestId('base-weights-lab').click();
  await page.locator('[data-testid="tab-quant"][aria-selected="true"]').waitFor({ timeout: 5_000 });
});
