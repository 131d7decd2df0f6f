/**
 * Judge the result, in Chromium through the web host: the Train form's "Evaluation prompts" section turns on fixed
 * prompts (typed, answered every 3 steps); a real run on the sample model answers them at steps 0, 3, 6 and 7 (the
 * last), shown as a timeline on the Train page's live card; the same answers, step by step, are on the run's detail
 * on the Runs page after a reload, and match what the services stored. A bad setting blocks Train, named by label.
 * With a validation split, the run detail shows the final validation loss and its perplexity exp(loss) as numbers.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { closeStudioWithBrowser, openStudioPage, startStudioWithBrowser, type TestStudio } from './helpers/studio.ts';

let studio: TestStudio;
let browser: Browser;

before(async () => {
  ({ studio, browser } = await startStudioWithBrowser());
});
after(async () => {
  await closeStudioWithBrowser(studio, browser);
});

const PROMPTS = ['Write one sentence about a dog.', 'Name a colour.'];

async function timelineOf(page: Page, scope: string): Promise<{ step: number; answers: string[] }[]> {
  const rows = page.locator(`${scope} [data-testid="eval-row"]`);
  const out: { step: number; answers: string[] }[] = [];
  for (let i = 0; i < (await rows.count()); i++) {
    const row = rows.nth(i);
    out.push({ step: Number(await row.getAttribute('data-step')), answers: await row.locator('[data-testid="eval-answer"]').allTextContents() });
  }
  return out;
}

test('evaluation prompts typed in the form are answered at the right steps and shown on the run', { timeout: 180_000 }, async () => {
  const { page, errors } = await openStudioPage(browser, studio);
  await page.getByTestId('use-sample-model').click();
  await page.getByTestId('model-summary').waitFor({ timeout: 30_000 });
  await page.getByTestId('use-sample-dataset').click();
  await page.getByTestId('dataset-summary').waitFor({ timeout: 30_000 });
  await page.getByTestId('field-train.steps').fill('7');
  await page.getByTestId('field-train.learningRate').fill('0.01');
  await page.getByTestId('field-train.validationPercent').fill('10');

  const section = page.getByTestId('eval-prompts-settings');
  await section.locator('summary').click();
  await page.getByTestId('eval-prompts-enabled').check();
  await page.getByTestId('field-evalPrompts.everySteps').fill('3');
  await page.getByTestId('field-evalPrompts.maxNewTokens').fill('6');
  // An empty prompt blocks Train, by label.
  const train = page.getByTestId('train-button');
  assert.equal(await train.isEnabled(), false);
  assert.match((await page.getByTestId('train-blockers').textContent()) ?? '', /Evaluation prompt/);
  await page.getByTestId('eval-prompt-0').fill(PROMPTS[0]);
  await page.getByTestId('eval-prompt-add').click();
  await page.getByTestId('eval-prompt-1').fill(PROMPTS[1]);
  assert.equal(await train.isEnabled(), true, (await page.getByTestId('train-blocked').textContent()) ?? '');
  await train.click();

  const card = page.getByTestId('run-progress');
  await card.locator('[data-testid="eval-row"][data-step="7"] [data-testid="eval-answer"][data-stop]').nth(1).waitFor({ timeout: 150_000 });
  const live = await timelineOf(page, '[data-testid="run-progress"]');
  assert.deepEqual(live.map((r) => r.step), [0, 3, 6, 7]);
  for (const r of live) assert.equal(r.answers.length, 2);

  const runId = (await studio.api('runs.list', {}))[0].id;
  const stored = await studio.api('runs.evalSamples', { id: runId });
  assert.deepEqual(stored.map((s) => `${s.step}:${s.index}`), ['0:0', '0:1', '3:0', '3:1', '6:0', '6:1', '7:0', '7:1']);
  const shown = (s: string) => (s === '' ? '(empty)' : s);
  for (const r of live) for (let i = 0; i < 2; i++) assert.equal(r.answers[i], shown(stored.find((s) => s.step === r.step && s.index === i)?.answer ?? '?'));

  // After a reload, the run's detail on the Runs page shows the same timeline.
  await page.reload();
  await page.getByTestId('connection').and(page.locator('[data-state="open"]')).waitFor({ timeout: 15_000 });
  await page.getByTestId('tab-runs').click();
  await page.locator(`[data-testid="runs-row"][data-run-id="${runId}"] td:nth-child(2)`).click();
  const detail = page.getByTestId('run-detail');
  await detail.locator('[data-testid="eval-row"][data-step="7"]').waitFor({ timeout: 15_000 });
  assert.deepEqual(await timelineOf(page, '[data-testid="run-detail"]'), live);

  // The final validation loss and its perplexity, as numbers: those of the stored last step.
  const last = (await studio.api('runs.metrics', { id: runId })).at(-1);
  assert.ok(last && last.step === 7 && last.validationLoss !== undefined, JSON.stringify(last));
  const validation = detail.getByTestId('final-validation');
  assert.equal(await validation.getAttribute('data-final'), 'true');
  assert.match((await validation.textContent()) ?? '', /final, after step 7/);
  assert.equal(await detail.getByTestId('final-validation-loss').textContent(), last.validationLoss.toFixed(4));
  const ppl = Number(await detail.getByTestId('final-validation-perplexity').textContent());
  const want = Math.exp(last.validationLoss);
  assert.ok(Math.abs(ppl - want) <= 1e-3 * want, `perplexity ${ppl} vs exp(${last.validationLoss}) = ${want}`);
  assert.deepEqual(errors, []);
});
