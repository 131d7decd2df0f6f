/**
 * Two adapters side by side in the Playground, through the real services and generation worker: one job answers the
 * same prompt with the first adapter, the second adapter and (when asked) the base model, with the same settings;
 * each answer equals plain generation (engine/generate/generate.ts, in this process) with that adapter alone, and the
 * two adapters answer differently. A second adapter without a first, or a folder that is not one, is refused by field.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { PlaygroundEnded, PlaygroundOutput, PlaygroundRequest, PlaygroundStarted, StudioEventMessage } from '../../common/protocol.ts';
import { generate } from '../../engine/generate/generate.ts';
import { formatPrompt } from '../../engine/generate/prompt-format.ts';
import { loadModel, loadTokenizer } from '../../engine/io/model-source.ts';
import { loadAdapter } from '../../engine/io/peft-adapter.ts';
import type { Tokenizer } from '../../engine/model/types.ts';
import { writeTestAdapter } from '../helpers/peft-folder.ts';
import { repoRoot } from '../helpers/python.ts';
import { refusal, tempStudios } from '../helpers/temp-studio.ts';

process.env.LORA_STUDIO_CPU_THREADS = '1';
const MODEL = join(repoRoot, 'assets/sample-model');
const { tmp, services } = tempStudios('lora-pg-compare-');
const first = join(tmp, 'first');
const second = join(tmp, 'second');
writeTestAdapter(first, MODEL, 4, ['q_proj', 'v_proj', 'down_proj']);
writeTestAdapter(second, MODEL, 2, ['o_proj', 'up_proj']);

const request = (over: Partial<PlaygroundRequest> = {}): PlaygroundRequest => ({
  modelPath: MODEL,
  prompt: 'The jury said',
  promptFormat: 'raw',
  maxNewTokens: 16,
  temperature: 0,
  topP: 1,
  seed: 7,
  backend: 'cpu',
  ...over,
});

test('one job answers with both adapters and the base model; each as that adapter alone would', async () => {
  const s = services('compare');
  let started: PlaygroundStarted | null = null;
  const finals = new Map<string, PlaygroundOutput>();
  let resolveEnd: (e: PlaygroundEnded) => void = () => undefined;
  const ended = new Promise<PlaygroundEnded>((r) => (resolveEnd = r));
  s.onEvent((m: StudioEventMessage) => {
    if (m.event === 'generate.started') started = m.data as PlaygroundStarted;
    if (m.event === 'generate.output') {
      const o = m.data as PlaygroundOutput;
      if (o.stop) finals.set(o.variant, o);
    }
    if (m.event === 'generate.ended') resolveEnd(m.data as PlaygroundEnded);
  });
  await s.handle('generate.start', request({ adapterPath: first, compareAdapterPath: second, compareBase: true }));
  const end = await ended;
  assert.equal(end.error, null, JSON.stringify(end.error));
  assert.deepEqual((started as PlaygroundStarted | null)?.variants, ['adapter', 'compare', 'base']);

  const model = loadModel(MODEL, { dtype: Float32Array });
  const tokenizer = (await loadTokenizer(MODEL)) as Tokenizer;
  const f = formatPrompt(tokenizer, model.config, { prompt: 'The jury said', promptFormat: 'raw' });
  const alone = (lora: ReturnType<typeof loadAdapter> | null) => tokenizer.decode(generate(model, lora, f.ids, { maxNewTokens: 16, temperature: 0, topP: 1, seed: 7, eosTokenIds: f.stopIds }), { skipSpecialTokens: true });
  const want = { adapter: alone(loadAdapter(first, model.config)), compare: alone(loadAdapter(second, model.config)), base: alone(null) };
  for (const v of ['adapter', 'compare', 'base'] as const) assert.equal(finals.get(v)?.text, want[v], `${v}'s answer`);
  assert.notEqual(want.adapter, want.compare, 'the two adapters answer differently');
});

test('a second adapter needs a first one, and must be an adapter folder', async () => {
  const s = services('refuse');
  const none = await refusal(() => s.handle('generate.start', request({ compareAdapterPath: second })));
  assert.equal(none.info.field, 'compareAdapterPath');
  const missing = await refusal(() => s.handle('generate.start', request({ adapterPath: first, compareAdapterPath: join(tmp, 'nowhere') })));
  assert.equal(missing.info.field, 'compareAdapterPath');
});
