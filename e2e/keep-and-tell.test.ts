/**
 * Keep my work and tell me the truth, in Chromium through the web host: a reload keeps the whole Train form (and
 * loads the model and dataset again); Train is off with the list of what blocks it; Cancel asks before it throws a
 * run away; a page without its token gets the token page; the page tabs answer the arrow keys.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { RunSummary } from '../common/protocol.ts';
import { closeStudioWithBrowser, openStudioPage, resultsDir, startStudioWithBrowser, waitConnected, watchErrors, type TestStudio } from './helpers/studio.ts';

let studio: TestStudio;
let browser: Browser;
let page: Page;
let errors: string[];

before(async () => {
  ({ studio, browser } = await startStudioWithBrowser());
  ({ page, errors } = await openStudioPage(browser, studio));
});

after(async () => {
  await closeStudioWithBrowser(studio, browser);
});

const blockers = async (p: Page): Promise<string[]> => (await p.getByTestId('train-blockers').count()) === 0 ? [] : p.getByTestId('train-blockers').locator('li').allTextContents();

async function waitForState(id: string, states: readonly RunSummary['state'][], timeoutMs: number): Promise<RunSummary> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const run = await studio.api('runs.get', { id });
    if (states.includes(run.state)) return run;
    if (Date.now() > end) throw new Error(`run ${id} is ${run.state} at step ${run.step}, waiting for ${states.join('/')}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

test('Train is off with the reasons listed, in plain words, before anything is chosen and for bad values', async () => {
  const train = page.getByTestId('train-button');
  assert.equal(await train.isDisabled(), true);
  assert.deepEqual(await blockers(page), ['Model: choose a model folder', 'Dataset: choose a dataset file']);

  // A typed but not loaded folder blocks too; loading it shows why it is not a model.
  await page.getByTestId('model-path').fill('/nonexistent/holiday-photos');
  assert.ok((await blockers(page)).includes('Model: press Load to check the folder you typed'), String(await blockers(page)));
  await page.getByTestId('model-load').click();
  await page.getByTestId('model-error').waitFor({ timeout: 15_000 });
  const modelReason = (await blockers(page))[0] ?? '';
  assert.match(modelReason, /^Model: .*holiday-photos/, modelReason);

  await page.getByTestId('use-sample-model').click();
  await page.getByTestId('model-summary').waitFor({ timeout: 30_000 });
  await page.getByTestId('use-sample-dataset').click();
  await page.getByTestId('dataset-summary').waitFor({ timeout: 30_000 });
  assert.deepEqual(await blockers(page), []);
  assert.equal(await train.isEnabled(), true);

  // A range problem says the range (not "must be a number"), named by the field's label, never its key.
  await page.getByTestId('field-train.steps').fill('1e9');
  await page.getByTestId('field-lora.r').fill('0');
  assert.equal(await train.isDisabled(), true);
  const reasons = await blockers(page);
  assert.ok(reasons.includes('Steps must be at most 10,000,000'), reasons.join(' | '));
  assert.ok(reasons.includes('Rank (r) must be at least 1'), reasons.join(' | '));
  assert.ok(reasons.every((r) => !/train\.|lora\./.test(r)), reasons.join(' | '));
  assert.equal(await page.getByTestId('error-train.steps').textContent(), 'steps must be at most 10,000,000');
  // Pressing the disabled button changes nothing: no second copy of the errors appears.
  await train.click({ force: true });
  assert.equal(await page.getByTestId('start-error').count(), 0);
  await page.getByTestId('field-train.steps').fill('40');
  await page.getByTestId('field-lora.r').fill('8');
  assert.equal(await train.isEnabled(), true);
});

test('a reload keeps the model, the dataset and every setting, the Advanced ones included', async () => {
  await page.getByTestId('field-lora.r').fill('16');
  await page.getByTestId('field-lora.alpha').fill('32');
  await page.getByTestId('field-train.learningRate').fill('5e-4');
  await page.getByTestId('target-o_proj').check();
  await page.getByTestId('advanced-settings').locator('summary').click();
  await page.getByTestId('field-train.warmupSteps').fill('7');
  await page.getByTestId('field-train.gradAccumulation').fill('2');
  await page.getByTestId('field-train.schedule').selectOption('cosine');
  await page.getByTestId('field-lora.rslora').check();
  const modelPath = await page.getByTestId('model-path').inputValue();
  const datasetPath = await page.getByTestId('dataset-path').inputValue();
  assert.ok(modelPath && datasetPath);

  await page.reload();
  await waitConnected(page);
  // The kept model and dataset are loaded again, not just their paths typed back.
  await page.getByTestId('model-summary').waitFor({ timeout: 30_000 });
  await page.getByTestId('dataset-summary').waitFor({ timeout: 30_000 });
  assert.equal(await page.getByTestId('model-path').inputValue(), modelPath);
  assert.equal(await page.getByTestId('dataset-path').inputValue(), datasetPath);
  assert.equal(await page.getByTestId('field-lora.r').inputValue(), '16');
  assert.equal(await page.getByTestId('field-lora.alpha').inputValue(), '32');
  assert.equal(await page.getByTestId('field-train.learningRate').inputValue(), '5e-4');
  assert.equal(await page.getByTestId('target-o_proj').isChecked(), true);
  await page.getByTestId('advanced-settings').locator('summary').click();
  assert.equal(await page.getByTestId('field-train.warmupSteps').inputValue(), '7');
  assert.equal(await page.getByTestId('field-train.gradAccumulation').inputValue(), '2');
  assert.equal(await page.getByTestId('field-train.schedule').inputValue(), 'cosine');
  assert.equal(await page.getByTestId('field-lora.rslora').isChecked(), true);
  assert.equal(await page.getByTestId('train-button').isEnabled(), true, (await blockers(page)).join(' | '));

  // A stale stored value (an unknown schedule) falls back alone; the page still opens with the rest kept.
  await page.evaluate(`(() => {
    const key = 'lora-studio.train-form';
    const kept = JSON.parse(localStorage.getItem(key) ?? '{}');
    kept.advanced.schedule = 'exponential';
    localStorage.setItem(key, JSON.stringify(kept));
  })()`);
  await page.reload();
  await waitConnected(page);
  await page.getByTestId('model-summary').waitFor({ timeout: 30_000 });
  await page.getByTestId('advanced-settings').locator('summary').click();
  assert.equal(await page.getByTestId('field-train.schedule').inputValue(), 'constant');
  assert.equal(await page.getByTestId('field-lora.r').inputValue(), '16');
});

test('Cancel asks first; "Keep training" keeps the run, "Yes, cancel it" cancels it', async () => {
  await page.getByTestId('field-train.steps').fill('100000');
  const known = new Set((await studio.api('runs.list', {})).map((r) => r.id));
  await page.getByTestId('train-button').click();
  let run: RunSummary | undefined;
  for (let i = 0; i < 100 && !run; i++) {
    run = (await studio.api('runs.list', {})).find((r) => !known.has(r.id));
    if (!run) await page.waitForTimeout(100);
  }
  assert.ok(run, 'pressing Train created a run');
  await waitForState(run.id, ['executing'], 60_000);
  const progress = page.getByTestId('run-progress');
  await progress.getByTestId('run-cancel').click();
  const question = progress.getByTestId('run-cancel-question');
  await question.waitFor({ timeout: 5_000 });
  assert.match((await question.textContent()) ?? '', /Cancel this run\?/);
  await page.waitForTimeout(300);
  assert.equal((await studio.api('runs.get', { id: run.id })).state, 'executing', 'asking cancels nothing');

  await progress.getByTestId('run-cancel-keep').click();
  assert.equal(await question.count(), 0);
  assert.equal((await studio.api('runs.get', { id: run.id })).state, 'executing');

  await progress.getByTestId('run-cancel').click();
  await progress.getByTestId('run-cancel-confirm').click();
  await waitForState(run.id, ['cancelled'], 30_000);
  await progress.getByTestId('run-state').filter({ hasText: 'cancelled' }).waitFor({ timeout: 10_000 });
  mkdirSync(resultsDir, { recursive: true });
  await page.screenshot({ path: join(resultsDir, 'keep-and-tell.png'), fullPage: true });
});

test('page tabs: arrow keys move between pages, each tab controls its panel; a run opens from the keyboard', async () => {
  // Two runs, so the Runs page's own pick (the newest) is not the one the keyboard opens.
  const [older] = await studio.api('runs.list', {});
  assert.ok(older);
  const newer = await studio.api('runs.start', { config: { ...older.config, train: { ...older.config.train, steps: 2 } } });
  await waitForState(newer.id, ['completed', 'failed'], 60_000);
  await page.getByTestId('tab-train').focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.getByTestId('tab-runs').getAttribute('aria-selected'), 'true');
  assert.equal(await page.evaluate<string | null>(`document.activeElement?.getAttribute('data-testid') ?? null`), 'tab-runs');
  assert.equal(await page.getByTestId('panel-runs').isVisible(), true);
  assert.equal(await page.getByTestId('panel-train').isHidden(), true);
  const row = page.locator(`[data-testid="runs-row"][data-run-id="${older.id}"]`);
  await row.waitFor({ timeout: 5_000 });
  await page.locator(`[data-testid="run-detail"][data-run-id="${newer.id}"]`).waitFor({ timeout: 5_000 });
  await row.focus();
  await page.keyboard.press('Enter');
  await page.locator(`[data-testid="run-detail"][data-run-id="${older.id}"]`).waitFor({ timeout: 5_000 });
  await page.getByTestId('tab-runs').focus();
  await page.keyboard.press('End');
  assert.equal(await page.getByTestId('tab-quant').getAttribute('aria-selected'), 'true');
  assert.equal(await page.locator('#panel-quant main').count(), 1, 'the lab has its <main>');
  await page.keyboard.press('Home');
  assert.equal(await page.getByTestId('tab-train').getAttribute('aria-selected'), 'true');
  assert.equal(await page.locator('h1').count(), 1);
});

test('the Settings dialog takes focus, keeps Tab inside, and gives focus back when it closes', async () => {
  const opener = page.getByTestId('settings-open');
  await opener.focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByTestId('settings-dialog');
  await dialog.waitFor({ timeout: 5_000 });
  const inside = () => page.evaluate<boolean>(`!!document.activeElement?.closest('[data-testid="settings-dialog"]')`);
  assert.equal(await inside(), true, 'focus moved into the dialog');
  await dialog.locator('input, button').first().waitFor({ timeout: 5_000 });
  for (let i = 0; i < 25; i++) {
    await page.keyboard.press(i % 5 === 4 ? 'Shift+Tab' : 'Tab');
    assert.equal(await inside(), true, `focus left the dialog after ${i + 1} presses`);
  }
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached', timeout: 5_000 });
  assert.equal(await page.evaluate<string | null>(`document.activeElement?.getAttribute('data-testid') ?? null`), 'settings-open', 'focus is back on Settings');
});

test('a page without its token, or with one from an earlier session, says so on a page of its own', async () => {
  for (const url of [studio.origin + '/', `${studio.origin}/?token=not-this-sessions-token`]) {
    const other = await browser.newPage();
    const otherErrors = watchErrors(other);
    await other.goto(url);
    const tokenPage = other.getByTestId('token-page');
    await tokenPage.waitFor({ timeout: 15_000 });
    assert.match((await other.getByTestId('token-problem').textContent()) ?? '', /token/);
    assert.equal(await other.getByTestId('train-form').count(), 0, 'the studio UI is not shown');
    await other.close();
    assert.deepEqual(otherErrors.filter((e) => !/WebSocket/.test(e)), []);
  }
});

test('no uncaught errors on the page', () => {
  assert.deepEqual(errors, []);
});
