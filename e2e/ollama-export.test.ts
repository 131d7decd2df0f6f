/**
 * "Export for Ollama" from the Adapters list: an adapter whose base is the real SmolLM2 GGUF; the user presses
 * Ollama and is shown the `ollama create` line, FROM the base GGUF and the ChatML template taken from it; the
 * Modelfile and adapter.gguf are in the adapter's folder.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { readModelConfig } from '../engine/io/model-source.ts';
import { saveAdapter } from '../engine/io/peft-adapter.ts';
import { newLora } from '../engine/model/lora.ts';
import { Rng } from '../engine/util/rng.ts';
import { placeFile } from '../test/helpers/model-stores.ts';
import { realModelPath } from '../test/helpers/real-model.ts';
import { closeStudioWithBrowser, openStudioPage, startStudioWithBrowser, type TestStudio } from './helpers/studio.ts';

let studio: TestStudio;
let browser: Browser;
let page: Page;
let errors: string[];
let scratch: string;
let base: string;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'lora-studio-ollama-export-'));
  base = join(scratch, 'SmolLM2-135M-Instruct.Q4_1.gguf');
  placeFile(realModelPath(), base);
  const adapterDir = join(scratch, 'adapter');
  saveAdapter(adapterDir, newLora(readModelConfig(base), { r: 2, alpha: 4, dropout: 0, targets: ['q_proj', 'v_proj'], rslora: false }, new Rng(7)), { baseModelNameOrPath: base });
  ({ studio, browser } = await startStudioWithBrowser());
  await studio.api('adapters.import', { path: adapterDir, name: 'smollm2 pirate' });
  ({ page, errors } = await openStudioPage(browser, studio));
});

after(async () => {
  await closeStudioWithBrowser(studio, browser);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('Ollama on an adapter writes the Modelfile beside adapter.gguf and shows the ollama create line', async () => {
  const item = page.getByTestId('adapter-item').filter({ hasText: 'smollm2 pirate' });
  await item.getByTestId('adapter-ollama').click({ timeout: 30_000 });
  const done = item.getByTestId('adapter-ollama-done');
  await done.waitFor({ timeout: 60_000 });
  const text = (await done.textContent()) ?? '';
  assert.ok(text.includes(`FROM ${base}, chatml template and stops`), text);
  const command = (await item.getByTestId('adapter-ollama-command').textContent()) ?? '';
  const m = /^ollama create (smollm2-pirate[a-z0-9._-]*) -f (\S+Modelfile)$/.exec(command.trim());
  assert.ok(m, command);
  const modelfile = m[2]!;
  assert.ok(existsSync(join(modelfile, '..', 'adapter.gguf')));
  const content = readFileSync(modelfile, 'utf8');
  assert.match(content, new RegExp(`^FROM ${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  assert.match(content, /^ADAPTER \.\/adapter\.gguf$/m);
  assert.match(content, /^PARAMETER stop "<\|im_end\|>"$/m);
  assert.deepEqual(errors, []);
});
