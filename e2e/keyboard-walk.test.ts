/**
 * A keyboard-only walk, in Chromium through the web host: from a fresh page, Tab reaches the page tabs; the arrow key
 * shows Runs; Tab reaches the run's row and Enter opens its detail; Tab goes on into that detail (its actions);
 * Shift+Tab walks back up to Settings in the top bar, Enter opens the dialog with focus inside, Tab stays inside,
 * Escape closes it and gives focus back to Settings. No mouse, no element.focus(): only keys.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../engine/io/sample.ts';
import { closeStudioWithBrowser, openStudioPage, startStudioWithBrowser, type TestStudio } from './helpers/studio.ts';

let studio: TestStudio;
let browser: Browser;
before(async () => {
  ({ studio, browser } = await startStudioWithBrowser());
});
after(async () => {
  await closeStudioWithBrowser(studio, browser);
});

/** What has focus: its data-testid, and whether it sits inside the element with `within`'s testid. */
async function focused(page: Page, within?: string): Promise<{ testId: string | null; inside: boolean; tag: string }> {
  return page.evaluate(
    `(() => { const a = document.activeElement; return { testId: a?.getAttribute('data-testid') ?? null, tag: a?.tagName ?? '', inside: ${within ? `!!a?.closest('[data-testid="${within}"]')` : 'false'} }; })()`,
  );
}

/** Presses `key` until `ok` holds for the focused element; fails after `max` presses, saying where focus went. */
async function pressUntil(page: Page, key: string, ok: (f: { testId: string | null; inside: boolean; tag: string }) => boolean, max: number, what: string, within?: string): Promise<number> {
  const seen: string[] = [];
  for (let i = 1; i <= max; i++) {
    await page.keyboard.press(key);
    const f = await focused(page, within);
    if (ok(f)) return i;
    seen.push(f.testId ?? f.tag);
  }
  assert.fail(`${what}: not reached after ${max} × ${key}; focus went ${seen.join(' → ')}`);
}

test('Train → Runs → run detail → Settings with the keyboard alone', { timeout: 120_000 }, async () => {
  let run = await studio.api('runs.start', {
    config: { name: 'keyboard-walk', modelPath: SAMPLE_MODEL_DIR, datasetPath: SAMPLE_DATASET_PATH, lora: { r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'] }, train: { learningRate: 0.01, steps: 3, batchSize: 2, maxSeqLen: 96 } },
  });
  for (const deadline = Date.now() + 60_000; run.state !== 'completed'; ) {
    assert.ok(Date.now() < deadline && run.state !== 'failed', `run ${run.state}`);
    await new Promise((r) => setTimeout(r, 200));
    run = await studio.api('runs.get', { id: run.id });
  }
  const { page, errors } = await openStudioPage(browser, studio);

  // Train: the selected tab is the one tab stop of the tab list.
  await pressUntil(page, 'Tab', (f) => f.testId === 'tab-train', 30, 'the Train tab');
  assert.equal(await page.getByTestId('tab-train').getAttribute('aria-selected'), 'true');
  // Tab from the tab goes into the Train page's panel, not along the other tabs.
  await page.keyboard.press('Tab');
  assert.equal((await focused(page, 'panel-train')).inside, true, 'Tab after the tabs enters the Train panel');
  await page.keyboard.press('Shift+Tab');
  assert.equal((await focused(page)).testId, 'tab-train');

  // Runs, by arrow key; the panel shows and the tab keeps focus.
  await page.keyboard.press('ArrowRight');
  assert.equal((await focused(page)).testId, 'tab-runs');
  assert.equal(await page.getByTestId('tab-runs').getAttribute('aria-selected'), 'true');
  assert.equal(await page.getByTestId('panel-runs').isVisible(), true);

  // The run's row, by Tab; Enter opens its detail.
  await pressUntil(page, 'Tab', (f) => f.testId === 'runs-row', 40, 'the run row', 'panel-runs');
  await page.keyboard.press('Enter');
  const detail = page.locator(`[data-testid="run-detail"][data-run-id="${run.id}"]`);
  await detail.waitFor({ timeout: 5_000 });
  // Opening the detail does not drop focus onto the page body: the next Tab goes on from the row.
  assert.equal((await focused(page)).testId, 'runs-row', 'focus stays on the row it opened');
  // Tab goes on into the detail: its actions are reachable without the mouse.
  await pressUntil(page, 'Tab', (f) => f.inside, 40, 'a control of the run detail', 'run-detail');

  // Back up to Settings in the top bar; Enter opens the dialog with focus inside it.
  await pressUntil(page, 'Shift+Tab', (f) => f.testId === 'settings-open', 80, 'the Settings button');
  await page.keyboard.press('Enter');
  const dialog = page.getByTestId('settings-dialog');
  await dialog.waitFor({ timeout: 5_000 });
  await page.waitForFunction(`!!document.activeElement?.closest('[data-testid="settings-dialog"]')`, undefined, { timeout: 5_000 });
  for (let i = 0; i < 15; i++) {
    await page.keyboard.press('Tab');
    assert.equal((await focused(page, 'settings-dialog')).inside, true, `Tab ${i + 1} left the dialog`);
  }
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached', timeout: 5_000 });
  assert.equal((await focused(page)).testId, 'settings-open', 'focus is back on Settings');
  assert.deepEqual(errors, []);
});
