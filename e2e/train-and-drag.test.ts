/**
 * The walking skeleton, end to end in a real browser: sample model + sample dataset → Train → the loss chart grows
 * while it trains → the loss falls → the adapter appears → dragging it out yields a PEFT adapter folder (zipped),
 * whose config and tensors match what was asked for and the sample model's shapes.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { unzipSync } from 'fflate';
import type { Browser } from 'playwright-core';
import { f32Values, parseSafetensors } from './helpers/safetensors-header.ts';
import { closeStudioWithBrowser, desktopBridgeScript, openStudioPage, resultsDir, startStudioWithBrowser, waitConnected, watchErrors, type TestStudio } from './helpers/studio.ts';

const STEPS = 30;
// Higher than the default so the loss of the tiny, near-uniform sample model falls well clear of step noise.
const LEARNING_RATE = 0.02;
const RANK = 4;
const ALPHA = 8;
const TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
const MLP: ReadonlySet<string> = new Set(['gate_proj', 'up_proj', 'down_proj']);

let studio: TestStudio;
let browser: Browser;

before(async () => {
  ({ studio, browser } = await startStudioWithBrowser());
});

after(async () => {
  await closeStudioWithBrowser(studio, browser);
});

interface ChartSample {
  state: string | null;
  counter: number;
  /** Vertices of the drawn loss line, read from the SVG path itself. */
  vertices: number;
}

/**
 * In-page code is kept as plain JavaScript text: tsx's transform adds helpers (`__name`) to TypeScript functions
 * that do not exist in the page. READ_CHART reads the chart as drawn: run state, the point counter, and the
 * vertices of the SVG loss line.
 */
const READ_CHART = `(() => {
  const state = document.querySelector('[data-testid="run-progress"]')?.getAttribute('data-state') ?? null;
  const counter = Number(document.querySelector('[data-testid="chart-point-count"]')?.textContent ?? '0');
  const d = document.querySelector('[data-testid="loss-chart"] .recharts-line-curve')?.getAttribute('d') ?? '';
  return { state, counter, vertices: (d.match(/[ML]/g) ?? []).length };
})()`;

/**
 * Records every distinct chart state once per animation frame, inside the page: however fast the run goes, each
 * redraw is seen (polling from the test could miss a short run entirely).
 */
const RECORD_CHART = `(() => {
  window.chartSamples = [];
  const tick = () => {
    const s = ${READ_CHART};
    const prev = window.chartSamples[window.chartSamples.length - 1];
    if (!prev || prev.state !== s.state || prev.counter !== s.counter || prev.vertices !== s.vertices) window.chartSamples.push(s);
    requestAnimationFrame(tick);
  };
  tick();
})()`;

const RUN_ENDED = `['completed', 'failed', 'cancelled'].includes(document.querySelector('[data-testid="run-progress"]')?.getAttribute('data-state') ?? '')`;

test('sample model + sample dataset → train → live chart → drag out a PEFT adapter', { timeout: 150_000 }, async (t) => {
  const { page, errors } = await openStudioPage(browser, studio);

  await page.getByTestId('use-sample-model').click();
  await page.getByTestId('model-summary').waitFor({ timeout: 30_000 });
  await page.getByTestId('use-sample-dataset').click();
  await page.getByTestId('dataset-summary').waitFor({ timeout: 30_000 });
  assert.ok(Number(await page.getByTestId('dataset-records').textContent()) > 0, 'the sample dataset has records');

  await page.getByTestId('field-lora.r').fill(String(RANK));
  await page.getByTestId('field-lora.alpha').fill(String(ALPHA));
  for (const t of TARGETS) await page.getByTestId(`target-${t}`).setChecked(true);
  await page.getByTestId('field-train.steps').fill(String(STEPS));
  await page.getByTestId('field-train.learningRate').fill(String(LEARNING_RATE));
  const train = page.getByTestId('train-button');
  assert.equal(await train.isEnabled(), true, `Train is enabled once model and dataset are chosen (${await page.getByTestId('train-blocked').textContent()})`);
  await page.evaluate(RECORD_CHART);
  await train.click();

  // The chart must grow between two moments at which the run is still training.
  await page.waitForFunction(RUN_ENDED, undefined, { timeout: 120_000, polling: 250 });
  // The end state is read from the page as it is now: the frame recorder may not have ticked since the state
  // changed (a CI run saw its last recorded sample still 'finalizing').
  const ended = (await page.evaluate(READ_CHART)) as ChartSample;
  const runError = (await page.getByTestId('run-error').count()) ? await page.getByTestId('run-error').textContent() : null;
  assert.equal(ended.state, 'completed', `run ended ${ended.state}: ${runError ?? ''}`);
  const samples = (await page.evaluate('window.chartSamples')) as ChartSample[];

  const whileTraining = samples.filter((s) => s.state === 'executing' && s.counter > 0);
  assert.ok(whileTraining.length >= 2, `chart was seen with points while executing only ${whileTraining.length} time(s)`);
  const firstSeen = whileTraining[0];
  const grown = whileTraining.find((s) => s.counter > firstSeen.counter && s.vertices > firstSeen.vertices);
  assert.ok(grown, `the chart did not gain points during training: ${JSON.stringify(whileTraining.map((s) => [s.counter, s.vertices]))}`);
  assert.ok(firstSeen.counter < STEPS, 'the first look at the chart was before the run ended');
  t.diagnostic(`chart redraws while training (points): ${whileTraining.map((s) => s.counter).join(' ')}`);

  // Let the throttled chart catch up with the final step, then compare losses as the UI shows them.
  await page.waitForFunction(`Number(document.querySelector('[data-testid="chart-point-count"]')?.textContent) === ${STEPS}`, undefined, { timeout: 5_000 });
  assert.equal(((await page.evaluate(READ_CHART)) as ChartSample).vertices, STEPS, 'every step is drawn');
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
  const drag = (await page.evaluate(`(() => {
    const item = document.querySelector('[data-testid="adapter-item"]');
    const dataTransfer = new DataTransfer();
    const ev = new DragEvent('dragstart', { bubbles: true, cancelable: true, dataTransfer });
    item.dispatchEvent(ev);
    return { downloadUrl: dataTransfer.getData('DownloadURL'), uriList: dataTransfer.getData('text/uri-list'), prevented: ev.defaultPrevented };
  })()`)) as { downloadUrl: string; uriList: string; prevented: boolean };
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
  const q = cfg.num_attention_heads * headDim;
  const kv = (cfg.num_key_value_heads ?? cfg.num_attention_heads) * headDim;
  const inter = cfg.intermediate_size;
  // [in, out] of each projection, as transformers builds them from config.json.
  const dims: Record<(typeof TARGETS)[number], [number, number]> = {
    q_proj: [hidden, q],
    k_proj: [hidden, kv],
    v_proj: [hidden, kv],
    o_proj: [q, hidden],
    gate_proj: [hidden, inter],
    up_proj: [hidden, inter],
    down_proj: [inter, hidden],
  };

  const { tensors } = parseSafetensors(files[weightsName]);
  const expectedKeys: string[] = [];
  let trainedB = 0;
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    for (const t of TARGETS) {
      const prefix = `base_model.model.model.layers.${i}.${MLP.has(t) ? 'mlp' : 'self_attn'}.${t}`;
      const a = tensors.get(`${prefix}.lora_A.weight`);
      const b = tensors.get(`${prefix}.lora_B.weight`);
      expectedKeys.push(`${prefix}.lora_A.weight`, `${prefix}.lora_B.weight`);
      assert.ok(a && b, `${prefix}.lora_A/B.weight present`);
      const [inDim, outDim] = dims[t];
      assert.deepEqual(a.shape, [RANK, inDim], `${prefix}.lora_A is [r, in]`);
      assert.deepEqual(b.shape, [outDim, RANK], `${prefix}.lora_B is [out, r]`);
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

/**
 * The same page as the desktop app runs it: `window.studio` (common/bridge.ts) instead of HTTP. The stand-in bridge
 * forwards every request to the real services, and plays the two parts only Electron has: the native folder
 * picker (it answers with `window.nextPick`) and `startDrag` (it records the id main.ts would receive).
 */
const ELECTRON_BRIDGE = (token: string): string =>
  desktopBridgeScript(token, {
    setup: 'window.startedDrags = [];',
    intercept: "if (method === 'dialog.pickFolder') return { ok: true, result: { path: window.nextPick ?? null } };",
    members: `startDrag(adapterId) {
      window.startedDrags.push(adapterId);
    },`,
  });

test('in the desktop app: Browse… picks a folder, a drag goes to startDrag, Save as… writes the adapter folder', { timeout: 60_000 }, async () => {
  const [adapter] = await studio.api('adapters.list', {});
  assert.ok(adapter, 'the first test left an adapter');
  const sample = await studio.api('models.sample', {});
  const destination = mkdtempSync(join(tmpdir(), 'lora-studio-save-as-'));
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = watchErrors(page);
  try {
    await page.addInitScript(ELECTRON_BRIDGE(studio.token));
    // No token in the address: the desktop window gets none and needs none.
    await page.goto(`${studio.origin}/`);
    await waitConnected(page);

    assert.equal(await page.getByTestId('dataset-upload').count(), 0, 'no upload input in the desktop app');
    await page.evaluate(`window.nextPick = ${JSON.stringify(sample.path)}`);
    await page.getByTestId('model-browse').click();
    await page.getByTestId('model-summary').waitFor({ timeout: 15_000 });
    assert.equal(await page.getByTestId('model-path').inputValue(), sample.path);

    const item = page.locator(`[data-testid="adapter-item"][data-adapter-id="${adapter.id}"]`);
    await item.waitFor({ timeout: 15_000 });
    const drag = (await page.evaluate(`(() => {
      const item = document.querySelector('[data-adapter-id=${JSON.stringify(adapter.id)}]');
      const dataTransfer = new DataTransfer();
      const ev = new DragEvent('dragstart', { bubbles: true, cancelable: true, dataTransfer });
      item.dispatchEvent(ev);
      return { prevented: ev.defaultPrevented, downloadUrl: dataTransfer.getData('DownloadURL'), started: window.startedDrags };
    })()`)) as { prevented: boolean; downloadUrl: string; started: string[] };
    assert.equal(drag.prevented, true, "the page's own drag is cancelled so the OS drag of the folder can run");
    assert.deepEqual(drag.started, [adapter.id], 'startDrag got the adapter id');
    assert.equal(drag.downloadUrl, '', 'no DownloadURL in the desktop app');

    await page.evaluate(`window.nextPick = ${JSON.stringify(destination)}`);
    await item.getByTestId('adapter-save').click();
    const savedNote = item.getByText(/^Saved to /);
    await savedNote.waitFor({ timeout: 15_000 });
    const savedPath = ((await savedNote.textContent()) ?? '').replace(/^Saved to /, '');
    assert.ok(savedPath.startsWith(destination), `saved under the picked folder: ${savedPath}`);
    const config = JSON.parse(readFileSync(join(savedPath, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config.peft_type, 'LORA');
    assert.equal(config.r, adapter.r);
    assert.ok(parseSafetensors(new Uint8Array(readFileSync(join(savedPath, 'adapter_model.safetensors')))).tensors.size > 0);
    assert.deepEqual(errors, [], 'no errors in the page');
  } finally {
    await page.close();
    rmSync(destination, { recursive: true, force: true });
  }
});
