/**
 * When one machine is not enough, in a real browser against the real services: a finished sample run is exported
 * for a cluster from its Runs page detail (DeepSpeed ZeRO-2 on 4 processes with the studio's dropout masks; a
 * relative folder and a bad process count are refused under their fields) and the bundle is checked on disk; an
 * external run's metrics.jsonl, appended to by the test the way train.py writes it, is followed and its chart grows
 * point by point, a half-written line waiting, a broken one named; its adapter comes in when status.json says
 * completed; and importing an adapter whose target_modules do not match its weights shows the services' message.
 */
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { AdapterSummary, RunSummary } from '../common/protocol.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../engine/io/sample.ts';
import { closeStudioWithBrowser, openStudioPage, startStudioWithBrowser, type TestStudio } from './helpers/studio.ts';

let studio: TestStudio;
let browser: Browser;
let page: Page;
let errors: string[];
let run: RunSummary;
let runAdapter: AdapterSummary;

async function waitForRun(id: string, timeoutMs: number): Promise<RunSummary> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await studio.api('runs.get', { id });
    if (r.state === 'completed') return r;
    if (r.state === 'failed' || r.state === 'cancelled') throw new Error(`the sample run ended ${r.state}: ${r.error}`);
    if (Date.now() > end) throw new Error(`the sample run is ${r.state} at step ${r.step} after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 150));
  }
}

before(async () => {
  ({ studio, browser } = await startStudioWithBrowser());
  // A finished run to export: the sample model and dataset, a few steps, with dropout (so the dropout choice matters).
  const started = await studio.api('runs.start', {
    config: {
      name: 'cluster sample',
      modelPath: SAMPLE_MODEL_DIR,
      datasetPath: SAMPLE_DATASET_PATH,
      lora: { r: 4, alpha: 8, dropout: 0.1, targets: ['q_proj', 'v_proj'] },
      train: { learningRate: 1e-3, steps: 3, batchSize: 2, maxSeqLen: 96 },
    },
  });
  run = await waitForRun(started.id, 120_000);
  const adapter = (await studio.api('adapters.list', {})).find((a) => a.id === run.adapterId);
  assert.ok(adapter, 'the finished run has its adapter in the list');
  runAdapter = adapter;
  ({ page, errors } = await openStudioPage(browser, studio));
});

after(async () => {
  await closeStudioWithBrowser(studio, browser);
});

/** One metrics.jsonl line in the studio's MetricPoint shape, as train.py writes it. */
function metricLine(step: number, loss: number): string {
  return `${JSON.stringify({ step, loss, learningRate: 1e-3, tokens: 40, tokensPerSecond: 900, elapsedMs: step * 50, gradNorm: 1 / step, validationLoss: step % 3 === 0 ? loss + 0.1 : undefined })}\n`;
}

/** Waits until the attribute `attr` of the first element matching `selector` reads `value`. */
async function waitAttr(selector: string, attr: string, value: string, timeout = 15_000): Promise<void> {
  await page
    .waitForFunction(`document.querySelector(${JSON.stringify(selector)})?.getAttribute(${JSON.stringify(attr)}) === ${JSON.stringify(value)}`, undefined, { timeout })
    .catch(async () => assert.fail(`${selector} ${attr} is ${await page.locator(selector).first().getAttribute(attr)}, expected ${value}`));
}

test('Export for a cluster from the run detail: fields refused where they are, then the bundle on disk as chosen', async () => {
  await page.getByTestId('tab-runs').click();
  await page.locator(`[data-testid="runs-row"][data-run-id="${run.id}"] .runs-name`).click();
  const detail = page.locator(`[data-testid="run-detail"][data-run-id="${run.id}"]`);
  await detail.getByTestId('run-export-bundle').click();
  const dialog = page.getByTestId('bundle-dialog');
  await dialog.waitFor();

  // A relative folder: the services refuse it, and the refusal sits under the folder field.
  await dialog.getByTestId('bundle-destination').fill('relative/bundles');
  await dialog.getByTestId('bundle-export').click();
  const destError = dialog.getByTestId('bundle-error-destination');
  await destError.waitFor({ timeout: 10_000 });
  assert.equal(await destError.textContent(), 'choose a full path (got the relative path "relative/bundles", which the web studio would take relative to its own folder, not yours)');

  const out = join(studio.home, 'cluster-exports');
  mkdirSync(out);
  await dialog.getByTestId('bundle-destination').fill(out);
  assert.equal(await dialog.getByTestId('bundle-error-destination').count(), 0, 'editing the field clears its complaint');
  await dialog.getByTestId('bundle-launcher').selectOption('deepspeed-zero2');
  await dialog.getByTestId('bundle-processes').fill('four');
  await dialog.getByTestId('bundle-export').click();
  const procError = dialog.getByTestId('bundle-error-processes');
  await procError.waitFor({ timeout: 10_000 });
  assert.equal(await procError.textContent(), 'processes must be a number');

  await dialog.getByTestId('bundle-processes').fill('4');
  await dialog.getByTestId('bundle-dropout-studio').check();
  await dialog.getByTestId('bundle-export').click();
  await dialog.getByTestId('bundle-result').waitFor({ timeout: 120_000 });
  const bundle = (await dialog.getByTestId('bundle-path').textContent()) ?? '';
  assert.equal(bundle, join(out, 'cluster sample-bundle'));
  const command = 'accelerate launch --config_file accelerate/deepspeed-zero2.yaml --num_processes 4 train.py --dropout studio';
  assert.equal(await dialog.getByTestId('bundle-launch').textContent(), `cd ${JSON.stringify(bundle)} && ${command}`);
  const others = (await dialog.getByTestId('bundle-launch-others').textContent()) ?? '';
  for (const c of ['single-gpu.yaml train.py --dropout studio', 'multi-gpu.yaml --num_processes 4 train.py --dropout studio', 'fsdp.yaml --num_processes 4 train.py --dropout studio', 'sbatch slurm.sbatch']) {
    assert.ok(others.includes(c), `the other launchers are listed (${c}): ${others}`);
  }

  // On disk: the whole bundle, for this run, launched as chosen.
  for (const f of ['train.py', 'bundle.json', 'run.json', 'README.md', 'slurm.sbatch', 'requirements.txt', 'data/train.jsonl', 'data/plan.jsonl', 'initial_adapter/adapter_model.safetensors', 'accelerate/deepspeed-zero2.yaml', 'accelerate/deepspeed-zero2.json', 'accelerate/fsdp.yaml', 'model/config.json']) {
    assert.ok(existsSync(join(bundle, f)), `${f} is in the bundle`);
  }
  const meta = JSON.parse(readFileSync(join(bundle, 'bundle.json'), 'utf8')) as { source: { runId: string }; steps: number; lora: { dropout: number }; launch: unknown; data: { trainExamples: number } };
  assert.equal(meta.source.runId, run.id);
  assert.equal(meta.steps, 3);
  assert.equal(meta.lora.dropout, 0.1);
  assert.deepEqual(meta.launch, { launcher: 'deepspeed-zero2', processes: 4, dropout: 'studio' });
  assert.equal(readFileSync(join(bundle, 'data/train.jsonl'), 'utf8').trim().split('\n').length, meta.data.trainExamples);
  assert.ok(readFileSync(join(bundle, 'README.md'), 'utf8').includes(`As chosen at export: \`${command}\``));
  const plan = readFileSync(join(bundle, 'data/plan.jsonl'), 'utf8').trim().split('\n');
  assert.equal(plan.length, 3, 'one plan line per optimizer step');

  await dialog.getByTestId('bundle-close').click();
  await dialog.waitFor({ state: 'detached' });
});

test('Follow an external run: the chart grows as metrics.jsonl grows; the adapter comes in when it completes; unfollow', async () => {
  await page.getByTestId('tab-runs').click();
  const outDir = join(studio.home, 'cluster-job', 'output');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, 'metrics.jsonl');
  writeFileSync(file, metricLine(1, 3.0) + metricLine(2, 2.8) + metricLine(3, 2.7));

  const panel = page.getByTestId('external-runs');
  await panel.getByTestId('external-path').fill(file);
  await panel.getByTestId('external-follow').click();
  const item = panel.getByTestId('external-run');
  await item.waitFor({ timeout: 10_000 });
  const chart = '[data-testid="external-run"] [data-testid="external-chart"]';
  await waitAttr(chart, 'data-points', '3');
  await waitAttr(chart, 'data-validation-points', '1');

  // Two more steps and half of the next, as a reader racing the writer sees the file.
  const six = metricLine(6, 2.4);
  appendFileSync(file, metricLine(4, 2.6) + metricLine(5, 2.5) + six.slice(0, 20));
  await waitAttr(chart, 'data-points', '5');
  appendFileSync(file, six.slice(20));
  await waitAttr(chart, 'data-points', '6');
  await waitAttr(chart, 'data-validation-points', '2');
  const vertices = (await page.evaluate(`[...document.querySelectorAll('${chart} .external-line-loss .recharts-line-curve')].map((p) => ((p.getAttribute('d') ?? '').match(/[ML]/g) ?? []).length)`)) as number[];
  assert.deepEqual(vertices, [6], 'the train-loss line goes through all 6 steps');
  assert.equal(await item.getByTestId('external-state').textContent(), 'running');

  // A broken line is named by file and line and skipped; the steps after it still come.
  appendFileSync(file, '{"step": 7, "loss": oops}\n' + metricLine(8, 2.3));
  await waitAttr(chart, 'data-points', '7');
  assert.match((await item.getByTestId('external-problems').textContent()) ?? '', /metrics\.jsonl line 7: not valid JSON/);

  // It completes: status.json says so and output/adapter is its PEFT folder (the sample run's, as a stand-in).
  cpSync(runAdapter.path, join(outDir, 'adapter'), { recursive: true });
  writeFileSync(join(outDir, 'status.json'), JSON.stringify({ format: 'lora-studio-external-run', runId: 'job-1', state: 'completed', step: 8, totalSteps: 8, name: 'cluster job', adapterDir: 'adapter' }));
  await item.getByTestId('external-imported').waitFor({ timeout: 15_000 });
  assert.equal(await item.getByTestId('external-state').textContent(), 'completed');
  const imported = (await studio.api('adapters.list', {})).find((a) => a.importedFrom === join(outDir, 'adapter'));
  assert.ok(imported, 'the external run’s adapter is in the Adapters list');
  assert.ok(((await item.getByTestId('external-imported').textContent()) ?? '').includes(imported.name));

  await item.getByTestId('external-unfollow').click();
  await item.waitFor({ state: 'detached', timeout: 10_000 });
  assert.deepEqual(await studio.api('external.list', {}), []);
  assert.ok(existsSync(file), 'nothing on disk is touched');
});

test('Import adapter: the services’ mismatch message is shown as it is; a good folder comes in', async () => {
  await page.getByTestId('tab-train').click();
  const bad = join(studio.home, 'adapter-with-k-proj');
  cpSync(runAdapter.path, bad, { recursive: true });
  const configFile = join(bad, 'adapter_config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as { target_modules: string[] };
  config.target_modules = [...config.target_modules, 'k_proj'];
  writeFileSync(configFile, JSON.stringify(config, null, 2));

  const before = (await studio.api('adapters.list', {})).length;
  await page.getByTestId('adapter-import-open').click();
  const dialog = page.getByTestId('import-adapter-dialog');
  await dialog.waitFor();
  await dialog.getByTestId('import-adapter-path').fill(bad);
  await dialog.getByTestId('import-adapter-submit').click();
  const shown = dialog.getByTestId('import-adapter-error').locator('.note-message');
  await shown.waitFor({ timeout: 10_000 });
  const message = `${configFile}: target_modules lists k_proj but adapter_model.safetensors has no weights for it`;
  assert.equal(await shown.textContent(), message);
  // The same words the services answer with.
  const refused = await studio.api('adapters.import', { path: bad }).then(
    () => assert.fail('the edited adapter was accepted'),
    (e: unknown) => (e as Error).message,
  );
  assert.equal(refused, `adapters.import refused: ${message}`);
  assert.equal((await studio.api('adapters.list', {})).length, before, 'nothing was added');

  // A base model folder that is not one: named as the services word it.
  await dialog.getByTestId('import-adapter-path').fill(runAdapter.path);
  await dialog.getByTestId('import-adapter-model').fill(bad);
  await dialog.getByTestId('import-adapter-submit').click();
  await page.waitForFunction(`document.querySelector('[data-testid="import-adapter-error"] .note-message')?.textContent === ${JSON.stringify(`${bad} is not a model folder or GGUF file: config.json not found`)}`, undefined, { timeout: 10_000 });

  await dialog.getByTestId('import-adapter-model').fill(SAMPLE_MODEL_DIR);
  await dialog.getByTestId('import-adapter-name').fill('brought home');
  await dialog.getByTestId('import-adapter-submit').click();
  await dialog.getByTestId('import-adapter-done').waitFor({ timeout: 10_000 });
  await dialog.getByTestId('import-adapter-close').click();
  await page.waitForFunction(`[...document.querySelectorAll('[data-testid="adapter-name"]')].some((e) => e.textContent.startsWith('brought home'))`, undefined, { timeout: 10_000 });
  assert.equal((await studio.api('adapters.list', {})).length, before + 1);
  assert.deepEqual(errors, [], 'no page errors');
});
