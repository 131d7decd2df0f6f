/**
 * The host goes away under a working page and comes back: the page says the connection is lost, an unfinished run
 * reads "unknown — reconnecting" (no live ETA), its actions and Train are off; once the host answers on the same
 * address again, the page recovers by itself with nothing typed lost.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startWebHost, type WebHost } from '../host/web-host.ts';
import { launchChromium, rendererDir, waitConnected, watchErrors } from './helpers/studio.ts';

let home: string;
let host: WebHost | undefined;
let browser: Browser | undefined;
let page: Page;
let errors: string[];

before(async () => {
  home = mkdtempSync(join(tmpdir(), 'lora-studio-e2e-lost-'));
  host = await startWebHost({ home, port: 0, host: '127.0.0.1', rendererDir });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  errors = watchErrors(page);
  await page.goto(host.url);
  await waitConnected(page);
});

after(async () => {
  await browser?.close();
  await host?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

test('host stopped mid-run: lost-connection banner, run state unknown, actions off; host back: the page recovers', { timeout: 120_000 }, async () => {
  assert.ok(host);
  await page.getByTestId('use-sample-model').click();
  await page.getByTestId('model-summary').waitFor({ timeout: 30_000 });
  await page.getByTestId('use-sample-dataset').click();
  await page.getByTestId('dataset-summary').waitFor({ timeout: 30_000 });
  await page.getByTestId('field-train.steps').fill('100000');
  await page.getByTestId('field-lora.r').fill('12');
  await page.getByTestId('train-button').click();
  const progress = page.getByTestId('run-progress');
  await progress.getByTestId('run-state').filter({ hasText: 'training' }).waitFor({ timeout: 60_000 });

  const { port, token } = host;
  await host.close();
  host = undefined;

  await page.getByTestId('connection-lost').waitFor({ timeout: 15_000 });
  await progress.getByTestId('run-state').filter({ hasText: 'unknown — reconnecting' }).waitFor({ timeout: 5_000 });
  assert.equal(await progress.getByTestId('run-eta').textContent(), '—', 'no live ETA while nothing is known');
  assert.equal(await progress.getByTestId('run-cancel').isDisabled(), true);
  assert.equal(await progress.getByTestId('run-pause').isDisabled(), true);
  assert.equal(await page.getByTestId('train-button').isDisabled(), true);
  const reasons = await page.getByTestId('train-blockers').locator('li').allTextContents();
  assert.ok(reasons.some((r) => /not connected/.test(r)), reasons.join(' | '));

  // The same address and token again (a host restarted with them): the page reconnects without a reload.
  host = await startWebHost({ home, port, host: '127.0.0.1', rendererDir, token });
  await waitConnected(page);
  await page.getByTestId('connection-lost').waitFor({ state: 'detached', timeout: 15_000 });
  const state = (await progress.getByTestId('run-state').textContent()) ?? '';
  assert.doesNotMatch(state, /unknown/, state);
  assert.equal(await page.getByTestId('field-lora.r').inputValue(), '12', 'nothing typed was lost');
  assert.deepEqual(
    errors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED/.test(e)),
    [],
  );
});
