// `node --import tsx scripts/readme-screenshot.ts [out.png]`: the README's screenshot, of a real model's run. It
// starts the web host on a scratch home, trains SmolLM2-135M-Instruct from its Q4_1 GGUF as stored (QLoRA on the
// file llama.cpp runs) on the sample dataset with evaluation prompts, and photographs the Train page in Chromium
// while the run trains, once its loss curve and an evaluation answer are on screen. Needs the built renderer
// (npm run build:renderer), Chromium (/usr/bin/chromium) and the real model (scripts/ensure-real-model.mjs, which
// this runs). Writes assets/screenshot.png unless given another path.
import { dirname, join, resolve } from 'node:path';
import type { RunConfigInput } from '../common/protocol.ts';
import { SAMPLE_DATASET_PATH } from '../engine/io/sample.ts';
import { launchChromium, repoRoot, startStudio, waitConnected } from '../e2e/helpers/studio.ts';
import { realModelPath } from '../test/helpers/real-model.ts';

const out = resolve(process.argv[2] ?? join(repoRoot, 'assets', 'screenshot.png'));
const model = realModelPath();
const studio = await startStudio({ allow: [dirname(model), dirname(SAMPLE_DATASET_PATH)] });
const STEPS = 60;
const config: RunConfigInput = {
  name: 'smollm2-135m · sample instructions · r8',
  modelPath: model,
  datasetPath: SAMPLE_DATASET_PATH,
  backend: 'cpu',
  lora: { r: 8, alpha: 16, dropout: 0.05, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] },
  train: { learningRate: 1e-3, steps: STEPS, batchSize: 2, maxSeqLen: 128, warmupSteps: 5, schedule: 'cosine', validationPercent: 5, evalEverySteps: 20, baseWeights: 'as-stored', seed: 7 },
  evalPrompts: { prompts: ['Give me one tip for staying focused while studying.', 'What is a LoRA adapter?'], everySteps: 20, maxNewTokens: 24 },
};

const browser = await launchChromium();
try {
  const run = await studio.api('runs.start', { config });
  const context = await browser.newContext({ viewport: { width: 1440, height: 2520 }, colorScheme: 'dark' });
  const page = await context.newPage();
  await page.goto(studio.pageUrl);
  await waitConnected(page);
  // The form shows what the run trains with, as a person gets it: Runs → the run → "Train again with these settings".
  await page.getByTestId('tab-runs').click();
  await page.locator(`[data-testid="runs-row"][data-run-id="${run.id}"] .runs-name`).click();
  await page.getByTestId('run-train-again').click();
  await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
  await page.getByTestId('dataset-summary').waitFor({ timeout: 60_000 });
  // The Train page follows the running run: its live card, loss chart and evaluation timeline.
  await page.getByTestId('run-progress').locator('[data-testid="eval-row"][data-step="20"]').waitFor({ timeout: 600_000 });
  for (let now = await studio.api('runs.get', { id: run.id }); now.step < 40; now = await studio.api('runs.get', { id: run.id })) {
    if (now.state === 'failed') throw new Error(`the run failed: ${now.error ?? ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  // A viewport as tall as the page, so the sticky Train bar sits at its foot instead of over the settings.
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await studio.close();
}
