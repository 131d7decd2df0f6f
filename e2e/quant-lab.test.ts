/**
 * The quantization lab in a real browser on the real services: sample model, q8_0 and q4_0, the built-in calibration
 * text → the job runs in the quant worker with a live progress bar → the report: one heatmap per format, side by
 * side, with layers × 7 cells each; a click on a cell shows its weight histogram under the format's grid and its
 * error histogram; the worst-first table lists the linears; and 4 bits lose more than 8 as the page reports it.
 * The report is stored: a new window opens the lab on it.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { SAMPLE_MODEL_DIR } from '../engine/io/sample.ts';
import { closeStudioWithBrowser, openStudioPage, resultsDir, startStudioWithBrowser, type TestStudio } from './helpers/studio.ts';

const FORMATS = ['q8_0', 'q4_0'] as const;
const MATRICES = 7;

let studio: TestStudio;
let browser: Browser;

before(async () => {
  ({ studio, browser } = await startStudioWithBrowser());
});

after(async () => {
  await closeStudioWithBrowser(studio, browser);
});

/** Plain JavaScript for the page (tsx would add helpers the page lacks): every distinct progress state, per frame. */
const RECORD_PROGRESS = `(() => {
  window.labSamples = [];
  const tick = () => {
    const el = document.querySelector('[data-testid="lab-progress"]');
    const s = el ? { state: el.getAttribute('data-state'), fraction: Number(el.getAttribute('data-fraction')) } : null;
    const prev = window.labSamples[window.labSamples.length - 1];
    if (s && (!prev || prev.state !== s.state || prev.fraction !== s.fraction)) window.labSamples.push(s);
    requestAnimationFrame(tick);
  };
  tick();
})()`;

test('quantization lab: two formats side by side on the sample model', { timeout: 90_000 }, async () => {
  const layers = (JSON.parse(readFileSync(join(SAMPLE_MODEL_DIR, 'config.json'), 'utf8')) as { num_hidden_layers: number }).num_hidden_layers;
  const { page, errors } = await openStudioPage(browser, studio, { width: 1560, height: 1100 });

  await page.getByTestId('tab-quant').click();
  await page.getByTestId('quant-lab').waitFor();
  await page.getByTestId('lab-use-sample-model').click();
  await page.getByTestId('lab-model-summary').waitFor({ timeout: 30_000 });

  // Exactly the two formats, whatever the defaults are.
  await page.getByTestId('lab-format-q8_0').waitFor();
  const names = await page.locator('[data-testid^="lab-format-"] input').evaluateAll((els) => els.map((e) => e.closest('[data-testid]')?.getAttribute('data-testid') ?? ''));
  assert.ok(names.length >= 7, `the format list shows every format, got ${names.join(', ')}`);
  for (const id of names) {
    const box = page.getByTestId(id).locator('input');
    if ((FORMATS as readonly string[]).includes(id.replace('lab-format-', ''))) await box.check();
    else await box.uncheck();
  }
  await page.getByTestId('lab-calib-sample').click();

  await page.evaluate(RECORD_PROGRESS);
  await page.getByTestId('lab-run-button').click();
  await page.locator('[data-testid="lab-progress"][data-state="done"]').waitFor({ timeout: 60_000 });
  await page.getByTestId('lab-results').waitFor({ timeout: 15_000 });
  const samples = (await page.evaluate('window.labSamples')) as { state: string; fraction: number }[];
  assert.ok(
    samples.some((s) => s.state === 'running' && s.fraction > 0 && s.fraction < 1),
    `the progress bar moved while the job ran: ${JSON.stringify(samples.slice(0, 12))}`,
  );

  // One heatmap per format, layers × 7 cells each, next to each other.
  const boxes = [];
  for (const f of FORMATS) {
    const map = page.getByTestId(`heatmap-${f}`);
    await map.waitFor();
    assert.equal(await map.getByTestId('heatmap-cell').count(), layers * MATRICES, `${f} heatmap has ${layers} × ${MATRICES} cells`);
    boxes.push(await map.boundingBox());
  }
  const [a, b] = boxes;
  assert.ok(a && b, 'both heatmaps are laid out');
  assert.ok(Math.abs(a.y - b.y) < 4 && b.x >= a.x + a.width, `side by side: ${JSON.stringify(boxes)}`);

  // Click the last layer's gate_proj of q4_0: the detail shows both formats' histograms.
  await page.locator(`[data-testid="heatmap-q4_0"] [data-testid="heatmap-cell"][data-layer="${layers - 1}"][data-matrix="gate"]`).click();
  const detail = page.getByTestId('cell-detail');
  await detail.waitFor();
  assert.equal(await detail.getAttribute('data-layer'), String(layers - 1));
  assert.equal(await detail.getAttribute('data-matrix'), 'gate');
  for (const f of FORMATS) {
    const part = page.getByTestId(`cell-detail-${f}`);
    await part.getByTestId('weight-histogram').locator('.recharts-bar-rectangle').first().waitFor();
    assert.ok(Number(await part.getByTestId('weight-histogram').getAttribute('data-grid-lines')) > 0, `${f}: the quantization grid is drawn`);
    assert.ok((await part.getByTestId('weight-histogram').locator('.grid-line').count()) > 0, `${f}: grid lines are on the chart`);
    assert.ok((await part.getByTestId('error-histogram').locator('.recharts-bar-rectangle').count()) > 0, `${f}: the error histogram has bars`);
  }

  const worst = page.getByTestId('worst-row');
  assert.ok((await worst.count()) > 0, 'the worst-first table has rows');
  assert.match((await worst.first().innerText()).trim(), /OK|alert/);

  const relErr = async (f: string): Promise<number> => Number(await page.getByTestId(`format-row-${f}`).getAttribute('data-rel-err'));
  const q8 = await relErr('q8_0');
  const q4 = await relErr('q4_0');
  assert.ok(q8 > 0 && Number.isFinite(q8), `q8_0 relative error read from the page: ${q8}`);
  assert.ok(q4 > q8, `q4_0 (${q4}) loses more than q8_0 (${q8})`);
  await page.getByTestId('plan-card').waitFor();

  mkdirSync(resultsDir, { recursive: true });
  await page.screenshot({ path: join(resultsDir, 'quant-lab.png'), fullPage: true });

  // The q4_0 plan (q8_0 as its higher format) trains: the Train form takes its base and its kept layers.
  await page.getByTestId('worst-format-q4_0').click();
  const card = page.locator('[data-testid="plan-card"][data-base="q4_0"][data-high="q8_0"]');
  await card.waitFor({ timeout: 5_000 });
  const keep = (await card.getByTestId('plan-keep').locator('.lab-chip').allInnerTexts()).map((t) => Number(t.replace('layer ', '')));
  assert.match((await card.getByTestId('plan-train-what').innerText()).trim(), /^the Train form's base weights become q4_0/);
  await card.getByTestId('plan-train').click();
  await page.locator('[data-testid="tab-train"][aria-selected="true"]').waitFor({ timeout: 5_000 });
  assert.equal(await page.getByTestId('field-train.baseWeights').inputValue(), 'q4_0');
  const kept = page.getByTestId('field-train.baseWeightsKeep');
  assert.deepEqual((await kept.inputValue()).split(/[ ,]+/).filter(Boolean).map(Number), [...keep].sort((x, y) => x - y), 'the kept layers are the plan\'s');
  if (keep.length > 0) assert.equal(await page.getByTestId('field-train.baseWeightsKeep.as').inputValue(), 'q8_0');
  // Neither q4_0 nor q8_0 can hold this model's down_proj rows of 176 (the lab showed them in f16): the form says so,
  // naming the tensor (and the kept layer when the first refused is one).
  await page.getByText(/mlp\.down_proj\.weight' \[64, 176\] cannot be held as q[48]_0/).first().waitFor({ timeout: 15_000 });
  // On nf4 (any row) the same kept layers cost memory: the weights part of the estimate grows with them.
  await page.getByTestId('field-backend').selectOption('cpu');
  await page.getByTestId('field-train.baseWeights').selectOption('nf4');
  await kept.fill('0');
  await page.getByTestId('field-train.baseWeightsKeep.as').selectOption('f16');
  await page.locator('[data-testid="memory-estimate"][data-state="ready"]').waitFor({ timeout: 15_000 });
  const weights = async (): Promise<number> => Number(await page.getByTestId('memory-segment-weights').getAttribute('data-bytes'));
  const withKept = await weights();
  await kept.fill('');
  await page.waitForFunction(`Number(document.querySelector('[data-testid="memory-segment-weights"]')?.getAttribute('data-bytes')) < ${withKept}`, undefined, { timeout: 10_000 });
  // A layer the model lacks is named before anything runs (the estimate asks the services, which read the model).
  await kept.fill(`0, ${layers}`);
  await page.getByText(`layer ${layers} cannot be kept: the model has ${layers} layers`).first().waitFor({ timeout: 10_000 });
  // A list that is not one is named on the field as typed.
  await kept.fill('0, x');
  await page.getByTestId('error-train.baseWeightsKeep').getByText('a layer must be a number').waitFor({ timeout: 5_000 });
  await kept.fill('');
  assert.deepEqual(errors, [], `the page logged errors:\n${errors.join('\n')}`);
  await page.close();

  // The report is stored: a new window opens the lab on it, and lists it among the reports.
  const again = await openStudioPage(browser, studio, { width: 1560, height: 1100 });
  await again.page.getByTestId('tab-quant').click();
  await again.page.getByTestId('lab-results').waitFor({ timeout: 15_000 });
  for (const f of FORMATS) await again.page.getByTestId(`heatmap-${f}`).waitFor();
  assert.equal(Number(await again.page.getByTestId('format-row-q8_0').getAttribute('data-rel-err')), q8, 'the same report');
  const options = await again.page.getByTestId('lab-history').locator('option').allInnerTexts();
  assert.equal(options.length, 1);
  assert.match(options[0], /sample-model · q8_0, q4_0$/);
  assert.deepEqual(again.errors, []);
  await again.page.close();
});
