/**
 * An accessibility scan of every page with axe-core (Deque's maintained checker, its script injected into the page):
 * Train (model and dataset loaded, with a run, its alert and charts), Runs, a run's detail, Playground, Quantization lab and the Settings
 * dialog, in the dark and the light theme. No serious or critical violation may be left (WCAG 2.x A/AA rules and
 * axe's best practices); the report of each page is written to test-results/ for reading.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../engine/io/sample.ts';
import { closeStudioWithBrowser, resultsDir, startStudioWithBrowser, waitConnected, watchErrors, type TestStudio } from './helpers/studio.ts';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

let studio: TestStudio;
let browser: Browser;

before(async () => {
  ({ studio, browser } = await startStudioWithBrowser());
  // A finished run with an alert, so the live card, its alert list, the charts and the run's detail are all there.
  const run = await studio.api('runs.start', {
    config: {
      name: 'a11y',
      modelPath: SAMPLE_MODEL_DIR,
      datasetPath: SAMPLE_DATASET_PATH,
      lora: { r: 8, alpha: 1_000_000, dropout: 0, targets: ['q_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] },
      train: { learningRate: 1, steps: 12, batchSize: 4, maxSeqLen: 64, maxGradNorm: 0, precision: 'fp16', seed: 7 },
    },
  });
  for (const end = Date.now() + 120_000; (await studio.api('runs.get', { id: run.id })).state !== 'completed'; ) {
    if (Date.now() > end) throw new Error('the scan run did not complete');
    await new Promise((r) => setTimeout(r, 200));
  }
});

after(async () => {
  await closeStudioWithBrowser(studio, browser);
});

interface AxeNode {
  target: string[];
  html: string;
  failureSummary?: string;
}
interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: AxeNode[];
}

async function scan(page: Page, name: string): Promise<string[]> {
  if (!(await page.evaluate('typeof window.axe !== "undefined"'))) await page.addScriptTag({ path: AXE });
  const violations = (await page.evaluate(`axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }, resultTypes: ['violations'] }).then((r) => r.violations)`)) as AxeViolation[];
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `axe-${name}.json`), `${JSON.stringify(violations, null, 2)}\n`);
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${name}: ${v.id} (${v.impact}) ${v.help}: ${v.nodes.map((n) => `${n.target.join(' ')} ${n.failureSummary ?? ''}`).join(' | ')}`);
}

for (const scheme of ['dark', 'light'] as const) {
  test(`every page in the ${scheme} theme: no serious or critical axe violation`, async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: scheme });
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(studio.pageUrl);
    await waitConnected(page);
    const found: string[] = [];

    // The Train page as it is used: the sample model and dataset loaded (summary, preview, memory estimate).
    await page.getByTestId('use-sample-model').click();
    await page.getByTestId('model-summary').waitFor({ timeout: 30_000 });
    await page.getByTestId('use-sample-dataset').click();
    await page.getByTestId('dataset-summary').waitFor({ timeout: 30_000 });
    await page.locator('[data-testid="run-alert"]').first().waitFor({ timeout: 15_000 });
    await page.getByTestId('metric-charts').first().waitFor({ timeout: 15_000 });
    found.push(...(await scan(page, `${scheme}-train`)));

    await page.getByTestId('tab-runs').click();
    await page.getByTestId('runs-row').first().waitFor({ timeout: 10_000 });
    found.push(...(await scan(page, `${scheme}-runs`)));
    await page.locator('[data-testid="runs-row"] .runs-name').first().click();
    await page.getByTestId('run-detail').locator('[data-testid="run-alert"]').first().waitFor({ timeout: 15_000 });
    found.push(...(await scan(page, `${scheme}-run-detail`)));

    await page.getByTestId('tab-playground').click();
    await page.getByTestId('pg-prompt').waitFor({ timeout: 10_000 });
    found.push(...(await scan(page, `${scheme}-playground`)));

    await page.getByTestId('tab-quant').click();
    await page.getByTestId('lab-model').waitFor({ timeout: 10_000 });
    found.push(...(await scan(page, `${scheme}-lab`)));

    await page.getByTestId('settings-open').click();
    await page.getByTestId('settings-health').waitFor({ timeout: 10_000 });
    found.push(...(await scan(page, `${scheme}-settings`)));

    await context.close();
    assert.deepEqual(found, []);
    assert.deepEqual(errors, []);
  });
}
