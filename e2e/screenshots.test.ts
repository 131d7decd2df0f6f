/**
 * Screenshots of every page in the light and the dark theme, written to test-results/screenshot-<theme>-<page>.png
 * for reading: Train (sample model and dataset loaded, a finished run's live card with its evaluation timeline), Runs,
 * a run's detail (validation loss and perplexity, the timeline), Playground (two adapters side by side), Quantization
 * lab and the Settings dialog. Each shot is a real PNG of the page in that theme (the page says which on <html>, and
 * its background differs between the two), and each page is also scanned by axe for serious or critical violations
 * of what this file adds to the pages (the evaluation timeline, the validation numbers, the second adapter).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { RunConfigInput } from '../common/protocol.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../engine/io/sample.ts';
import { closeStudioWithBrowser, resultsDir, startStudioWithBrowser, waitConnected, watchErrors, type TestStudio } from './helpers/studio.ts';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
let studio: TestStudio;
let browser: Browser;
const adapterIds: string[] = [];

function config(name: string, targets: RunConfigInput['lora']['targets']): RunConfigInput {
  return {
    name,
    modelPath: SAMPLE_MODEL_DIR,
    datasetPath: SAMPLE_DATASET_PATH,
    lora: { r: 4, alpha: 8, dropout: 0, targets },
    train: { learningRate: 0.02, steps: 6, batchSize: 2, maxSeqLen: 96, validationPercent: 10 },
    evalPrompts: { prompts: ['Write one sentence about a dog.', 'Name a colour.'], everySteps: 3, maxNewTokens: 8 },
  };
}

before(async () => {
  ({ studio, browser } = await startStudioWithBrowser());
  for (const [name, targets] of [['shots-b', ['o_proj', 'down_proj']], ['shots-a', ['q_proj', 'v_proj']]] as const) {
    let run = await studio.api('runs.start', { config: config(name, [...targets]) });
    for (const end = Date.now() + 120_000; run.state !== 'completed'; ) {
      if (Date.now() > end || run.state === 'failed') throw new Error(`run ${name}: ${run.state} ${run.error ?? ''}`);
      await new Promise((r) => setTimeout(r, 200));
      run = await studio.api('runs.get', { id: run.id });
    }
    adapterIds.push(run.adapterId ?? '');
  }
});
after(async () => {
  await closeStudioWithBrowser(studio, browser);
});

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const backgrounds: Record<string, string> = {};

async function shoot(page: Page, scheme: string, name: string, found: string[]): Promise<void> {
  const path = join(resultsDir, `screenshot-${scheme}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  const bytes = readFileSync(path);
  assert.ok(bytes.subarray(0, 8).equals(PNG) && bytes.length > 10_000, `${path} is a real screenshot (${bytes.length} bytes)`);
  if (!(await page.evaluate('typeof window.axe !== "undefined"'))) await page.addScriptTag({ path: AXE });
  const violations = (await page.evaluate(
    `axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }, resultTypes: ['violations'] }).then((r) => r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(' | ')))`,
  )) as string[];
  found.push(...violations.map((v) => `${scheme}-${name}: ${v}`));
}

for (const scheme of ['dark', 'light'] as const) {
  test(`screenshots of every page in the ${scheme} theme`, { timeout: 120_000 }, async () => {
    mkdirSync(resultsDir, { recursive: true });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: scheme });
    const page = await context.newPage();
    const errors = watchErrors(page);
    const found: string[] = [];
    await page.goto(studio.pageUrl);
    await waitConnected(page);
    assert.equal(await page.evaluate('document.documentElement.dataset.theme'), scheme);
    backgrounds[scheme] = (await page.evaluate('getComputedStyle(document.documentElement).backgroundColor')) as string;

    await page.getByTestId('use-sample-model').click();
    await page.getByTestId('model-summary').waitFor({ timeout: 30_000 });
    await page.getByTestId('use-sample-dataset').click();
    await page.getByTestId('dataset-summary').waitFor({ timeout: 30_000 });
    await page.getByTestId('run-progress').locator('[data-testid="eval-row"][data-step="6"]').waitFor({ timeout: 15_000 });
    await shoot(page, scheme, 'train', found);

    await page.getByTestId('tab-runs').click();
    await page.getByTestId('runs-row').first().waitFor({ timeout: 10_000 });
    await shoot(page, scheme, 'runs', found);
    await page.locator('[data-testid="runs-row"] .runs-name').first().click();
    await page.getByTestId('run-detail').getByTestId('final-validation').waitFor({ timeout: 15_000 });
    await page.getByTestId('run-detail').locator('[data-testid="eval-row"][data-step="6"]').waitFor({ timeout: 15_000 });
    await shoot(page, scheme, 'run-detail', found);

    await page.getByTestId('tab-playground').click();
    await page.getByTestId('pg-adapter').selectOption(adapterIds[1]!);
    await page.getByTestId('pg-model-summary').waitFor({ timeout: 30_000 });
    await page.getByTestId('pg-compare-adapter').selectOption(adapterIds[0]!);
    await page.getByTestId('pg-prompt-text').fill('Describe the weather in the city.');
    await page.getByTestId('pg-maxNewTokens').fill('12');
    await page.getByTestId('pg-backend').selectOption('cpu');
    await page.getByTestId('pg-generate').click();
    for (const v of ['adapter', 'compare', 'base']) await page.locator(`[data-testid="pg-answer-${v}"][data-done="true"]`).waitFor({ timeout: 60_000 });
    await shoot(page, scheme, 'playground', found);

    await page.getByTestId('tab-quant').click();
    await page.getByTestId('lab-model').waitFor({ timeout: 10_000 });
    await shoot(page, scheme, 'lab', found);

    await page.getByTestId('settings-open').click();
    await page.getByTestId('settings-health').waitFor({ timeout: 10_000 });
    await shoot(page, scheme, 'settings', found);

    await context.close();
    assert.deepEqual(found, []);
    assert.deepEqual(errors, []);
  });
}

test('the two themes really differ', () => {
  assert.ok(backgrounds.dark && backgrounds.light, JSON.stringify(backgrounds));
  assert.notEqual(backgrounds.dark, backgrounds.light);
});
