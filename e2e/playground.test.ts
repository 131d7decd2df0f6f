/**
 * The playground in a real browser on the real services: "Try it" on a finished run's adapter → its base model
 * and the prompt format it was trained with (Alpaca, for the sample data) fill in → Generate streams the adapter's
 * and the base model's answers side by side, each exactly what the engine generates for that prompt; Stop ends a
 * long answer; bad settings are marked at their fields. GGUF on the adapter writes a GGUF LoRA for llama.cpp.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import type { RunSummary } from '../common/protocol.ts';
import { generate } from '../engine/generate/generate.ts';
import { formatPrompt } from '../engine/generate/prompt-format.ts';
import { loadModel } from '../engine/io/hf-model.ts';
import { loadAdapter } from '../engine/io/peft-adapter.ts';
import { loadTokenizer } from '../engine/io/tokenizer.ts';
import { ggufScalar, readGguf } from '../engine/quant/gguf-reader.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../engine/io/sample.ts';
import { closeStudioWithBrowser, openStudioPage, resultsDir, startStudioWithBrowser, type TestStudio } from './helpers/studio.ts';

let studio: TestStudio;
let browser: Browser;

before(async () => {
  ({ studio, browser } = await startStudioWithBrowser());
});

after(async () => {
  await closeStudioWithBrowser(studio, browser);
});

async function finishedRun(): Promise<RunSummary> {
  let run = await studio.api('runs.start', {
    config: {
      name: 'playground-e2e',
      modelPath: SAMPLE_MODEL_DIR,
      datasetPath: SAMPLE_DATASET_PATH,
      lora: { r: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'v_proj', 'o_proj', 'down_proj'] },
      train: { learningRate: 0.01, steps: 12, batchSize: 2, maxSeqLen: 96 },
    },
  });
  const deadline = Date.now() + 90_000;
  while (run.state !== 'completed') {
    assert.ok(!['failed', 'cancelled'].includes(run.state), `the run ended ${run.state}: ${run.error ?? ''}`);
    assert.ok(Date.now() < deadline, `the run did not finish in time (state ${run.state}, step ${run.step})`);
    await new Promise((r) => setTimeout(r, 300));
    run = await studio.api('runs.get', { id: run.id });
  }
  return run;
}

test('playground: an adapter from a run answers its own prompt format, side by side with the base model', { timeout: 180_000 }, async () => {
  const run = await finishedRun();
  const adapter = (await studio.api('adapters.list', {})).find((a) => a.id === run.adapterId);
  assert.ok(adapter, 'the run left an adapter');

  const { page, errors } = await openStudioPage(browser, studio, { width: 1500, height: 1050 });
  // GGUF on the adapter writes a GGUF LoRA into its folder: llama.cpp's layout for the llama architecture.
  const item = page.locator(`[data-testid="adapter-item"][data-adapter-id="${adapter.id}"]`);
  await item.getByTestId('adapter-gguf').click({ timeout: 30_000 });
  await item.getByTestId('adapter-gguf-done').waitFor({ timeout: 30_000 });
  const gguf = readGguf(join(adapter.path, 'adapter-lora.gguf'));
  assert.equal(ggufScalar(gguf, 'general.type'), 'adapter');
  assert.equal(ggufScalar(gguf, 'adapter.type'), 'lora');
  assert.equal(ggufScalar(gguf, 'adapter.lora.alpha'), 16);
  assert.equal(gguf.tensors.length, 2 * 4 * 2, 'two layers × four adapted linears × (lora_a, lora_b)');

  // "Try it" on the Train page's adapter list opens the playground with that adapter chosen.
  await page.locator(`[data-testid="adapter-item"][data-adapter-id="${adapter.id}"] [data-testid="adapter-try"]`).click({ timeout: 30_000 });
  await page.getByTestId('playground').waitFor({ state: 'visible' });
  assert.equal(await page.getByTestId('pg-adapter').inputValue(), adapter.id);
  await page.getByTestId('pg-model-summary').waitFor({ timeout: 30_000 });
  assert.equal(await page.getByTestId('pg-model-path').inputValue(), SAMPLE_MODEL_DIR);
  await page.locator('[data-testid="pg-format-alpaca"][aria-checked="true"]').waitFor({ timeout: 15_000 });
  assert.match(await page.getByTestId('pg-format-note').innerText(), /Alpaca prompt.*playground-e2e.*alpaca data/);

  const prompt = 'Describe the weather in the city.';
  await page.getByTestId('pg-prompt-text').fill(prompt);
  await page.getByTestId('pg-maxNewTokens').fill('24');
  await page.getByTestId('pg-backend').selectOption('cpu');
  await page.getByTestId('pg-generate').click();
  for (const v of ['adapter', 'base']) await page.locator(`[data-testid="pg-answer-${v}"][data-done="true"]`).waitFor({ timeout: 60_000 });

  // What the engine itself answers for this prompt, adapter and all: the page must show exactly that.
  const model = loadModel(SAMPLE_MODEL_DIR);
  const tokenizer = await loadTokenizer(SAMPLE_MODEL_DIR);
  assert.ok(tokenizer);
  const formatted = formatPrompt(tokenizer, model.config, { prompt, promptFormat: 'alpaca' });
  const lora = loadAdapter(adapter.path, model.config);
  const opts = { maxNewTokens: 24, temperature: 0, topP: 1, seed: 42, eosTokenIds: formatted.stopIds };
  const expected = {
    adapter: tokenizer.decode(generate(model, lora, formatted.ids, opts), { skipSpecialTokens: true }),
    base: tokenizer.decode(generate(model, null, formatted.ids, opts), { skipSpecialTokens: true }),
  };
  assert.notEqual(expected.adapter, expected.base, 'training changed the answer');
  for (const v of ['adapter', 'base'] as const) {
    assert.equal((await page.getByTestId(`pg-text-${v}`).textContent()) ?? '', expected[v], `${v} answer`);
    assert.match(await page.getByTestId(`pg-stats-${v}`).innerText(), /\d+ tokens? · [\d.]+ tok\/s decode · prefill [\d.]+ ms \([\d.]+ tok\/s\) · (reached max new tokens|ended by the model)/);
  }
  assert.match(await page.getByTestId('pg-job-line').innerText(), new RegExp(`^${formatted.ids.length} prompt tokens · cpu`));
  await page.locator('.pg-prompt-text summary').click();
  assert.ok((await page.getByTestId('pg-formatted-prompt').innerText()).includes('### Instruction:\nDescribe the weather in the city.'));
  mkdirSync(resultsDir, { recursive: true });
  await page.screenshot({ path: join(resultsDir, 'playground.png'), fullPage: true });

  // A long answer stops on Stop.
  await page.getByTestId('pg-maxNewTokens').fill('4096');
  await page.getByTestId('pg-compare').uncheck();
  await page.getByTestId('pg-generate').click();
  await page.getByTestId('pg-stop').click({ timeout: 30_000 });
  await page.locator('[data-testid="pg-answer-adapter"][data-done="true"]').waitFor({ timeout: 30_000 });
  assert.match(await page.getByTestId('pg-stats-adapter').innerText(), /stopped$/);
  assert.equal(await page.getByTestId('pg-answer-base').count(), 0, 'without compare only the adapter answers');

  // The Runs page's run detail leads to the playground too.
  await page.getByTestId('pg-adapter').selectOption('');
  await page.getByTestId('tab-runs').click();
  await page.locator(`[data-testid="runs-row"][data-run-id="${run.id}"] .runs-name`).click();
  await page.getByTestId('run-try-adapter').click({ timeout: 15_000 });
  await page.getByTestId('playground').waitFor({ state: 'visible' });
  assert.equal(await page.getByTestId('pg-adapter').inputValue(), adapter.id);

  // Chat: an answer is kept as a turn and the next prompt continues the conversation.
  await page.getByTestId('pg-format-chat').click();
  await page.getByTestId('pg-maxNewTokens').fill('8');
  await page.getByTestId('pg-prompt-text').fill('Name a color.');
  await page.getByTestId('pg-generate').click();
  await page.locator('[data-testid="pg-answer-adapter"][data-done="true"]').waitFor({ timeout: 30_000 });
  const firstAnswer = (await page.getByTestId('pg-text-adapter').textContent()) ?? '';
  await page.getByTestId('pg-continue').click();
  assert.equal(await page.getByTestId('pg-turn').count(), 2);
  assert.equal(await page.getByTestId('pg-prompt-text').inputValue(), '', 'the prompt box is ready for the next turn');
  await page.getByTestId('pg-prompt-text').fill('And another one?');
  await page.getByTestId('pg-generate').click();
  await page.locator('[data-testid="pg-answer-adapter"][data-done="true"]').waitFor({ timeout: 30_000 });
  const history = [{ role: 'user' as const, content: 'Name a color.' }, { role: 'assistant' as const, content: firstAnswer }];
  const second = formatPrompt(tokenizer, model.config, { prompt: 'And another one?', promptFormat: 'chat', history });
  const secondIds = generate(model, lora, second.ids, { ...opts, maxNewTokens: 8, eosTokenIds: second.stopIds });
  assert.equal((await page.getByTestId('pg-text-adapter').textContent()) ?? '', tokenizer.decode(secondIds, { skipSpecialTokens: true }), 'the second answer continues the conversation');
  assert.match(await page.getByTestId('pg-job-line').innerText(), new RegExp(`^${second.ids.length} prompt tokens`));
  await page.getByTestId('pg-clear-history').click();
  assert.equal(await page.getByTestId('pg-turn').count(), 0);

  // Bad settings are marked at their fields as they are typed, and Generate is off with the reasons by label.
  await page.getByTestId('pg-maxNewTokens').fill('lots');
  await page.getByTestId('pg-topP').fill('0');
  assert.match(await page.getByTestId('pg-error-maxNewTokens').innerText(), /whole number/);
  assert.match(await page.getByTestId('pg-error-topP').innerText(), /more than 0/);
  assert.equal(await page.getByTestId('pg-generate').isDisabled(), true);
  assert.deepEqual(await page.getByTestId('pg-blockers').locator('li').allTextContents(), [
    'Max new tokens: must be a whole number from 1 to 4096',
    'Top-p: must be more than 0, at most 1',
  ]);
  await page.getByTestId('pg-maxNewTokens').fill('8');
  await page.getByTestId('pg-topP').fill('1');
  await page.getByTestId('pg-prompt-text').fill('   ');
  await page.getByTestId('pg-generate').click();
  assert.match(await page.getByTestId('pg-error-prompt').innerText({ timeout: 10_000 }), /type a prompt/);

  assert.deepEqual(errors, []);
});
