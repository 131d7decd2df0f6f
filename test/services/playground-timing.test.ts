/**
 * The playground's speed figures through the real services and generation worker: tokens/s counts decode only (the
 * tokens after the first, over their own time), the prompt's prefill is reported apart. A 1-token answer has no
 * decode speed at all (it used to show the prefill as "tok/s"), and the two parts fit inside the job's wall time.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { PlaygroundOutput, PlaygroundRequest, StudioEventMessage } from '../../common/protocol.ts';
import { repoRoot } from '../helpers/python.ts';
import { tempStudios } from '../helpers/temp-studio.ts';

const MODEL = join(repoRoot, 'assets/sample-model');
const { services } = tempStudios('lora-pg-timing-');
const s = services('studio');

async function generate(maxNewTokens: number): Promise<{ last: PlaygroundOutput; wallMs: number }> {
  const req: PlaygroundRequest = { modelPath: MODEL, prompt: 'The jury said', promptFormat: 'raw', maxNewTokens, temperature: 0, topP: 1, seed: 7, backend: 'cpu' };
  const outputs: PlaygroundOutput[] = [];
  let jobId = '';
  const t0 = performance.now();
  const ended = new Promise<void>((resolve) => {
    s.onEvent((m: StudioEventMessage) => {
      if (m.event === 'generate.output' && (m.data as PlaygroundOutput).jobId === jobId) outputs.push(m.data as PlaygroundOutput);
      if (m.event === 'generate.ended' && (m.data as { jobId: string }).jobId === jobId) resolve();
    });
  });
  ({ jobId } = await s.handle('generate.start', req));
  await ended;
  const last = outputs.at(-1);
  assert.ok(last, 'an output');
  return { last, wallMs: performance.now() - t0 };
}

test('one token: prefill time, no decode speed', async () => {
  const { last } = await generate(1);
  assert.equal(last.tokens, 1);
  assert.equal(last.tokensPerSecond, null);
  assert.ok(last.prefillMs !== null && last.prefillMs > 0, String(last.prefillMs));
});

test('many tokens: decode speed over the tokens after the first; prefill + decode time within the wall time', async () => {
  const { last, wallMs } = await generate(24);
  assert.ok(last.tokens >= 2, `${last.tokens} tokens`);
  assert.ok(last.tokensPerSecond !== null && last.tokensPerSecond > 0);
  assert.ok(last.prefillMs !== null && last.prefillMs > 0);
  const decodeMs = ((last.tokens - 1) / last.tokensPerSecond) * 1000;
  assert.ok(last.prefillMs + decodeMs <= wallMs + 1, `prefill ${last.prefillMs} ms + decode ${decodeMs} ms within ${wallMs} ms`);
});
