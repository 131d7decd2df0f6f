/**
 * Presets, theme and narrow windows, in Chromium through the web host: a built-in preset fills the form and lists
 * its changes (Undo puts the form back); a preset of one's own survives a reload; the theme follows the system
 * (light and dark emulated) until the toggle chooses, and the choice survives a reload; at 720 px wide no page
 * scrolls sideways. Screenshots of every page in light and dark go to test-results/.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { closeStudioWithBrowser, openStudioPage, resultsDir, startStudioWithBrowser, waitConnected, type TestStudio } from './helpers/studio.ts';

let studio: TestStudio;
let browser: Browser;

before(async () => {
  ({ studio, browser } = await startStudioWithBrowser());
  mkdirSync(resultsDir, { recursive: true });
});

after(async () => {
  await closeStudioWithBrowser(studio, browser);
});

const PAGES = ['train', 'runs', 'playground', 'quant'] as const;

// Evaluated in the page (strings: this file is type-checked without the DOM library).
const sideways = (page: Page) => page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');

test('a built-in preset fills the form and lists what it changed; Undo; a preset of my own survives a reload', { timeout: 60_000 }, async () => {
  const { page, errors } = await openStudioPage(browser, studio);
  assert.equal(await page.getByTestId('field-train.steps').inputValue(), '40');
  await page.getByTestId('preset-select').selectOption({ label: 'Quick test' });
  const changes = page.getByTestId('preset-changes');
  await changes.waitFor();
  const items = await changes.locator('li').allTextContents();
  assert.ok(items.includes('Steps: 40 → 20'), items.join(' | '));
  assert.ok(items.includes('Rank (r): 8 → 4'), items.join(' | '));
  assert.equal(await page.getByTestId('field-train.steps').inputValue(), '20');
  assert.equal(await page.locator('.field-changed [data-testid="field-train.steps"]').count(), 1, 'the changed field is marked');
  await page.getByTestId('preset-undo').click();
  assert.equal(await page.getByTestId('field-train.steps').inputValue(), '40');
  assert.equal(await page.getByTestId('field-lora.r').inputValue(), '8');

  await page.getByTestId('preset-select').selectOption({ label: 'r16 all-linear' });
  assert.equal(await page.getByTestId('target-down_proj').isChecked(), true);
  await page.getByTestId('field-train.steps').fill('123');
  assert.equal(await page.getByTestId('preset-undo').count(), 0, 'no Undo over edits made since');
  await page.getByTestId('preset-save').click();
  await page.getByTestId('preset-name').fill('Quality');
  assert.match((await page.getByTestId('preset-name-error').textContent()) ?? '', /is a built-in preset/);
  assert.equal(await page.getByTestId('preset-save-confirm').isDisabled(), true);
  await page.getByTestId('preset-name').fill('my r16');
  await page.getByTestId('preset-save-confirm').click();
  // Another preset, then mine again: the form comes back to what I saved.
  await page.getByTestId('preset-select').selectOption({ label: 'Quick test' });
  await page.reload();
  await waitConnected(page);
  await page.getByTestId('preset-select').selectOption({ label: 'my r16' });
  assert.equal(await page.getByTestId('field-train.steps').inputValue(), '123');
  assert.equal(await page.getByTestId('field-lora.r').inputValue(), '16');
  assert.equal(await page.getByTestId('target-down_proj').isChecked(), true);
  await page.screenshot({ path: join(resultsDir, 'train-presets.png') });
  await page.getByTestId('preset-delete').click();
  assert.equal(await page.locator('#preset-select option', { hasText: 'my r16' }).count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test('the theme follows the system until chosen; the choice is kept; every page in light and dark', { timeout: 60_000 }, async () => {
  const { page, errors } = await openStudioPage(browser, studio);
  const theme = () => page.evaluate<string | undefined>('document.documentElement.dataset.theme');
  const background = () => page.evaluate<string>('getComputedStyle(document.documentElement).backgroundColor');
  await page.emulateMedia({ colorScheme: 'light' });
  await page.waitForFunction("document.documentElement.dataset.theme === 'light'");
  const light = await background();
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.waitForFunction("document.documentElement.dataset.theme === 'dark'");
  const dark = await background();
  assert.notEqual(light, dark);
  for (const theme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: theme });
    for (const p of PAGES) {
      await page.getByTestId(`tab-${p}`).click();
      await page.waitForTimeout(150);
      await page.screenshot({ path: join(resultsDir, `page-${p}-${theme}.png`) });
    }
  }
  await page.getByTestId('tab-train').click();
  // The toggle: system → light → dark; a chosen theme no longer follows the system and survives a reload.
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.getByTestId('theme-toggle').click();
  assert.equal(await theme(), 'light');
  await page.emulateMedia({ colorScheme: 'dark' });
  assert.equal(await theme(), 'light', 'a chosen theme does not follow the system');
  await page.reload();
  await waitConnected(page);
  assert.equal(await theme(), 'light');
  assert.equal(await background(), light);
  await page.getByTestId('theme-toggle').click();
  assert.equal(await theme(), 'dark');
  await page.getByTestId('theme-toggle').click();
  assert.equal(await page.getByTestId('theme-toggle').getAttribute('data-choice'), 'system');
  assert.deepEqual(errors, []);
  await page.close();
});

test('at 720 px wide no page scrolls sideways', { timeout: 60_000 }, async () => {
  const { page, errors } = await openStudioPage(browser, studio, { width: 720, height: 900 });
  await page.getByTestId('use-sample-model').click();
  await page.getByTestId('model-summary').waitFor({ timeout: 30_000 });
  await page.getByTestId('use-sample-dataset').click();
  await page.getByTestId('dataset-summary').waitFor({ timeout: 30_000 });
  for (const p of PAGES) {
    await page.getByTestId(`tab-${p}`).click();
    await page.waitForTimeout(200);
    assert.equal(await sideways(page), 0, `the ${p} page scrolls sideways by ${await sideways(page)} px at 720 px`);
    await page.screenshot({ path: join(resultsDir, `page-${p}-720.png`), fullPage: true });
  }
  assert.deepEqual(errors, []);
  await page.close();
});
