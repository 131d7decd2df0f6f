/**
 * The playground through the real services and generation worker: greedy answers equal transformers' + PEFT's
 * `generate` on the same prompt ids, with and without the adapter; a job can be stopped, a new one supersedes the
 * running one, and bad requests are refused with the field they are about.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { PlaygroundEnded, PlaygroundOutput, PlaygroundRequest, PlaygroundStarted, StudioEventMessage } from '../../common/protocol.ts';
import type { StudioServices } from '../../host/services/studio-services.ts';
import { cpuBackendInfo } from '../../engine/backend/cpu/cpu-ops.ts';
import { formatPrompt } from '../../engine/generate/prompt-format.ts';
import { readHfConfig } from '../../engine/io/hf-config.ts';
import { loadTokenizer } from '../../engine/io/tokenizer.ts';
import { writeTestAdapter } from '../helpers/peft-folder.ts';
import { repoRoot, runPython } from '../helpers/python.ts';
import { refusal, tempStudios } from '../helpers/temp-studio.ts';

const MODEL = join(repoRoot, 'assets/sample-model');
const { tmp, services } = tempStudios('lora-playground-');
const adapterDir = join(tmp, 'adapter');
writeTestAdapter(adapterDir, MODEL, 4, ['q_proj', 'v_proj', 'down_proj']);

interface JobEvents {
  started: PlaygroundStarted | null;
  outputs: PlaygroundOutput[];
  ended: PlaygroundEnded;
}

/** Collects one job's events until it ends. */
function watch(s: StudioServices): { job(id: string): Promise<JobEvents>; firstOutput(id: string): Promise<void> } {
  const byJob = new Map<string, { started: PlaygroundStarted | null; outputs: PlaygroundOutput[] }>();
  const endWaiters = new Map<string, (e: JobEvents) => void>();
  const outputWaiters = new Map<string, () => void>();
  const ended = new Map<string, JobEvents>();
  const entry = (id: string) => {
    let e = byJob.get(id);
    if (!e) byJob.set(id, (e = { started: null, outputs: [] }));
    return e;
  };
  s.onEvent((m: StudioEventMessage) => {
    if (m.event === 'generate.started') entry((m.data as PlaygroundStarted).jobId).started = m.data as PlaygroundStarted;
    if (m.event === 'generate.output') {
      const o = m.data as PlaygroundOutput;
      entry(o.jobId).outputs.push(o);
      outputWaiters.get(o.jobId)?.();
    }
    if (m.event === 'generate.ended') {
      const d = m.data as PlaygroundEnded;
      const done = { ...entry(d.jobId), ended: d };
      ended.set(d.jobId, done);
      endWaiters.get(d.jobId)?.(done);
    }
  });
  return {
    job: (id) => new Promise((resolve) => (ended.has(id) ? resolve(ended.get(id) as JobEvents) : endWaiters.set(id, resolve))),
    firstOutput: (id) => new Promise((resolve) => ((byJob.get(id)?.outputs.length ?? 0) > 0 ? resolve() : outputWaiters.set(id, resolve))),
  };
}

const base = (over: Partial<PlaygroundRequest> = {}): PlaygroundRequest => ({
  modelPath: MODEL,
  prompt: 'The jury said',
  promptFormat: 'raw',
  maxNewTokens: 24,
  temperature: 0,
  topP: 1,
  seed: 7,
  backend: 'cpu',
  ...over,
});

function finalOf(ev: JobEvents, variant: 'adapter' | 'base'): PlaygroundOutput {
  const last = ev.outputs.filter((o) => o.variant === variant).at(-1);
  assert.ok(last, `no output for ${variant}`);
  return last;
}

describe('playground services', () => {
  const s = services('studio');
  const w = watch(s);

  for (const promptFormat of ['raw', 'alpaca', 'chat'] as const) {
    it(`greedy text equals transformers + PEFT generate (${promptFormat} prompt), with and without the adapter`, async () => {
      const req = base({ adapterPath: adapterDir, compareBase: true, promptFormat });
      const { jobId } = await s.handle('generate.start', req);
      const ev = await w.job(jobId);
      assert.equal(ev.ended.error, null, ev.ended.error?.message);
      assert.equal(ev.ended.cancelled, false);

      const tokenizer = await loadTokenizer(MODEL);
      assert.ok(tokenizer);
      const prompt = formatPrompt(tokenizer, readHfConfig(MODEL), req);
      assert.deepEqual(ev.started?.variants, ['adapter', 'base']);
      assert.equal(ev.started?.promptTokens, prompt.ids.length);
      // "cpu (native avx512, 2 threads)", or "cpu (portable, slow)" where the native kernels are not built.
      assert.equal(ev.started?.backend, cpuBackendInfo().label);
      for (const variant of ['adapter', 'base'] as const) {
        const ref = JSON.parse(runPython('generate_reference.py', [MODEL, variant === 'adapter' ? adapterDir : '-', JSON.stringify(prompt.ids), String(req.maxNewTokens), JSON.stringify(prompt.stopIds)])) as { ids: number[]; text: string };
        const out = finalOf(ev, variant);
        assert.equal(out.text, ref.text, `${variant} text`);
        assert.equal(out.tokens, ref.ids.length, `${variant} token count`);
        assert.equal(out.stop, prompt.stopIds.includes(ref.ids.at(-1) ?? -1) ? 'eos' : 'length');
        const counts = ev.outputs.filter((o) => o.variant === variant).map((o) => o.tokens);
        assert.deepEqual(counts, [...counts].sort((a, b) => a - b), 'token counts only grow');
      }
      assert.notEqual(finalOf(ev, 'adapter').text, finalOf(ev, 'base').text, 'the adapter changes the answer');
    });
  }

  it('sampling is reproducible from the seed and changes with it', async () => {
    const run = async (seed: number) => {
      const { jobId } = await s.handle('generate.start', base({ temperature: 1.2, topP: 0.9, seed }));
      return finalOf(await w.job(jobId), 'base').text;
    };
    const a = await run(3);
    assert.equal(await run(3), a);
    assert.notEqual(await run(4), a);
  });

  it('stops a job at the next token, and a new job supersedes the running one', async () => {
    const long = base({ maxNewTokens: 4096, prompt: 'Once' });
    const { jobId } = await s.handle('generate.start', long);
    await w.firstOutput(jobId);
    assert.deepEqual(await s.handle('generate.cancel', { jobId }), { cancelled: true });
    const ev = await w.job(jobId);
    assert.equal(ev.ended.cancelled, true);
    const last = finalOf(ev, 'base');
    assert.equal(last.stop, 'cancelled');
    assert.ok(last.tokens < 4096, `stopped early (${last.tokens} tokens)`);
    assert.deepEqual(await s.handle('generate.cancel', { jobId }), { cancelled: false }, 'an ended job cannot be cancelled again');

    const first = await s.handle('generate.start', long);
    await w.firstOutput(first.jobId);
    const second = await s.handle('generate.start', base({ maxNewTokens: 5 }));
    const [a, b] = await Promise.all([w.job(first.jobId), w.job(second.jobId)]);
    assert.equal(a.ended.cancelled, true);
    assert.equal(b.ended.error, null);
    assert.equal(finalOf(b, 'base').tokens, 5);
  });

  it('refuses bad requests with the field they are about', async () => {
    let e = await refusal(() => s.handle('generate.start', base({ modelPath: join(tmp, 'no-such-model') })));
    assert.equal(e.info.field, 'modelPath');
    e = await refusal(() => s.handle('generate.start', base({ adapterPath: join(adapterDir, 'adapter_config.json') })));
    assert.equal(e.info.field, 'adapterPath');
    assert.match(e.info.message, /is a file/);
    e = await refusal(() => s.handle('generate.start', { ...base(), maxNewTokens: 0, temperature: -1, prompt: ' ' }));
    assert.deepEqual(e.info.fieldErrors?.map((f) => f.field).sort(), ['maxNewTokens', 'prompt', 'temperature']);
    e = await refusal(() => s.handle('generate.start', base({ promptFormat: 'chat', chatTemplate: 'vicuna' })));
    assert.equal(e.info.field, 'chatTemplate');
    const history = [
      { role: 'user' as const, content: 'first question' },
      { role: 'assistant' as const, content: 'first answer' },
    ];
    e = await refusal(() => s.handle('generate.start', base({ history })));
    assert.equal(e.info.field, 'history');
    // A history the worker finds malformed (turns out of order) ends the job naming the turn.
    const swapped = await s.handle('generate.start', base({ promptFormat: 'chat', history: [history[1], history[0]] }));
    assert.equal((await w.job(swapped.jobId)).ended.error?.field, 'history.0.role');
    const chat = await s.handle('generate.start', base({ promptFormat: 'chat', history, maxNewTokens: 2 }));
    const ev = await w.job(chat.jobId);
    assert.equal(ev.ended.error, null, ev.ended.error?.message);
    assert.ok(ev.started?.promptText.includes('first question') && ev.started.promptText.includes('first answer'), ev.started?.promptText);

    // A base model without a chat template cannot take a chat prompt unless a built-in template is chosen.
    const noTemplate = join(tmp, 'no-template-model');
    mkdirSync(noTemplate);
    cpSync(MODEL, noTemplate, { recursive: true });
    const cfgPath = join(noTemplate, 'tokenizer_config.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
    delete cfg.chat_template;
    writeFileSync(cfgPath, JSON.stringify(cfg));
    e = await refusal(() => s.handle('generate.start', base({ modelPath: noTemplate, promptFormat: 'chat' })));
    assert.equal(e.info.field, 'promptFormat');
    assert.match(e.info.message, /no chat template/);
    const ok = await s.handle('generate.start', base({ modelPath: noTemplate, promptFormat: 'chat', chatTemplate: 'llama3', maxNewTokens: 3 }));
    assert.equal((await w.job(ok.jobId)).ended.error, null);
  });

  it('an adapter the worker cannot read ends the job with the adapter field and the file named', async () => {
    const broken = join(tmp, 'broken-adapter');
    cpSync(adapterDir, broken, { recursive: true });
    writeFileSync(join(broken, 'adapter_config.json'), '{"r": 4, ');
    const { jobId } = await s.handle('generate.start', base({ adapterPath: broken }));
    const ev = await w.job(jobId);
    assert.equal(ev.ended.error?.field, 'adapterPath');
    assert.match(ev.ended.error?.message ?? '', /adapter_config\.json/);
    // The worker survives: the next job runs.
    const next = await s.handle('generate.start', base({ maxNewTokens: 2 }));
    assert.equal((await w.job(next.jobId)).ended.error, null);
  });
});

describe('playground and the cpu threads setting', () => {
  const s = services('threads');
  const w = watch(s);
  it('a changed setting restarts the idle generation worker, and answers stay the same', async () => {
    const first = await s.handle('generate.start', base({ maxNewTokens: 6 }));
    const a = finalOf(await w.job(first.jobId), 'base').text;
    await s.handle('settings.set', { cpuThreads: 1 });
    const second = await s.handle('generate.start', base({ maxNewTokens: 6 }));
    const ev = await w.job(second.jobId);
    assert.equal(ev.ended.error, null, ev.ended.error?.message);
    assert.equal(finalOf(ev, 'base').text, a);
  });
});
