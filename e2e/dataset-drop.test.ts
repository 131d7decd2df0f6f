/**
 * The dataset page in a real browser: a chat dataset dropped on the window (a DataTransfer holding a File, dispatched
 * as dragenter/dragover/drop) shows its detected format, record count, a token-length histogram with the max-length
 * cut-off drawn between the short and the long examples, and a preview whose highlighted text is exactly the
 * assistant turns. A short run with a 10 % validation split then draws a validation-loss line next to the training
 * loss. A second file with a broken line is reported with its name and line number, refused by default and trained
 * on (without it) once "skip" is chosen. In the desktop app a drop goes by the file's path, not its content.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { closeStudioWithBrowser, desktopBridgeScript, openStudioPage, resultsDir, startStudioWithBrowser, waitConnected, watchErrors, type TestStudio } from './helpers/studio.ts';

const RECORDS = 40;
/** Every LONG_EVERY-th record (1-based) has a long answer: far more tokens than MAX_SEQ_LEN. */
const LONG_EVERY = 8;
const MAX_SEQ_LEN = 96;
const STEPS = 12;
const EVAL_EVERY = 3;
const VALIDATION_PERCENT = 10;

let studio: TestStudio;
let browser: Browser;
let page: Page;
let errors: string[];

before(async () => {
  ({ studio, browser } = await startStudioWithBrowser());
  ({ page, errors } = await openStudioPage(browser, studio));
});

after(async () => {
  await closeStudioWithBrowser(studio, browser);
});

interface Chat {
  question: string;
  answer: string;
}

function chats(): Chat[] {
  const out: Chat[] = [];
  for (let i = 1; i <= RECORDS; i++) {
    const a = (i * 7) % 23;
    const b = (i * 11) % 19;
    const question = `What is ${a} plus ${b}?`;
    // ~2400 characters of words: hundreds of tokens whatever the vocabulary, so well past MAX_SEQ_LEN.
    const answer = i % LONG_EVERY === 0 ? `${a} plus ${b} is ${a + b}. ${'Adding counts one group onto another, step by step. '.repeat(48)}` : `${a} plus ${b} is ${a + b}.`;
    out.push({ question, answer });
  }
  return out;
}

function chatJsonl(items: readonly Chat[]): string {
  return items.map((c) => JSON.stringify({ messages: [{ role: 'user', content: c.question }, { role: 'assistant', content: c.answer }] })).join('\n') + '\n';
}

/**
 * In-page code stays plain JavaScript text (tsx would add helpers the page lacks). The DataTransfer lives on window
 * between the steps so the drag can be looked at half-way (overlay shown) before the drop.
 */
function dragEnterScript(name: string, content: string): string {
  return `(() => {
    const dt = new DataTransfer();
    dt.items.add(new File([${JSON.stringify(content)}], ${JSON.stringify(name)}, { type: 'application/jsonl' }));
    window.__drop = dt;
    const target = document.querySelector('main') ?? document.body;
    const fire = (type) => {
      const ev = new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt });
      target.dispatchEvent(ev);
      return ev.defaultPrevented;
    };
    return { enter: fire('dragenter'), over: fire('dragover') };
  })()`;
}

const DROP = `(() => {
  const target = document.querySelector('[data-testid="drop-overlay"]') ?? document.body;
  const ev = new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: window.__drop });
  target.dispatchEvent(ev);
  return ev.defaultPrevented;
})()`;

async function dropFile(name: string, content: string, on: Page = page): Promise<void> {
  const page = on;
  const prevented = (await page.evaluate(dragEnterScript(name, content))) as { enter: boolean; over: boolean };
  assert.deepEqual(prevented, { enter: true, over: true }, 'the window takes the file drag (else the browser would open the file)');
  await page.getByTestId('drop-overlay').waitFor({ timeout: 5_000 });
  assert.equal(await page.evaluate(DROP), true, 'the drop is handled by the studio');
  await page.getByTestId('drop-overlay').waitFor({ state: 'detached', timeout: 5_000 });
}

/** Horizontal centres of the drawn histogram bars and of the cut-off line, in page pixels. */
const READ_HISTOGRAM = `(() => {
  const root = document.querySelector('[data-testid="token-histogram"]');
  const centre = (el) => { const r = el.getBoundingClientRect(); return { x: r.left + r.width / 2, w: r.width, h: r.height }; };
  const bars = [...root.querySelectorAll('.recharts-bar-rectangle path, .recharts-bar-rectangle rect')].map(centre).filter((b) => b.h > 0);
  const line = root.querySelector('.recharts-reference-line line');
  return { bars, cutoff: line ? centre(line).x : null, label: root.querySelector('.recharts-label')?.textContent ?? '' };
})()`;

const READ_PREVIEW = `(() => {
  const ex = document.querySelector('[data-testid="preview-example"] pre');
  return {
    trained: [...ex.querySelectorAll('mark.trained')].map((m) => m.textContent),
    masked: [...ex.querySelectorAll('span.masked')].map((m) => m.textContent),
  };
})()`;

const RUN_ENDED = `['completed', 'failed', 'cancelled'].includes(document.querySelector('[data-testid="run-progress"]')?.getAttribute('data-state') ?? '')`;

test('drop a chat dataset → format, counts, histogram with cut-off, trained spans; train → validation loss line', { timeout: 90_000 }, async (t) => {
  await page.getByTestId('use-sample-model').click();
  await page.getByTestId('model-summary').waitFor({ timeout: 30_000 });

  const items = chats();
  await dropFile('arithmetic-chat.jsonl', chatJsonl(items));
  const panel = page.getByTestId('dataset-panel');
  await panel.getByTestId('token-histogram').waitFor({ timeout: 20_000 });
  assert.equal(await panel.getByTestId('panel-format').textContent(), 'messages');
  assert.equal(await page.getByTestId('dataset-format').textContent(), 'messages');
  assert.equal(await page.getByTestId('dataset-records').textContent(), String(RECORDS));
  assert.equal(await panel.getByTestId('panel-records').textContent(), String(RECORDS));

  // Changing the max length re-reads the dataset: the cut-off moves to the typed value.
  await page.getByTestId('field-train.maxSeqLen').fill(String(MAX_SEQ_LEN));
  const histogram = panel.getByTestId('token-histogram');
  await page.waitForFunction(`document.querySelector('[data-testid="token-histogram"]')?.getAttribute('data-cutoff') === '${MAX_SEQ_LEN}'`, undefined, { timeout: 10_000 });
  const longOnes = items.filter((_, i) => (i + 1) % LONG_EVERY === 0).length;
  assert.equal(await histogram.getByTestId('dataset-truncated').getAttribute('data-count'), String(longOnes), 'exactly the long answers are cut');

  const drawn = (await page.evaluate(READ_HISTOGRAM)) as { bars: { x: number }[]; cutoff: number | null; label: string };
  assert.ok(drawn.cutoff !== null, 'the cut-off line is drawn');
  assert.match(drawn.label, new RegExp(`${MAX_SEQ_LEN}`), 'the cut-off is labelled with the max length');
  const left = drawn.bars.filter((b) => b.x < drawn.cutoff!);
  const right = drawn.bars.filter((b) => b.x > drawn.cutoff!);
  assert.ok(left.length >= 1 && right.length >= 1, `bars on both sides of the cut-off: ${JSON.stringify(drawn)}`);

  // The preview: the first record, rendered with the model's chat template; only the assistant turn is highlighted.
  const first = items[0];
  const preview = (await page.evaluate(READ_PREVIEW)) as { trained: string[]; masked: string[] };
  const trainedText = preview.trained.join('');
  const maskedText = preview.masked.join('');
  assert.ok(trainedText.includes(first.answer), `trained text holds the answer "${first.answer}": ${JSON.stringify(preview.trained)}`);
  assert.ok(!trainedText.includes(first.question), `the question is not trained on: ${JSON.stringify(preview.trained)}`);
  assert.ok(maskedText.includes(first.question), `the question is shown dimmed: ${JSON.stringify(preview.masked)}`);
  assert.ok(maskedText.includes('<|start_header_id|>user<|end_header_id|>'), 'the model template rendered the turns');

  // "Train on everything" re-reads the file and the question turns trained too.
  await panel.getByTestId('train-on').selectOption('all');
  await page.waitForFunction(
    `[...document.querySelectorAll('[data-testid="preview-example"]:first-of-type mark.trained')].some((m) => m.textContent.includes(${JSON.stringify(first.question)}))`,
    undefined,
    { timeout: 10_000 },
  );
  await panel.getByTestId('train-on').selectOption('completions');

  // A short run with a validation split, evaluated every few steps.
  await page.getByTestId('field-train.steps').fill(String(STEPS));
  await page.getByTestId('field-train.learningRate').fill('0.02');
  await page.getByTestId('field-train.validationPercent').fill(String(VALIDATION_PERCENT));
  await page.getByTestId('field-train.evalEverySteps').fill(String(EVAL_EVERY));
  const train = page.getByTestId('train-button');
  assert.equal(await train.isEnabled(), true, `Train is enabled (${await page.getByTestId('train-blocked').textContent()})`);
  await train.click();
  await page.waitForFunction(RUN_ENDED, undefined, { timeout: 60_000, polling: 250 });
  const state = await page.getByTestId('run-progress').getAttribute('data-state');
  const runError = (await page.getByTestId('run-error').count()) ? await page.getByTestId('run-error').textContent() : '';
  assert.equal(state, 'completed', `run ended ${state}: ${runError}`);

  const chart = page.getByTestId('loss-chart');
  const expectedEvals = STEPS / EVAL_EVERY;
  await page.waitForFunction(`Number(document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-validation-points')) >= ${expectedEvals}`, undefined, { timeout: 10_000 });
  assert.equal(await chart.locator('.recharts-line-curve').count(), 2, 'a training and a validation line');
  assert.match((await chart.locator('.recharts-legend-wrapper').textContent()) ?? '', /validation loss/, 'the validation line has its legend entry');
  const valLine = (await chart.locator('.recharts-line-curve').nth(1).getAttribute('d')) ?? '';
  assert.equal((valLine.match(/[ML]/g) ?? []).length, expectedEvals, `one vertex per evaluation: ${valLine}`);

  // What the form said is what the run was given.
  const runs = await studio.api('runs.list', {});
  const run = runs.find((r) => r.state === 'completed');
  assert.ok(run, 'the run is listed');
  assert.equal(run.config.datasetPath.endsWith('arithmetic-chat.jsonl'), true, run.config.datasetPath);
  assert.equal(run.config.train.validationPercent, VALIDATION_PERCENT);
  assert.equal(run.config.train.evalEverySteps, EVAL_EVERY);
  assert.equal(run.config.train.maxSeqLen, MAX_SEQ_LEN);
  assert.equal(run.config.data?.trainOn, 'completions');
  const metrics = await studio.api('runs.metrics', { id: run.id });
  const evaluated = metrics.filter((m) => m.validationLoss !== undefined).map((m) => m.step);
  assert.deepEqual(evaluated, [3, 6, 9, 12], 'the trainer evaluated every 3 steps');
  t.diagnostic(`validation losses: ${metrics.filter((m) => m.validationLoss !== undefined).map((m) => m.validationLoss?.toFixed(4)).join(' ')}`);

  mkdirSync(resultsDir, { recursive: true });
  await page.screenshot({ path: join(resultsDir, 'dataset.png'), fullPage: true });
});

test('a dropped file with a broken line: file and line shown; "refuse" blocks the run, "skip" trains without it', { timeout: 45_000 }, async () => {
  const lines = chatJsonl(chats().slice(0, 5)).trim().split('\n');
  lines.splice(2, 0, '{"messages": [{"role": "user", "content": "unfinished');
  await dropFile('broken-chat.jsonl', lines.join('\n') + '\n');

  const bad = page.getByTestId('dataset-picker').getByTestId('dataset-bad-records');
  await bad.waitFor({ timeout: 15_000 });
  const text = (await bad.textContent()) ?? '';
  assert.ok(text.includes('broken-chat.jsonl'), `names the file: "${text}"`);
  assert.match(text, /line 3\b/, `names line 3: "${text}"`);
  assert.equal(await page.getByTestId('dataset-records').textContent(), '5', 'the good records are counted');
  assert.equal(await page.getByTestId('bad-records-fail').isChecked(), true, 'refusing is the default policy');

  // With "refuse", the services would refuse the run: Train is off before the click and says why.
  assert.equal(await page.getByTestId('train-button').isDisabled(), true, 'Train is off while broken records are refused');
  const reasons = (await page.getByTestId('train-blockers').locator('li').allTextContents()).join(' | ');
  assert.match(reasons, /Dataset: 1 broken record; fix the file or choose to skip them/, reasons);

  // Skipping bad records: the services accept the same file and the run trains on the five good records.
  const before = (await studio.api('runs.list', {})).length;
  await page.getByTestId('bad-records-skip').check();
  await page.getByTestId('field-train.steps').fill('3');
  await page.getByTestId('field-train.evalEverySteps').fill('0');
  await page.getByTestId('train-button').click();
  await page.waitForFunction(`document.querySelector('[data-testid="run-step"]')?.textContent === '3 / 3'`, undefined, { timeout: 30_000 });
  const runs = await studio.api('runs.list', {});
  assert.equal(runs.length, before + 1, 'the run was accepted');
  const run = runs.find((r) => r.config.datasetPath.endsWith('broken-chat.jsonl'));
  assert.equal(run?.config.data?.badRecords, 'skip');
  await page.waitForFunction(RUN_ENDED, undefined, { timeout: 20_000, polling: 250 });
  assert.equal(await page.getByTestId('run-progress').getAttribute('data-state'), 'completed');
  assert.deepEqual(errors, [], 'no uncaught errors in the page');
});

/**
 * The desktop app's bridge, played by the page: requests go to the real services over HTTP (recorded), and
 * pathForFile answers with the disk path that webUtils.getPathForFile would give for a dropped file.
 */
const DESKTOP_BRIDGE = (token: string): string =>
  desktopBridgeScript(token, {
    setup: 'window.requested = []; window.diskPaths = {};',
    intercept: 'window.requested.push(method);',
    members: `startDrag() {},
    pathForFile(file) {
      return window.diskPaths[file.name] ?? '';
    },`,
  });

test('in the desktop app a dropped file is read from its path on disk, not uploaded', { timeout: 30_000 }, async () => {
  const folder = mkdtempSync(join(tmpdir(), 'lora-studio-drop-'));
  const file = join(folder, 'on-disk-chat.jsonl');
  const content = chatJsonl(chats().slice(0, 6));
  writeFileSync(file, content);
  const desktop = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const pageErrors = watchErrors(desktop);
  try {
    await desktop.addInitScript(DESKTOP_BRIDGE(studio.token));
    await desktop.goto(`${studio.origin}/`);
    await waitConnected(desktop);
    await desktop.evaluate(`window.diskPaths[${JSON.stringify('on-disk-chat.jsonl')}] = ${JSON.stringify(file)}`);
    await dropFile('on-disk-chat.jsonl', content, desktop);
    await desktop.getByTestId('dataset-summary').waitFor({ timeout: 15_000 });
    assert.equal(await desktop.getByTestId('dataset-path').inputValue(), file, 'the dataset is the file on disk');
    assert.equal(await desktop.getByTestId('dataset-records').textContent(), '6');
    const requested = (await desktop.evaluate('window.requested')) as string[];
    assert.ok(requested.includes('datasets.inspect'), requested.join(', '));
    assert.ok(!requested.includes('datasets.upload'), `nothing uploaded: ${requested.join(', ')}`);
    assert.deepEqual(pageErrors, []);
  } finally {
    await desktop.close();
    rmSync(folder, { recursive: true, force: true });
  }
});
