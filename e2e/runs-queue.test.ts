/**
 * Runs that survive, in a real browser against the real services: two runs started back to back queue (the second
 * says "queued (position 1)" and starts by itself), the page is reloaded while the first trains, and both end
 * completed with full charts — every step once — on the Runs page, where they are compared on one chart. Then a
 * run is paused (checkpoint, stop), resumed from its checkpoint, and completes with its curve whole.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { RunSummary } from '../common/protocol.ts';
import { launchChromium, resultsDir, startStudio, watchErrors, type TestStudio } from './helpers/studio.ts';

// Long enough that the reload, the pause and the stop land while the run trains: the sample model does ~40 steps/s
// on this 2-core machine with the native kernels, and CI's machine has run it ~4x faster (a 40-step run ended before
// a click on Pause reached it).
const STEPS_A = 300;
const STEPS_B = 30;
const STEPS_PAUSED = 600;

let studio: TestStudio;
let browser: Browser;

before(async () => {
  studio = await startStudio();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await studio?.close();
});

async function openStudio(page: Page): Promise<void> {
  await page.goto(studio.pageUrl);
  await page.getByTestId('connection').and(page.locator('[data-state="open"]')).waitFor({ timeout: 15_000 });
}

async function chooseSamples(page: Page): Promise<void> {
  await page.getByTestId('use-sample-model').click();
  await page.getByTestId('model-summary').waitFor({ timeout: 30_000 });
  await page.getByTestId('use-sample-dataset').click();
  await page.getByTestId('dataset-summary').waitFor({ timeout: 30_000 });
}

/** Sets the step count and presses Train; returns the id of the run it created (the newest one). */
async function train(page: Page, steps: number, known: ReadonlySet<string>, learningRate = 0.02): Promise<RunSummary> {
  await page.getByTestId('field-train.steps').fill(String(steps));
  await page.getByTestId('field-train.learningRate').fill(String(learningRate));
  const button = page.getByTestId('train-button');
  assert.equal(await button.isEnabled(), true, `Train is enabled (${await page.getByTestId('train-blocked').textContent()})`);
  await button.click();
  for (let i = 0; i < 100; i++) {
    const fresh = (await studio.api('runs.list', {})).filter((r) => !known.has(r.id));
    if (fresh.length === 1) return fresh[0];
    await page.waitForTimeout(100);
  }
  throw new Error('pressing Train created no run');
}

async function waitForState(id: string, states: readonly RunSummary['state'][], timeoutMs: number): Promise<RunSummary> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const run = await studio.api('runs.get', { id });
    if (states.includes(run.state)) return run;
    if (run.state === 'failed' && !states.includes('failed')) throw new Error(`run ${id} failed: ${run.error}`);
    if (Date.now() > end) throw new Error(`run ${id} is ${run.state} at step ${run.step} after ${timeoutMs} ms, waiting for ${states.join('/')}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** The vertices of SVG line paths under `selector`, one count per line. */
const lineVertices = (selector: string) => `(() => [...document.querySelectorAll(${JSON.stringify(selector)})].map((p) => ((p.getAttribute('d') ?? '').match(/[ML]/g) ?? []).length))()`;

/** Opens a run on the Runs page and checks its chart shows every step once, as stored. */
async function checkRunChart(page: Page, run: RunSummary, steps: number): Promise<void> {
  await page.locator(`[data-testid="runs-row"][data-run-id="${run.id}"] .runs-name`).click();
  const detail = page.locator(`[data-testid="run-detail"][data-run-id="${run.id}"]`);
  await detail.waitFor({ timeout: 5_000 });
  const counter = detail.getByTestId('chart-point-count');
  await page.waitForFunction(
    `document.querySelector('[data-testid="run-detail"][data-run-id="${run.id}"] [data-testid="chart-point-count"]')?.textContent === '${steps}'`,
    undefined,
    { timeout: 10_000 },
  ).catch(async () => assert.fail(`${run.name}: chart shows ${await counter.textContent()} points, expected ${steps}`));
  const vertices = (await page.evaluate(lineVertices(`[data-testid="run-detail"][data-run-id="${run.id}"] [data-testid="loss-chart"] .recharts-line-curve`))) as number[];
  assert.deepEqual(vertices, [steps], `${run.name}: one loss line through all ${steps} steps`);
  const memory = (await page.evaluate(lineVertices(`[data-testid="run-detail"][data-run-id="${run.id}"] [data-testid="metric-chart-memoryBytes"] .recharts-line-curve`))) as number[];
  assert.deepEqual(memory, [steps], `${run.name}: the memory chart has one vertex per step`);
  const stored = await studio.api('runs.metrics', { id: run.id });
  assert.deepEqual(stored.map((p) => p.step), Array.from({ length: steps }, (_, i) => i + 1), `${run.name}: the services hold steps 1..${steps} once each`);
}

test('two runs queue, the page reloads mid-run, both complete with full charts and compare on one chart', { timeout: 120_000 }, async (t) => {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1100 } });
  const errors = watchErrors(page);
  await openStudio(page);
  await chooseSamples(page);

  // The memory estimate is there before anything starts, and follows the form.
  const estimate = page.getByTestId('memory-estimate');
  await page.locator('[data-testid="memory-estimate"][data-state="ready"]').waitFor({ timeout: 10_000 });
  const total1 = Number(await estimate.getAttribute('data-total'));
  assert.ok(total1 > 0, 'an estimate in bytes');
  for (const part of ['weights', 'lora', 'gradients', 'optimizer', 'activations']) assert.equal(await page.getByTestId(`memory-segment-${part}`).count(), 1, `the bar shows ${part}`);
  await page.getByTestId('field-train.batchSize').fill('8');
  await page.waitForFunction(`Number(document.querySelector('[data-testid="memory-estimate"]')?.getAttribute('data-total')) > ${total1}`, undefined, { timeout: 5_000 });
  await page.getByTestId('field-train.batchSize').fill('4');
  await page.waitForFunction(`Number(document.querySelector('[data-testid="memory-estimate"]')?.getAttribute('data-total')) === ${total1}`, undefined, { timeout: 5_000 });

  const a = await train(page, STEPS_A, new Set());
  await waitForState(a.id, ['executing'], 10_000);
  // Another learning rate, so the compared curves differ.
  const b = await train(page, STEPS_B, new Set([a.id]), 0.005);
  // The second waits behind the first, and the Train page keeps the running one's live card and chart.
  await page.getByTestId('run-history').locator('.badge', { hasText: 'queued (position 1)' }).waitFor({ timeout: 5_000 });
  await page.locator('[data-testid="run-progress"] [data-testid="run-state"]', { hasText: 'training' }).waitFor({ timeout: 5_000 });
  assert.equal(await page.getByTestId('run-progress').locator('.run-name').textContent(), a.name, 'the live card still shows the running run');
  assert.equal((await studio.api('runs.get', { id: a.id })).state, 'executing', 'the first run trains while the second waits');
  mkdirSync(resultsDir, { recursive: true });
  await page.screenshot({ path: join(resultsDir, 'runs-queued.png') });

  // Reload while the first run trains.
  for (;;) {
    const now = await studio.api('runs.get', { id: a.id });
    assert.equal(now.state, 'executing', `the first run is still training before the reload (step ${now.step})`);
    if (now.step >= 5) break;
    await page.waitForTimeout(100);
  }
  const stepAtReload = (await studio.api('runs.get', { id: a.id })).step;
  await page.reload();
  await page.getByTestId('connection').and(page.locator('[data-state="open"]')).waitFor({ timeout: 15_000 });
  t.diagnostic(`reloaded at step ${stepAtReload} of ${STEPS_A} of the first run`);
  assert.ok(stepAtReload < STEPS_A);

  await page.getByTestId('tab-runs').click();
  await page.getByTestId('runs-page').waitFor();
  // Compare both while they are still going: the chart must fill in live, not only on a later reload.
  for (const r of [a, b]) await page.locator(`[data-testid="runs-row"][data-run-id="${r.id}"] [data-testid="runs-compare"]`).check();

  // The second starts by itself when the first is done.
  await waitForState(a.id, ['completed'], 60_000);
  await waitForState(b.id, ['executing', 'finalizing', 'completed'], 10_000);
  await waitForState(b.id, ['completed'], 60_000);
  for (const r of [a, b]) await page.locator(`[data-testid="runs-row"][data-run-id="${r.id}"][data-state="completed"]`).waitFor({ timeout: 5_000 });
  const history = await studio.api('runs.history', { id: b.id });
  assert.deepEqual(history.map((h) => h.to), ['pending', 'validating', 'queuing', 'executing', 'finalizing', 'completed'], 'the second run waited, then ran');

  // Both charts whole: every step once.
  const runs = new Map((await studio.api('runs.list', {})).map((r) => [r.id, r]));
  await checkRunChart(page, runs.get(a.id) ?? a, STEPS_A);
  await checkRunChart(page, runs.get(b.id) ?? b, STEPS_B);

  // One chart, two lines in two colours, a legend naming both.
  const legend = page.getByTestId('compare-legend-item');
  await page.waitForFunction(
    `[...document.querySelectorAll('[data-testid="compare-legend-item"]')].map((e) => e.getAttribute('data-points')).join(',') === '${STEPS_A},${STEPS_B}'`,
    undefined,
    { timeout: 10_000 },
  ).catch(async () => assert.fail(`compare legend points: ${(await legend.evaluateAll((els) => els.map((e) => e.getAttribute('data-points')))).join(',')}`));
  assert.deepEqual(await legend.evaluateAll((els) => els.map((e) => e.getAttribute('data-run-id'))), [a.id, b.id]);
  const names = await legend.locator('.compare-name').allTextContents();
  assert.deepEqual(names, [runs.get(a.id)?.name, runs.get(b.id)?.name]);
  assert.deepEqual(await page.evaluate(lineVertices('[data-testid="compare-chart"] .recharts-line-curve')), [STEPS_A, STEPS_B], 'each line has all its steps');
  const strokes = (await page.evaluate(`[...document.querySelectorAll('[data-testid="compare-chart"] .recharts-line-curve')].map((p) => p.getAttribute('stroke'))`)) as string[];
  assert.equal(new Set(strokes).size, 2, `two colours: ${strokes.join(', ')}`);

  mkdirSync(resultsDir, { recursive: true });
  await page.screenshot({ path: join(resultsDir, 'runs.png'), fullPage: true });
  assert.deepEqual(errors, [], 'no errors in the page');
  await page.close();
});

test('pause a training run, see it paused, resume it from its checkpoint, and it completes whole', { timeout: 90_000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  const errors = watchErrors(page);
  await openStudio(page);
  await chooseSamples(page);
  const known = new Set((await studio.api('runs.list', {})).map((r) => r.id));
  const run = await train(page, STEPS_PAUSED, known);
  await waitForState(run.id, ['executing'], 10_000);

  await page.getByTestId('tab-runs').click();
  const row = page.locator(`[data-testid="runs-row"][data-run-id="${run.id}"]`);
  await page.locator(`[data-testid="runs-row"][data-run-id="${run.id}"][data-state="executing"]`).waitFor({ timeout: 10_000 });
  for (;;) {
    const now = await studio.api('runs.get', { id: run.id });
    if (now.step >= 3) break;
    assert.equal(now.state, 'executing');
    await page.waitForTimeout(50);
  }
  await row.getByTestId('run-pause').click();
  const paused = await waitForState(run.id, ['paused'], 15_000);
  assert.ok(paused.step < STEPS_PAUSED, `paused before the end (step ${paused.step})`);
  await page.locator(`[data-testid="runs-row"][data-run-id="${run.id}"][data-state="paused"]`).waitFor({ timeout: 5_000 });
  assert.equal(await row.getByTestId('runs-state').textContent(), 'paused');
  assert.equal(await row.getByTestId('run-pause').count(), 0, 'a paused run offers no Pause');

  // The open run's history shows the pause; its files show the checkpoint the pause wrote.
  await row.locator('.runs-name').click();
  const detail = page.locator(`[data-testid="run-detail"][data-run-id="${run.id}"]`);
  await detail.getByTestId('run-state-history').locator('li[data-to="paused"]').waitFor({ timeout: 5_000 });
  await detail.getByTestId('run-file-checkpoint').getByText(`step ${paused.checkpointStep ?? paused.step}`).waitFor({ timeout: 5_000 });

  await row.getByTestId('run-resume').click();
  const done = await waitForState(run.id, ['completed'], 60_000);
  assert.ok((done.resumeCount ?? 0) >= 1 || paused.step === 0, `the run continued from its checkpoint (resumeCount ${done.resumeCount})`);
  const states = (await studio.api('runs.history', { id: run.id })).map((h) => h.to);
  assert.deepEqual(states.slice(-5), ['paused', 'queuing', 'executing', 'finalizing', 'completed'], states.join(' → '));
  await page.locator(`[data-testid="runs-row"][data-run-id="${run.id}"][data-state="completed"]`).waitFor({ timeout: 5_000 });
  await checkRunChart(page, done, STEPS_PAUSED);
  assert.deepEqual(errors, [], 'no errors in the page');
  await page.close();
});

test('stop & save now: the run ends completed at the step it reached, with its adapter and its curve up to there', { timeout: 60_000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  const errors = watchErrors(page);
  await openStudio(page);
  await chooseSamples(page);
  const known = new Set((await studio.api('runs.list', {})).map((r) => r.id));
  const run = await train(page, STEPS_PAUSED, known);
  await waitForState(run.id, ['executing'], 10_000);
  // The Train page's progress card offers the same actions as the Runs page.
  const progress = page.getByTestId('run-progress');
  await progress.getByTestId('run-stop-save').waitFor({ timeout: 5_000 });
  for (;;) {
    const now = await studio.api('runs.get', { id: run.id });
    if (now.step >= 3) break;
    assert.equal(now.state, 'executing');
    await page.waitForTimeout(50);
  }
  await progress.getByTestId('run-stop-save').click();
  const done = await waitForState(run.id, ['completed'], 20_000);
  assert.ok(done.step < STEPS_PAUSED, `stopped early (step ${done.step})`);
  assert.ok(done.adapterId, 'its adapter was kept');
  assert.ok((await studio.api('adapters.list', {})).some((x) => x.id === done.adapterId), 'the adapter is listed');
  await page.locator('[data-testid="run-progress"][data-state="completed"]').waitFor({ timeout: 5_000 });
  // Its own outcome, not a plain "completed" at 3/600.
  assert.equal(await progress.getByTestId('run-state').textContent(), `stopped early at step ${done.step}`);
  assert.equal(await progress.getByTestId('run-state').getAttribute('data-outcome'), 'stopped-early');
  await page.getByTestId('tab-runs').click();
  await checkRunChart(page, done, done.step);
  assert.equal(await page.locator(`[data-testid="runs-row"][data-run-id="${run.id}"] [data-testid="runs-state"]`).textContent(), `stopped early at step ${done.step}`);
  await page.locator(`[data-testid="run-detail"][data-run-id="${run.id}"] [data-testid="run-file-adapter"] code.path`).waitFor({ timeout: 5_000 });
  assert.deepEqual(errors, [], 'no errors in the page');
  await page.close();
});

test('rename, tag and find a run, delete is refused while it trains, and a delete leaves every window', { timeout: 90_000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  const other = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [...watchErrors(page), ...watchErrors(other)];
  await openStudio(page);
  await openStudio(other);
  await chooseSamples(page);
  const known = new Set((await studio.api('runs.list', {})).map((r) => r.id));
  const kept = (await studio.api('runs.list', {})).find((r) => r.state === 'completed' && r.adapterId);
  assert.ok(kept, 'an earlier test left a completed run with an adapter');
  const long = await train(page, 2000, known);
  await waitForState(long.id, ['executing'], 10_000);
  await page.getByTestId('tab-runs').click();
  await other.getByTestId('tab-runs').click();

  // While it trains, Delete is off and the page says why.
  await page.locator(`[data-testid="runs-row"][data-run-id="${long.id}"] .runs-name`).click();
  const longDetail = page.locator(`[data-testid="run-detail"][data-run-id="${long.id}"]`);
  await longDetail.waitFor({ timeout: 5_000 });
  assert.equal(await longDetail.getByTestId('run-delete').isDisabled(), true);
  assert.match((await longDetail.getByTestId('run-delete-why').textContent()) ?? '', /cannot be deleted while it is training \(step \d+ of 2000\): cancel or pause it first/);
  await studio.api('runs.cancel', { id: long.id });
  await waitForState(long.id, ['cancelled'], 20_000);

  // Rename and tag a finished run; the other window shows it without a reload.
  await page.locator(`[data-testid="runs-row"][data-run-id="${kept.id}"] .runs-name`).click();
  const detail = page.locator(`[data-testid="run-detail"][data-run-id="${kept.id}"]`);
  await detail.waitFor({ timeout: 5_000 });
  await detail.getByTestId('run-info-name').fill('');
  assert.equal(await detail.getByTestId('run-info-save').isDisabled(), true, 'an empty name is not sent');
  assert.match((await detail.getByTestId('run-info').locator('.field-error').first().textContent()) ?? '', /Run name cannot be empty/);
  await detail.getByTestId('run-info-name').fill('e2e keeper');
  await detail.getByTestId('run-info-tags').fill('e2e, keep');
  await detail.getByTestId('run-info-notes').fill('renamed by the e2e test');
  await detail.getByTestId('run-info-save').click();
  await other.locator(`[data-testid="runs-row"][data-run-id="${kept.id}"] [data-testid="runs-name"]`).filter({ hasText: 'e2e keeper' }).waitFor({ timeout: 5_000 });
  const renamed = await studio.api('runs.get', { id: kept.id });
  assert.deepEqual([renamed.name, renamed.tags, renamed.notes], ['e2e keeper', ['e2e', 'keep'], 'renamed by the e2e test']);

  // Search and tag filter.
  const rows = page.locator('[data-testid="runs-row"]');
  const total = await rows.count();
  assert.ok(total >= 3, `runs listed: ${total}`);
  await page.getByTestId('runs-search').fill('keeper');
  assert.deepEqual(await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-run-id'))), [kept.id]);
  await page.getByTestId('runs-search').fill('no-such-run-anywhere');
  await page.getByTestId('runs-none-match').waitFor({ timeout: 2_000 });
  await page.getByTestId('runs-filter-clear').click();
  assert.equal(await rows.count(), total);
  await page.locator('[data-testid="runs-tag-filter"][data-tag="keep"]').click();
  assert.deepEqual(await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-run-id'))), [kept.id]);
  await page.getByTestId('runs-filter-clear').click();
  await page.screenshot({ path: join(resultsDir, 'runs-manage.png') });

  // Delete the cancelled run: the dialog says what it frees; the run leaves both windows and the disk.
  await page.locator(`[data-testid="runs-row"][data-run-id="${long.id}"] .runs-name`).click();
  await longDetail.getByTestId('run-delete').click();
  const dialog = page.getByTestId('run-delete-dialog');
  await dialog.waitFor();
  await page.getByTestId('run-delete-question').filter({ hasText: 'this frees' }).waitFor({ timeout: 5_000 });
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached', timeout: 2_000 });
  assert.equal((await studio.api('runs.get', { id: long.id })).state, 'cancelled', 'Escape keeps the run');
  await longDetail.getByTestId('run-delete').click();
  await page.getByTestId('run-delete-question').filter({ hasText: 'this frees' }).waitFor({ timeout: 5_000 });
  await page.getByTestId('run-delete-confirm').click();
  await page.locator(`[data-testid="runs-row"][data-run-id="${long.id}"]`).waitFor({ state: 'detached', timeout: 5_000 });
  await other.locator(`[data-testid="runs-row"][data-run-id="${long.id}"]`).waitFor({ state: 'detached', timeout: 5_000 });
  await assert.rejects(studio.api('runs.get', { id: long.id }), /no run with id/);
  assert.equal(existsSync(join(studio.home, 'runs', long.id)), false, 'its folder is gone');
  assert.deepEqual(errors, [], 'no errors in the pages');
  await other.close();
  await page.close();
});

/** A port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

test('the settings dialog reads and writes the studio settings, refusing bad values on their field', { timeout: 30_000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);
  await openStudio(page);
  await page.getByTestId('settings-open').click();
  const dialog = page.getByTestId('settings-dialog');
  await dialog.waitFor();
  const before = await studio.api('settings.get', {});
  assert.equal(await page.getByTestId('setting-checkpointEverySteps').inputValue(), String(before.checkpointEverySteps));
  assert.equal(await page.getByTestId('setting-autoResume').isChecked(), before.autoResume);
  assert.equal(await page.getByTestId('setting-prometheusOn').isChecked(), before.prometheusPort !== null);

  await page.getByTestId('setting-maxConcurrentRunsPerDevice').fill('0');
  assert.match((await page.getByTestId('setting-error-maxConcurrentRunsPerDevice').textContent()) ?? '', /at least 1/);
  assert.equal(await page.getByTestId('settings-save').isEnabled(), false, 'nothing bad is sent');

  const port = await freePort();
  await page.getByTestId('setting-maxConcurrentRunsPerDevice').fill('2');
  await page.getByTestId('setting-checkpointEverySteps').fill('7');
  await page.getByTestId('setting-checkpointEveryMinutes').fill('2.5');
  await page.getByTestId('setting-autoResume').setChecked(false);
  await page.getByTestId('setting-prometheusOn').setChecked(true);
  await page.getByTestId('setting-prometheusPort').fill(String(port));
  assert.equal(await page.getByTestId('setting-cpuThreads').inputValue(), '', 'cpu threads: automatic');
  await page.getByTestId('setting-cpuThreads').fill('0');
  assert.match((await page.getByTestId('setting-error-cpuThreads').textContent()) ?? '', /at least 1/);
  await page.getByTestId('setting-cpuThreads').fill('3');
  await page.screenshot({ path: join(resultsDir, 'settings.png') });
  await page.getByTestId('settings-save').click();
  await page.getByTestId('settings-saved').waitFor({ timeout: 5_000 });
  const after = await studio.api('settings.get', {});
  assert.deepEqual(
    { s: after.checkpointEverySteps, m: after.checkpointEveryMinutes, a: after.autoResume, c: after.maxConcurrentRunsPerDevice, p: after.prometheusPort, t: after.cpuThreads },
    { s: 7, m: 2.5, a: false, c: 2, p: port, t: 3 },
  );
  // The endpoint the dialog switched on really serves the exposition format.
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /^# (HELP|TYPE) /m);

  // Off again: port null, and the studio's own defaults back for the other tests' sake.
  await page.getByTestId('setting-prometheusOn').setChecked(false);
  await page.getByTestId('settings-save').click();
  await page.waitForFunction(`!document.querySelector('[data-testid="setting-prometheusPort"]')`);
  await page.getByTestId('settings-saved').waitFor({ timeout: 5_000 });
  assert.equal((await studio.api('settings.get', {})).prometheusPort, null);
  await studio.api('settings.set', before);
  await page.getByTestId('settings-close').click();
  assert.equal(await dialog.count(), 0, 'the dialog closes');
  assert.deepEqual(errors, [], 'no errors in the page');
  await page.close();
});
