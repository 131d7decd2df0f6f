/**
 * Warn me early, in Chromium through the web host: a run that really diverges on the sample model (fp16, learning
 * rate 1, LoRA alpha 1,000,000 — its gradient dies after the first update) raises a training-health alert on the
 * Train page's live card and as a browser notification (the real Notification API, permission granted, recorded
 * as it is constructed); clicking the alert marks its step on the chart; after a reload the alert is still on the
 * run (from its event log), and the run's detail on the Runs page shows it too. Beside its loss: gradient norm,
 * learning rate, loss scale and smoothed tokens/s (the raw value in the tooltip), and a log-scale toggle. Its adapter
 * is renamed in the Adapters list; the alert thresholds are set in Settings.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../engine/io/sample.ts';
import { closeStudioWithBrowser, resultsDir, startStudioWithBrowser, waitConnected, watchErrors, type TestStudio } from './helpers/studio.ts';

let studio: TestStudio;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let errors: string[];

/** Records every notification the page makes, then lets the real constructor run. */
const RECORD_NOTIFICATIONS = `
  window.__notifications = [];
  const Real = window.Notification;
  window.Notification = class extends Real {
    constructor(title, options) {
      window.__notifications.push({ title, body: options && options.body });
      super(title, options);
    }
  };
`;

before(async () => {
  ({ studio, browser } = await startStudioWithBrowser());
  context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  await context.grantPermissions(['notifications'], { origin: studio.origin });
  await context.addInitScript(RECORD_NOTIFICATIONS);
  page = await context.newPage();
  errors = watchErrors(page);
  await page.goto(studio.pageUrl);
  await waitConnected(page);
});

after(async () => {
  await context?.close();
  await closeStudioWithBrowser(studio, browser);
});

test('a diverging run raises its alert on the live card and as a notification; the alert marks its step on the chart', async () => {
  assert.equal(await page.evaluate('Notification.permission'), 'granted');
  const run = await studio.api('runs.start', {
    config: {
      name: 'diverging',
      modelPath: SAMPLE_MODEL_DIR,
      datasetPath: SAMPLE_DATASET_PATH,
      lora: { r: 8, alpha: 1_000_000, dropout: 0, targets: ['q_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] },
      train: { learningRate: 1, steps: 30, batchSize: 4, maxSeqLen: 64, maxGradNorm: 0, precision: 'fp16', seed: 7 },
    },
  });
  const card = page.getByTestId('run-progress');
  const alert = card.locator('[data-testid="run-alert"][data-kind="grad-norm-vanishing"]');
  await alert.waitFor({ timeout: 60_000 });
  const step = Number(await alert.getAttribute('data-step'));
  assert.ok(step >= 2 && step <= 6, `alert at step ${step}`);
  assert.match((await alert.textContent()) ?? '', new RegExp(`step ${step}.*Gradient norm vanishing.*gradient norm is 0`));

  const notes = (await page.evaluate('window.__notifications')) as { title: string; body: string }[];
  const note = notes.find((n) => n.title.startsWith('Gradient norm vanishing'));
  assert.ok(note, JSON.stringify(notes));
  assert.match(note.title, /diverging/);
  assert.match(note.body, new RegExp(`^Step ${step}: `));

  const chart = page.locator('[data-testid="loss-chart"]').first();
  assert.ok(((await chart.getAttribute('data-alert-steps')) ?? '').split(' ').includes(String(step)));
  await alert.getByRole('button').click();
  assert.equal(await alert.getByRole('button').getAttribute('aria-pressed'), 'true');
  assert.equal(await chart.getAttribute('data-highlighted-step'), String(step));
  await chart.getByText(`step ${step}`, { exact: true }).waitFor({ timeout: 5_000 });

  mkdirSync(resultsDir, { recursive: true });
  await page.screenshot({ path: join(resultsDir, 'health-alert.png'), fullPage: false });

  // After a reload the alert comes back from the run's event log; the run's detail shows it too.
  await page.reload();
  await waitConnected(page);
  await page.getByTestId('run-progress').locator('[data-testid="run-alert"][data-kind="grad-norm-vanishing"]').waitFor({ timeout: 15_000 });
  await page.getByTestId('tab-runs').click();
  await page.locator(`[data-testid="runs-row"][data-run-id="${run.id}"] .runs-name`).click();
  const detail = page.getByTestId('run-detail');
  await detail.locator(`[data-testid="run-alert"][data-kind="grad-norm-vanishing"][data-step="${step}"]`).waitFor({ timeout: 15_000 });
  // The event log holds the alert in plain words: its title, never the internal key.
  await detail.getByTestId('run-events').getByText(/^Gradient norm vanishing: the gradient norm is 0/).waitFor({ timeout: 10_000 });
  assert.doesNotMatch((await detail.getByTestId('run-events').textContent()) ?? '', /\[alert:/);
  assert.deepEqual(errors, []);
});

test("the run's charts beside the loss: grad norm, learning rate, loss scale, memory, smoothed tokens/s with the raw value; log scale", async () => {
  const detail = page.getByTestId('run-detail');
  for (const key of ['gradNorm', 'learningRate', 'lossScale', 'memoryBytes', 'tokensPerSecond']) {
    const chart = detail.getByTestId(`metric-chart-${key}`);
    await chart.waitFor({ timeout: 10_000 });
    assert.equal(await chart.getAttribute('data-points'), '30', key);
    assert.ok((await chart.locator('.recharts-line-curve').count()) === 1, `${key} draws its line`);
  }
  // Memory: the studio's resident set on this cpu run, one vertex per step, read out and ticked in MiB or GiB.
  const memory = detail.getByTestId('metric-chart-memoryBytes');
  assert.match((await memory.locator('.chart-title').textContent()) ?? '', /^Memory \(process RSS\)$/);
  const vertices = await memory.locator('.recharts-line-curve').evaluate((p) => ((p.getAttribute('d') ?? '').match(/[ML]/g) ?? []).length);
  assert.equal(vertices, 30, 'one vertex per step');
  assert.match((await detail.getByTestId('metric-last-memoryBytes').textContent()) ?? '', /^\d+(\.\d)? (MiB|GiB)$/);
  const ticks = await memory.locator('.recharts-yAxis-tick-labels .recharts-cartesian-axis-tick-value').allTextContents();
  assert.ok(ticks.length > 0 && ticks.every((t) => /^[\d.]+\u00a0(MiB|GiB)$/.test(t)), `memory axis ticks: ${ticks.join(' | ')}`);
  const stored = await studio.api('runs.metrics', { id: (await detail.getAttribute('data-run-id')) ?? '' });
  assert.ok(stored.length === 30 && stored.every((p) => p.rssBytes !== undefined && p.rssBytes > 0), 'runs.metrics replies carry each step\'s memory');
  assert.equal(await detail.getByTestId('metric-last-learningRate').textContent(), '1');
  assert.equal(await detail.getByTestId('metric-last-lossScale').textContent(), '65536');
  // The tooltip of tokens/s gives the smoothed value and the step's own.
  const tps = detail.getByTestId('metric-chart-tokensPerSecond');
  await tps.scrollIntoViewIfNeeded();
  const box = await tps.locator('.recharts-wrapper').boundingBox();
  assert.ok(box);
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
  await tps.locator('.recharts-tooltip-wrapper').getByText(/tokens\/s/).waitFor({ timeout: 5_000 });
  assert.match((await tps.locator('.recharts-tooltip-wrapper').textContent()) ?? '', /step \d+.*[\d.]+ \(raw [\d.e+]+\)/);

  await detail.getByTestId('chart-log-scale').check();
  assert.equal(await detail.getByTestId('loss-chart').getAttribute('data-scale'), 'log');
  assert.equal(await detail.getByTestId('metric-chart-gradNorm').getAttribute('data-scale'), 'log');
  // Kept across a reload.
  await page.reload();
  await waitConnected(page);
  assert.equal(await page.getByTestId('run-progress').locator('..').getByTestId('chart-log-scale').first().isChecked(), true);
  await page.screenshot({ path: join(resultsDir, 'run-charts-log.png'), fullPage: true });
  assert.deepEqual(errors, []);
});

test('the Adapters list renames an adapter in place: checked as you type, Escape keeps the old name, Enter saves', async () => {
  await page.getByTestId('tab-train').click();
  const item = page.getByTestId('adapter-item').first();
  const id = (await item.getAttribute('data-adapter-id')) ?? '';
  await item.getByTestId('adapter-rename').click();
  const input = item.getByTestId('adapter-rename-input');
  await input.fill('   ');
  assert.equal(await item.getByTestId('adapter-rename-error').textContent(), 'Name: the adapter name cannot be empty');
  assert.equal(await item.getByTestId('adapter-rename-save').isDisabled(), true);
  await input.press('Escape');
  assert.equal(await item.getByTestId('adapter-name').textContent(), 'diverging');
  await item.getByTestId('adapter-rename').click();
  await item.getByTestId('adapter-rename-input').fill('diverged on purpose');
  await item.getByTestId('adapter-rename-input').press('Enter');
  await page.locator(`[data-testid="adapter-item"][data-adapter-id="${id}"] [data-testid="adapter-name"]`).filter({ hasText: 'diverged on purpose' }).waitFor({ timeout: 5_000 });
  assert.equal((await studio.api('adapters.list', {})).find((a) => a.id === id)?.name, 'diverged on purpose');
  assert.deepEqual(errors, []);
});

test('Settings: the alert thresholds are checked as you type and saved to the services', async () => {
  await page.getByTestId('settings-open').click();
  const dialog = page.getByTestId('settings-dialog');
  await dialog.getByTestId('settings-health').waitFor({ timeout: 10_000 });
  await dialog.getByTestId('setting-health-lossSpikeFactor').fill('0.5');
  assert.equal(await dialog.getByTestId('setting-error-health-lossSpikeFactor').textContent(), 'must be above 1');
  assert.equal(await dialog.getByTestId('settings-save').isDisabled(), true);
  await dialog.getByTestId('setting-health-lossSpikeFactor').fill('4');
  await dialog.getByTestId('setting-health-throughputFraction').fill('0.2');
  await dialog.getByTestId('setting-health-notify').uncheck();
  await dialog.getByTestId('settings-save').click();
  await dialog.getByTestId('settings-saved').waitFor({ timeout: 5_000 });
  const saved = (await studio.api('settings.get', {})).healthAlerts;
  assert.deepEqual([saved.lossSpikeFactor, saved.throughputFraction, saved.notify, saved.enabled], [4, 0.2, false, true]);
  await dialog.getByTestId('settings-close').click();
  assert.deepEqual(errors, []);
});
