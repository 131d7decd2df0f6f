/**
 * The walking skeleton, end to end in a real browser: sample model + sample dataset → Train → the loss chart grows
 * while it trains → the loss falls → the adapter appears → dragging it out yields a PEFT adapter folder (zipped),
 * whose config and tensors match what was asked for and the sample model's shapes.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { unzipSync } from 'fflate';
import type { Browser, Page } from 'playwright-core';
import type { PageElement, PageGlobals } from './helpers/dom.ts';
import { f32Values, parseSafetensors } from './helpers/safetensors-header.ts';
import { launchChromium, resultsDir, startStudio, watchErrors, type TestStudio } from './helpers/studio.ts';

const STEPS = 30;
const RANK = 4;
const ALPHA = 8;
const TARGETS = ['q_proj', 'k_proj', 'v_proj'] as const;

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

interface ChartSample {
  state: string | null;
  counter: number;
  /** Vertices of the drawn loss line, read from the SVG path itself. */
  vertices: number;
}

async function sampleChart(page: Page): Promise<ChartSample> {
  return page.evaluate(() => {
    const { document } = globalThis as unknown as PageGlobals;
    const state = document.querySelector('[data-testid="run-progress"]')?.getAttribute('data-state') ?? null;
    const counter = Number(document.querySelector('[data-testid="chart-point-count"]')?.textContent ?? '0');
    const d = document.querySelector('[data-testid="loss-chart"] .recharts-line-curve')?.getAttribute('d') ?? '';
    const vertices = (d.match(/[ML]/g) ?? []).length;
    return { state, counter, vertices };
  });
}

test('sample model + sample dataset → train → live chart → drag out a PEFT adapter', { timeout: 150_000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  const errors = watchErrors(page);
  await page.goto(studio.pageUrl);
  await page.getByTestId('connection').and(page.locator('[data-state="open"]')).waitFor({ timeout: 15_000 });

  await page.getByTestId('use-sample-model').click();
  await page.getByTestId('model-summary').waitFor({ timeout: 30_000 });
  await page.getByTestId('use-sample-dataset').click();
  await page.getByTestId('dataset-summary').waitFor({ timeout: 30_000 });
  assert.ok(Number(await page.getByTestId('dataset-records').textContent()) > 0, 'the sample dataset has records');

  await page.getByTestId('field-lora.r').fill(String(RANK));
  await page.getByTestId('field-lora.alpha').fill(String(ALPHA));
  for (const t of ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']) {
    await page.getByTestId(`target-${t}`).setChecked((TARGETS as readonly string[]).includes(t));
  }
  await page.getByTestId('field-train.steps').fill(String(STEPS));
  const train = page.getByTestId('train-button');
  assert.equal(await train.isEnabled(), true, `Train is enabled once model and dataset are chosen (${await page.getByTestId('train-blocked').textContent()})`);
  await train.click();

  // Sample the chart while the run goes: it must grow between two moments at which the run is still training.
  const samples: ChartSample[] = [];
  const deadline = Date.now() + 120_000;
  for (;;) {
    const s = await sampleChart(page);
    samples.push(s);
    if (s.state === 'completed' || s.state === 'failed' || s.state === 'cancelled') break;
    assert.ok(Date.now() < deadline, `the run did not finish in time; last: ${JSON.stringify(s)}`);
    await page.waitForTimeout(100);
  }
  const last = samples[samples.length - 1];
  const runError = (await page.getByTestId('run-error').count()) ? await page.getByTestId('run-error').textContent() : null;
  assert.equal(last.state, 'completed', `run ended ${last.state}: ${runError ?? ''}`);

  const whileTraining = samples.filter((s) => s.state === 'executing' && s.counter > 0);
  assert.ok(whileTraining.length >= 2, `chart was seen with points while executing only ${whileTraining.length} time(s)`);
  const firstSeen = whileTraining[0];
  const grown = whileTraining.find((s) => s.counter > firstSeen.counter && s.vertices > firstSeen.vertices);
  assert.ok(grown, `the chart did not gain points during training: ${JSON.stringify(whileTraining.map((s) => [s.counter, s.vertices]))}`);
  assert.ok(firstSeen.counter < STEPS, 'the first look at the chart was before the run ended');

  // Let the throttled chart catch up with the final step, then compare losses as the UI shows them.
  await page.waitForFunction(
    (steps) => Number((globalThis as unknown as PageGlobals).document.querySelector('[data-testid="chart-point-count"]')?.textContent) === steps,
    STEPS,
    { timeout: 5_000 },
  );
  assert.equal((await sampleChart(page)).vertices, STEPS, 'every step is drawn');
  assert.equal(await page.getByTestId('run-step').textContent(), `${STEPS} / ${STEPS}`);
  const firstLoss = Number(await page.getByTestId('run-first-loss').textContent());
  const finalLoss = Number(await page.getByTestId('run-last-loss').textContent());
  assert.ok(Number.isFinite(firstLoss) && Number.isFinite(finalLoss), `losses shown: ${firstLoss}, ${finalLoss}`);
  assert.ok(finalLoss < firstLoss, `final loss ${finalLoss} is below the first ${firstLoss}`);
  assert.notEqual(await page.getByTestId('run-tokens-per-second').textContent(), '—', 'a tokens/s readout is shown');

  const item = page.getByTestId('adapter-item').first();
  await item.waitFor({ timeout: 15_000 });
  assert.equal(await item.getAttribute('draggable'), 'true');

  mkdirSync(resultsDir, { recursive: true });
  await page.screenshot({ path: join(resultsDir, 'studio.png'), fullPage: true });

  // The drag as Chromium starts it: a dragstart whose DataTransfer the page fills; a drop outside the window then
  // downloads the DownloadURL.
  const drag = await item.evaluate((el: unknown) => {
    const { DataTransfer, DragEvent } = globalThis as unknown as PageGlobals;
    const dataTransfer = new DataTransfer();
    const ev = new DragEvent('dragstart', { bubbles: true, cancelable: true, dataTransfer });
    (el as PageElement).dispatchEvent(ev);
    return { downloadUrl: dataTransfer.getData('DownloadURL'), uriList: dataTransfer.getData('text/uri-list'), prevented: ev.defaultPrevented };
  });
  assert.equal(drag.prevented, false, 'in a browser the native drag goes ahead');
  const m = /^application\/zip:([^:]+\.zip):(http:\/\/.+)$/.exec(drag.downloadUrl);
  assert.ok(m, `DownloadURL is "mime:name:url": ${drag.downloadUrl}`);
  const zipUrl = m[2];
  assert.equal(drag.uriList, zipUrl);
  assert.ok(zipUrl.startsWith(`${studio.origin}/download/adapter/`), zipUrl);

  // A download is a plain GET: no custom header, the token travels in the URL.
  const res = await fetch(zipUrl);
  assert.equal(res.status, 200, `GET ${zipUrl}`);
  const zipBytes = new Uint8Array(await res.arrayBuffer());
  const files = unzipSync(zipBytes);
  const names = Object.keys(files);
  const configName = names.find((n) => n.endsWith('adapter_config.json'));
  const weightsName = names.find((n) => n.endsWith('adapter_model.safetensors'));
  assert.ok(configName && weightsName, `the zip holds the PEFT pair: ${names.join(', ')}`);

  const adapterConfig = JSON.parse(new TextDecoder().decode(files[configName])) as Record<string, unknown>;
  assert.equal(adapterConfig.peft_type, 'LORA');
  assert.equal(adapterConfig.task_type, 'CAUSAL_LM');
  assert.equal(adapterConfig.r, RANK);
  assert.equal(adapterConfig.lora_alpha, ALPHA);
  assert.deepEqual([...(adapterConfig.target_modules as string[])].sort(), [...TARGETS].sort());

  // Expected shapes come from the sample model's own config.json.
  const sample = await studio.api('models.sample', {});
  const cfg = JSON.parse(readFileSync(join(sample.path, 'config.json'), 'utf8')) as Record<string, number>;
  const hidden = cfg.hidden_size;
  const headDim = cfg.head_dim ?? hidden / cfg.num_attention_heads;
  const outOf: Record<(typeof TARGETS)[number], number> = {
    q_proj: cfg.num_attention_heads * headDim,
    k_proj: (cfg.num_key_value_heads ?? cfg.num_attention_heads) * headDim,
    v_proj: (cfg.num_key_value_heads ?? cfg.num_attention_heads) * headDim,
  };

  const { tensors } = parseSafetensors(files[weightsName]);
  const expectedKeys: string[] = [];
  let trainedB = 0;
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    for (const t of TARGETS) {
      const prefix = `base_model.model.model.layers.${i}.self_attn.${t}`;
      const a = tensors.get(`${prefix}.lora_A.weight`);
      const b = tensors.get(`${prefix}.lora_B.weight`);
      expectedKeys.push(`${prefix}.lora_A.weight`, `${prefix}.lora_B.weight`);
      assert.ok(a && b, `${prefix}.lora_A/B.weight present`);
      assert.deepEqual(a.shape, [RANK, hidden], `${prefix}.lora_A is [r, in]`);
      assert.deepEqual(b.shape, [outOf[t], RANK], `${prefix}.lora_B is [out, r]`);
      const bValues = f32Values(b);
      assert.ok(bValues.every(Number.isFinite), `${prefix}.lora_B is finite`);
      if (bValues.some((v) => v !== 0)) trainedB++;
    }
  }
  assert.deepEqual([...tensors.keys()].sort(), expectedKeys.sort(), 'exactly the LoRA tensors of the chosen targets');
  // B starts at zero (PEFT init); training must have moved it.
  assert.ok(trainedB > 0, 'lora_B weights were trained away from zero');

  // "Save as…" in a browser is a download link to the same zip.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('adapter-save').first().click()]);
  const savedFiles = unzipSync(new Uint8Array(readFileSync(await download.path())));
  assert.deepEqual(Object.keys(savedFiles).sort(), names.sort(), 'Save as… downloads the same folder');
  for (const n of names) assert.deepEqual(savedFiles[n], files[n], `Save as… gives the same ${n}`);

  assert.deepEqual(errors, [], 'no errors in the page');
  await page.close();
});
