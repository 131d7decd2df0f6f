/**
 * What both e2e tests need: Debian's Chromium through playwright-core, and the real web host (the services the
 * desktop app runs) on a throwaway LORA_STUDIO_HOME, serving the renderer that `npm test` built into dist/renderer.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { StudioMethod, StudioParams, StudioReply, StudioResult } from '../../common/protocol.ts';
import { startWebHost } from '../../host/web-host.ts';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const rendererDir = join(repoRoot, 'dist', 'renderer');
export const resultsDir = join(repoRoot, 'test-results');
const CHROMIUM = '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: the e2e tests drive Debian's chromium. Install it with 'sudo apt-get install chromium' (.ci/run does).`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export interface TestStudio {
  /** The address a user opens: the page with the token. */
  pageUrl: string;
  origin: string;
  token: string;
  home: string;
  /** Calls the host's API the way the renderer does; throws on a refused request. */
  api<M extends StudioMethod>(method: M, params: StudioParams<M>): Promise<StudioResult<M>>;
  close(): Promise<void>;
}

/** `allow`: folders beside the temp folder that paths may name (the real model's cache, for the README screenshot). */
export async function startStudio(opts: { allow?: string[] } = {}): Promise<TestStudio> {
  if (!existsSync(join(rendererDir, 'index.html'))) {
    throw new Error(`${rendererDir}/index.html is missing: build the renderer first (npx vite build --config renderer/vite.config.ts; npm test does it)`);
  }
  const home = mkdtempSync(join(tmpdir(), 'lora-studio-e2e-'));
  // The tests' scratch files live in the temp folder, allowed as `serve --allow` would.
  const host = await startWebHost({ home, port: 0, host: '127.0.0.1', rendererDir, allow: [tmpdir(), ...(opts.allow ?? [])] });
  const origin = `http://127.0.0.1:${host.port}`;
  const token = host.token;
  return {
    pageUrl: `${origin}/?token=${encodeURIComponent(token)}`,
    origin,
    token,
    home,
    async api(method, params) {
      const res = await fetch(`${origin}/api/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-studio-token': token, origin },
        body: JSON.stringify(params),
      });
      const reply = (await res.json()) as StudioReply<typeof method>;
      if (!reply.ok) throw new Error(`${method} refused: ${reply.error.message}`);
      return reply.result;
    },
    async close() {
      await host.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/**
 * Collects uncaught page errors and console errors, so a test can assert the UI never crashed. Chromium's own
 * "Failed to load resource" lines are left out: a refused request is an expected answer, not a crash.
 */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`console: ${m.text()}`);
  });
  return errors;
}

/** The studio and a browser, for a test file's before(); the studio is closed again if the browser fails to start. */
export async function startStudioWithBrowser(): Promise<{ studio: TestStudio; browser: Browser }> {
  const studio = await startStudio();
  try {
    return { studio, browser: await launchChromium() };
  } catch (e) {
    await studio.close();
    throw e;
  }
}

/** For after(): closes what before() got to start. */
export async function closeStudioWithBrowser(studio: TestStudio | undefined, browser: Browser | undefined): Promise<void> {
  await browser?.close();
  await studio?.close();
}

/** Waits until the page's connection badge says the studio's event socket is open. */
export async function waitConnected(page: Page): Promise<void> {
  await page.getByTestId('connection').and(page.locator('[data-state="open"]')).waitFor({ timeout: 15_000 });
}

/** A new page on the studio's address with its errors collected, once connected. */
export async function openStudioPage(browser: Browser, studio: TestStudio, viewport = { width: 1440, height: 1000 }): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport });
  const errors = watchErrors(page);
  await page.goto(studio.pageUrl);
  await waitConnected(page);
  return { page, errors };
}

/**
 * An init script that plays the desktop app's `window.studio` (common/bridge.ts): requests go to the real services
 * over HTTP and events come over the host's WebSocket. `setup` runs first, `intercept` at the top of every
 * request (it may return a reply itself), and `members` adds the Electron-only methods (startDrag, pathForFile).
 */
export function desktopBridgeScript(token: string, parts: { setup: string; intercept: string; members: string }): string {
  return `
  ${parts.setup}
  window.studio = {
    async request(method, params) {
      ${parts.intercept}
      const res = await fetch('/api/' + method, { method: 'POST', headers: { 'content-type': 'application/json', 'x-studio-token': ${JSON.stringify(token)} }, body: JSON.stringify(params) });
      return res.json();
    },
    onEvent(listener) {
      const ws = new WebSocket('ws://' + location.host + '/events?token=' + ${JSON.stringify(encodeURIComponent(token))});
      ws.onmessage = (e) => listener(JSON.parse(e.data));
      return () => ws.close();
    },
    ${parts.members}
  };
`;
}
