/**
 * Compare two adapters in the Playground, in Chromium through the web host: two runs on the sample model leave two
 * adapters; choosing one, then the other as "Compare with a second adapter", one Generate shows both answers side by
 * side, titled by the adapters' names, with the same settings; each equals plain generation with that adapter alone
 * (in this process, on the same Alpaca-wrapped prompt). With the base model checked too, three answers stand in a row.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import type { RunSummary } from '../common/protocol.ts';
import { generate } from '../engine/generate/generate.ts';
import { formatPrompt } from '../engine/generate/prompt-format.ts';
import { loadModel, loadTokenizer } from '../engine/io/model-source.ts';
import { loadAdapter } from '../engine/io/peft-adapter.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../engine/io/sample.ts';
import type { Tokenizer } from '../engine/model/types.ts';
import { closeStudioWithBrowser, openStudioPage, startStudioWithBrowser, type TestStudio } from './helpers/studio.ts';

let studio: TestStudio;
let browser: Browser;
before(async () => {
  ({ studio, browser } = await startStudioWithBrowser());
});
after(async () => {
  await closeStudioWithBrowser(studio, browser);
});

async function finishedRun(name: string, learningRate: number, targets: string[]): Promise<RunSummary> {
  let run = await studio.api('runs.start', {
    config: { name, modelPath: SAMPLE_MODEL_DIR, datasetPath: SAMPLE_DATASET_PATH, lora: { r: 4, alpha: 8, dropout: 0, targets: targets as never }, train: { learningRate, steps: 6, batchSize: 2, maxSeqLen: 96 } },
  });
  for (const deadline = Date.now() + 90_000; run.state !== 'completed'; ) {
    assert.ok(!['failed', 'cancelled'].includes(run.state), `${name} ended ${run.state}: ${run.error ?? ''}`);
    assert.ok(Date.now() < deadline, `${name} did not finish in time`);
    await new Promise((r) => setTimeout(r, 200));
    run = await studio.api('runs.get', { id: run.id });
  }
  return run;
}

test('two adapters answer the same prompt side by side, each as it would alone', { timeout: 180_000 }, async () => {
  const runA = await finishedRun('compare-a', 0.05, ['q_proj', 'v_proj']);
  const runB = await finishedRun('compare-b', 0.05, ['o_proj', 'down_proj']);
  const adapters = await studio.api('adapters.list', {});
  const a = adapters.find((x) => x.id === runA.adapterId);
  const b = adapters.find((x) => x.id === runB.adapterId);
  assert.ok(a && b);

  const { page, errors } = await openStudioPage(browser, studio);
  await page.getByTestId('tab-playground').click();
  await page.getByTestId('pg-adapter').selectOption(a.id);
  await page.getByTestId('pg-model-summary').waitFor({ timeout: 30_000 });
  await page.locator('[data-testid="pg-format-alpaca"][aria-checked="true"]').waitFor({ timeout: 15_000 });
  await page.getByTestId('pg-compare-adapter').selectOption(b.id);
  await page.getByTestId('pg-compare').uncheck();
  const prompt = 'Describe the weather in the city.';
  await page.getByTestId('pg-prompt-text').fill(prompt);
  await page.getByTestId('pg-maxNewTokens').fill('12');
  await page.getByTestId('pg-backend').selectOption('cpu');
  await page.getByTestId('pg-generate').click();
  for (const v of ['adapter', 'compare']) await page.locator(`[data-testid="pg-answer-${v}"][data-done="true"]`).waitFor({ timeout: 60_000 });
  assert.equal(await page.getByTestId('pg-answer-base').count(), 0);
  assert.match((await page.getByTestId('pg-answer-adapter').locator('h2').textContent()) ?? '', /With compare-a/);
  assert.match((await page.getByTestId('pg-answer-compare').locator('h2').textContent()) ?? '', /With compare-b/);

  const model = loadModel(SAMPLE_MODEL_DIR, { dtype: Float32Array });
  const tokenizer = (await loadTokenizer(SAMPLE_MODEL_DIR)) as Tokenizer;
  const f = formatPrompt(tokenizer, model.config, { prompt, promptFormat: 'alpaca' });
  const alone = (dir: string | null) =>
    tokenizer.decode(generate(model, dir ? loadAdapter(dir, model.config) : null, f.ids, { maxNewTokens: 12, temperature: 0, topP: 1, seed: 42, eosTokenIds: f.stopIds }), { skipSpecialTokens: true });
  assert.equal(await page.getByTestId('pg-text-adapter').textContent(), alone(a.path));
  assert.equal(await page.getByTestId('pg-text-compare').textContent(), alone(b.path));

  // And the base model beside them: three answers in a row.
  await page.getByTestId('pg-compare').check();
  await page.getByTestId('pg-generate').click();
  for (const v of ['adapter', 'compare', 'base']) await page.locator(`[data-testid="pg-answer-${v}"][data-done="true"]`).waitFor({ timeout: 60_000 });
  assert.equal(await page.getByTestId('pg-answers').getAttribute('class'), 'pg-answers pg-answers-3');
  assert.equal(await page.getByTestId('pg-text-base').textContent(), alone(null));
  assert.deepEqual(errors, []);
});
