/**
 * Bad input gets a clear message next to what it is about, and the studio keeps working: a folder that is not a
 * model, a dataset with a broken JSON line, a rank of 0 and a negative learning rate.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { closeStudioWithBrowser, openStudioPage, resultsDir, startStudioWithBrowser, waitConnected, type TestStudio } from './helpers/studio.ts';

let studio: TestStudio;
let browser: Browser;
let page: Page;
let errors: string[];
let scratch: string;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'lora-studio-bad-input-'));
  ({ studio, browser } = await startStudioWithBrowser());
  ({ page, errors } = await openStudioPage(browser, studio));
});

after(async () => {
  await closeStudioWithBrowser(studio, browser);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('a folder that is not a model: the message under the field names the folder and what is missing', async () => {
  const folder = join(scratch, 'holiday-photos');
  mkdirSync(folder);
  writeFileSync(join(folder, 'notes.txt'), 'not a model\n');

  await page.getByTestId('model-path').fill(folder);
  await page.getByTestId('model-load').click();
  const error = page.getByTestId('model-error');
  await error.waitFor({ timeout: 15_000 });
  const text = (await error.textContent()) ?? '';
  assert.ok(text.includes(basename(folder)), `names the folder: "${text}"`);
  assert.match(text, /config\.json/, `says what is missing: "${text}"`);
  assert.equal(await page.getByTestId('model-summary').count(), 0, 'no model summary for a non-model');
  // The message sits in the model card, under the path field.
  assert.equal(await page.getByTestId('model-picker').getByTestId('model-error').count(), 1);
});

test('a dataset with a broken JSON line: the message names the file and the line', async () => {
  const file = join(scratch, 'broken-lines.jsonl');
  const lines = [
    JSON.stringify({ prompt: 'What is the capital of France?', completion: ' Paris.' }),
    JSON.stringify({ prompt: 'Name a primary colour.', completion: ' Red.' }),
    '{"prompt": "Unfinished record", "completion": ',
    JSON.stringify({ prompt: 'Two plus two?', completion: ' Four.' }),
  ];
  writeFileSync(file, lines.join('\n') + '\n');

  // The browser way in: the file travels in the request (datasets.upload).
  await page.getByTestId('dataset-upload').setInputFiles(file);
  const picker = page.getByTestId('dataset-picker');
  const problem = picker.locator('[data-testid="dataset-error"], [data-testid="dataset-bad-records"]');
  await problem.first().waitFor({ timeout: 15_000 });
  const text = (await problem.first().textContent()) ?? '';
  assert.ok(text.includes('broken-lines.jsonl'), `names the file: "${text}"`);
  assert.match(text, /line\D{0,3}3\b|:3\b/, `names line 3: "${text}"`);
  mkdirSync(resultsDir, { recursive: true });
  await page.screenshot({ path: join(resultsDir, 'bad-input.png'), fullPage: true });
});

test('rank 0 and a negative learning rate: messages next to those fields, Train stays off', async () => {
  // With a valid model and dataset chosen, only the two fields can be what blocks Train.
  await page.getByTestId('use-sample-model').click();
  await page.getByTestId('model-summary').waitFor({ timeout: 30_000 });
  await page.getByTestId('use-sample-dataset').click();
  await page.getByTestId('dataset-summary').waitFor({ timeout: 30_000 });
  const train = page.getByTestId('train-button');
  assert.equal(await train.isEnabled(), true, 'Train is on before the bad values');

  await page.getByTestId('field-lora.r').fill('0');
  await page.getByTestId('field-train.learningRate').fill('-0.001');

  const rankError = page.getByTestId('error-lora.r');
  const lrError = page.getByTestId('error-train.learningRate');
  await rankError.waitFor({ timeout: 5_000 });
  await lrError.waitFor({ timeout: 5_000 });
  assert.match((await rankError.textContent()) ?? '', /rank/i);
  assert.match((await lrError.textContent()) ?? '', /learning rate/i);
  // Next to the field: the message belongs to the same field block as the input.
  assert.equal(await page.locator('.field', { has: page.getByTestId('field-lora.r') }).getByTestId('error-lora.r').count(), 1);
  assert.equal(await page.locator('.field', { has: page.getByTestId('field-train.learningRate') }).getByTestId('error-train.learningRate').count(), 1);
  assert.equal(await train.isDisabled(), true, 'Train is off while fields are invalid');
  assert.equal(await page.getByTestId('field-train.steps').locator('..').getByTestId('error-train.steps').count(), 0, 'valid fields carry no message');

  // The services refuse the same config on their own, naming both fields (the UI is not the only guard).
  const sample = await studio.api('models.sample', {});
  const data = await studio.api('datasets.sample', {});
  const res = await fetch(`${studio.origin}/api/runs.start`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-studio-token': studio.token, origin: studio.origin },
    body: JSON.stringify({
      config: { modelPath: sample.path, datasetPath: data.path, lora: { r: 0, alpha: 16, dropout: 0, targets: ['q_proj'] }, train: { learningRate: -0.001, steps: 2, batchSize: 1, maxSeqLen: 32 } },
    }),
  });
  const reply = (await res.json()) as { ok: boolean; error?: { message: string; fieldErrors?: { field: string }[] } };
  assert.equal(reply.ok, false, 'runs.start refuses rank 0');
  const fields = (reply.error?.fieldErrors ?? []).map((f) => f.field).join(' ');
  assert.match(fields, /lora\.r/, `names lora.r: ${JSON.stringify(reply.error)}`);
  assert.match(fields, /train\.learningRate/, `names train.learningRate: ${JSON.stringify(reply.error)}`);

  // Fixing the values brings Train back.
  await page.getByTestId('field-lora.r').fill('8');
  await page.getByTestId('field-train.learningRate').fill('0.002');
  assert.equal(await rankError.count(), 0);
  assert.equal(await lrError.count(), 0);
  assert.equal(await train.isEnabled(), true);
});

test('nothing crashed: after a reload the studio still works (the token survives in the tab)', async () => {
  await page.reload();
  await waitConnected(page);
  await page.getByTestId('use-sample-model').click();
  await page.getByTestId('model-summary').waitFor({ timeout: 30_000 });
  assert.equal(await page.getByTestId('model-error').count(), 0);
  assert.deepEqual(errors, [], 'no uncaught errors in the page');
});
