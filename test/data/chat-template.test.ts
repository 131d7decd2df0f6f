/**
 * Chat rendering and loss masking against transformers: the rendered text must equal apply_chat_template(...,
 * tokenize=False) for the same tokenizer files, the ids must equal the tokenizer's, and the trained positions must
 * equal transformers' assistant mask (return_assistant_tokens_mask over a {% generation %} copy of each template).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_CHAT_TEMPLATES, ChatRenderer, chooseChatTemplate } from '../../engine/data/chat-template.ts';
import type { ChatMessage } from '../../engine/data/formats.ts';
import { prepareDataset } from '../../engine/data/prepare.ts';
import { renderRecord, tokenizeRendered } from '../../engine/data/render.ts';
import { IGNORE_INDEX, type Tokenizer } from '../../engine/model/types.ts';
import { brownSentences, LLAMA3_TOKENIZER_DIR, llama3Tokenizer, llama3WithTemplate, QWEN3_TOKENIZER_DIR, qwen3Tokenizer } from '../helpers/data-tokenizers.ts';
import { runPython } from '../helpers/python.ts';

// {% generation %} copies of the templates: same output, with the trained part tagged for transformers.
const LLAMA3_MODEL_MASK =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set header = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' %}{% if loop.index0 == 0 %}{% set header = bos_token + header %}{% endif %}{% if message['role'] == 'assistant' %}{{ header }}{% generation %}{{ message['content'] | trim + '<|eot_id|>' }}{% endgeneration %}{% else %}{{ header + message['content'] | trim + '<|eot_id|>' }}{% endif %}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}";
const LLAMA3_BUILTIN_MASK = LLAMA3_MODEL_MASK.replace(
  "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}",
  "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
);
const CHATML_MASK =
  "{% for message in messages %}{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}{% else %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
const MISTRAL_MASK = BUILTIN_CHAT_TEMPLATES.mistral.template.replace(
  "{{- ' ' + message['content'] + eos_token }}",
  "{{- ' ' }}{%- generation %}{{- message['content'] + eos_token }}{%- endgeneration %}",
);
// A Qwen3-like template: a namespace, loop bookkeeping, and an empty reasoning block before the final answers.
const REASONING = [
  '{%- set ns = namespace(last_user=-1) %}',
  "{%- for m in messages %}{%- if m['role'] == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}{%- endfor %}",
  '{%- for m in messages %}',
  "{%- if m['role'] == 'assistant' %}",
  "{{- '<|im_start|>assistant\\n' }}",
  "{%- if loop.index0 > ns.last_user %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}",
  "{{- m['content'] | trim + '<|im_end|>\\n' }}",
  '{%- else %}',
  "{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}",
  '{%- endif %}',
  '{%- endfor %}',
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
].join('\n');
// The reasoning block after the last user turn is written by the model at inference, so it is marked with the answer.
const REASONING_MASK = REASONING.replace(
  "{%- if loop.index0 > ns.last_user %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}\n{{- m['content'] | trim + '<|im_end|>\\n' }}",
  "{%- generation %}{%- if loop.index0 > ns.last_user %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{{- m['content'] | trim + '<|im_end|>' }}{%- endgeneration %}{{- '\\n' }}",
);
assert.notEqual(REASONING_MASK, REASONING);

/** A {% generation %} copy of Qwen3's own template: what the model writes after `<|im_start|>assistant\n` (a reasoning block after the last user turn, the answer) and its <|im_end|>. */
function qwen3MaskTemplate(): string {
  const config = JSON.parse(readFileSync(join(QWEN3_TOKENIZER_DIR, 'tokenizer_config.json'), 'utf8')) as { chat_template: string };
  let t = config.chat_template;
  const swap = (from: string, to: string, count: number): void => {
    assert.equal(t.split(from).length - 1, count, `Qwen3 template no longer contains ${JSON.stringify(from)}`);
    t = t.replaceAll(from, to);
  };
  const answer = (content: string): string => `{%- generation %}{{- ${content} + '<|im_end|>' }}{%- endgeneration %}`;
  // After the last user turn the model writes the reasoning block itself (empty or not), so it is trained too.
  swap(
    "{{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}",
    `{{- '<|im_start|>' + message.role + '\\n' }}${answer("'<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n')")}`,
    1,
  );
  swap("{{- '<|im_start|>' + message.role + '\\n' + content }}", `{{- '<|im_start|>' + message.role + '\\n' }}${answer('content')}`, 2);
  // No tool calls in these conversations, so <|im_end|> can move inside the generation block above.
  swap("{%- endif %}\n        {{- '<|im_end|>\\n' }}\n    {%- elif message.role == \"tool\" %}", "{%- endif %}\n        {{- '\\n' }}\n    {%- elif message.role == \"tool\" %}", 1);
  return t;
}

interface Reference {
  text: string | null;
  ids: number[] | null;
  assistant_masks: number[] | null;
  error: string | null;
}

interface Case {
  name: string;
  /** 'model' = the tokenizer's own template; else a built-in name or a template string. */
  template: string;
  messages: ChatMessage[];
  addGenerationPrompt?: boolean;
  maskTemplate?: string;
  /** Text the reference must contain, so the case covers what it is named for. */
  renders?: string;
}

const s = brownSentences(12);
const conversation: ChatMessage[] = [
  { role: 'system', content: 'You summarise newspaper reports from 1961.' },
  { role: 'user', content: s[0] },
  { role: 'assistant', content: s[1] },
  { role: 'user', content: `  ${s[2]}\n` },
  { role: 'assistant', content: `${s[3]} ${s[4]}` },
];
const noSystem = conversation.slice(1);

const llama3Cases: Case[] = [
  { name: "model's own template (Llama 3)", template: 'model', messages: conversation, maskTemplate: LLAMA3_MODEL_MASK },
  { name: "model's own template, generation prompt", template: 'model', messages: conversation.slice(0, 4), addGenerationPrompt: true },
  { name: 'built-in llama3', template: 'llama3', messages: conversation, maskTemplate: LLAMA3_BUILTIN_MASK },
  { name: 'built-in llama3, generation prompt', template: 'llama3', messages: conversation.slice(0, 4), addGenerationPrompt: true },
  { name: 'built-in chatml', template: 'chatml', messages: conversation, maskTemplate: CHATML_MASK },
  { name: 'built-in chatml, generation prompt', template: 'chatml', messages: noSystem.slice(0, 3), addGenerationPrompt: true },
  { name: 'built-in mistral with a system prompt', template: 'mistral', messages: conversation, maskTemplate: MISTRAL_MASK },
  { name: 'built-in mistral without one', template: 'mistral', messages: noSystem, maskTemplate: MISTRAL_MASK },
  { name: 'reasoning template', template: REASONING, messages: conversation, maskTemplate: REASONING_MASK },
  { name: 'mistral refuses non-alternating roles', template: 'mistral', messages: [noSystem[0], noSystem[2]] },
];

// Qwen3's template has no BOS, writes an empty <think> block before the answer after the last user turn, and
// takes the system prompt only as the first message.
const QWEN3_MASK = qwen3MaskTemplate();
// Reasoning written into assistant content: Qwen3 keeps it only after the last user turn and drops it before.
const withReasoning: ChatMessage[] = [
  { role: 'system', content: conversation[0].content },
  { role: 'user', content: s[5] },
  { role: 'assistant', content: `<think>\n${s[6]}\n</think>\n\n${s[7]}` },
  { role: 'user', content: s[8] },
  { role: 'assistant', content: `<think>${s[9]}</think>${s[10]}` },
];
const qwen3Cases: Case[] = [
  { name: "model's own template (Qwen3) with a system prompt", template: 'model', messages: conversation, maskTemplate: QWEN3_MASK, renders: '<think>\n\n</think>\n\n' },
  { name: "model's own template (Qwen3) without one", template: 'model', messages: noSystem, maskTemplate: QWEN3_MASK },
  { name: "model's own template (Qwen3), one turn", template: 'model', messages: noSystem.slice(0, 2), maskTemplate: QWEN3_MASK },
  { name: "model's own template (Qwen3), generation prompt", template: 'model', messages: conversation.slice(0, 4), addGenerationPrompt: true },
  { name: 'built-in chatml on the Qwen3 vocabulary', template: 'chatml', messages: conversation, maskTemplate: CHATML_MASK },
  { name: "model's own template (Qwen3), reasoning in earlier and final turns", template: 'model', messages: withReasoning, maskTemplate: QWEN3_MASK, renders: `<think>\n${s[9]}\n</think>\n\n${s[10]}<|im_end|>` },
  { name: "model's own template (Qwen3), reasoning only in the final turn", template: 'model', messages: [...noSystem.slice(0, 3), withReasoning[4]], maskTemplate: QWEN3_MASK, renders: `<think>\n${s[9]}\n</think>` },
  { name: "model's own template (Qwen3), reasoning only in an earlier turn", template: 'model', messages: [...withReasoning.slice(0, 4), noSystem[3]], maskTemplate: QWEN3_MASK },
];

interface TokenizerSuite {
  label: string;
  dir: string;
  load: () => Promise<Tokenizer>;
  cases: Case[];
  /** The end-of-turn token that closes each trained assistant turn, for templates ('model' or built-in). */
  endOfTurn: Record<string, string>;
}

const suites: TokenizerSuite[] = [
  { label: 'Llama 3', dir: LLAMA3_TOKENIZER_DIR, load: llama3Tokenizer, cases: llama3Cases, endOfTurn: { model: '<|eot_id|>', llama3: '<|eot_id|>' } },
  { label: 'Qwen3', dir: QWEN3_TOKENIZER_DIR, load: qwen3Tokenizer, cases: qwen3Cases, endOfTurn: { model: '<|im_end|>', chatml: '<|im_end|>' } },
];

function templateSource(c: Case, tokenizer: Tokenizer): string | null {
  if (c.template === 'model') return null;
  if (c.template in BUILTIN_CHAT_TEMPLATES) return BUILTIN_CHAT_TEMPLATES[c.template as keyof typeof BUILTIN_CHAT_TEMPLATES].template;
  void tokenizer;
  return c.template;
}

function rendererFor(c: Case, tokenizer: Tokenizer): ChatRenderer {
  if (c.template === 'model' || c.template in BUILTIN_CHAT_TEMPLATES) return chooseChatTemplate(tokenizer, c.template === 'model' ? undefined : c.template);
  return new ChatRenderer('test', c.template, { ...tokenizer.specialTokens });
}

for (const suite of suites) describe(`chat templates and masks match transformers (${suite.label} tokenizer)`, () => {
  const cases = suite.cases;
  let tokenizer: Tokenizer;
  let refs: Reference[];
  let dir: string;

  before(async () => {
    tokenizer = await suite.load();
    dir = mkdtempSync(join(tmpdir(), 'data-chat-'));
    const spec = {
      tokenizer_dir: suite.dir,
      cases: cases.map((c) => ({
        messages: c.messages,
        add_generation_prompt: c.addGenerationPrompt ?? false,
        chat_template: templateSource(c, tokenizer),
        mask_template: c.maskTemplate ?? null,
      })),
    };
    writeFileSync(join(dir, 'cases.json'), JSON.stringify(spec));
    refs = JSON.parse(runPython('data_chat_template.py', [join(dir, 'cases.json')])) as Reference[];
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  cases.forEach((c, i) => {
    it(c.name, () => {
      const ref = refs[i];
      const renderer = rendererFor(c, tokenizer);
      if (ref.error !== null) {
        assert.throws(() => renderer.render(c.messages, c.addGenerationPrompt ?? false), /alternate/);
        assert.match(ref.error, /alternate/);
        return;
      }
      const text = renderer.render(c.messages, c.addGenerationPrompt ?? false);
      assert.equal(text, ref.text);
      if (c.renders !== undefined) assert.ok(text.includes(c.renders), `renders ${JSON.stringify(c.renders)}`);
      assert.deepEqual(tokenizer.encode(text, { addSpecialTokens: false }), ref.ids);
      if (!c.maskTemplate || ref.assistant_masks === null) return;

      const rendered = renderRecord({ kind: 'chat', messages: c.messages }, { tokenizer, trainOn: 'completions', chat: () => renderer });
      const ex = tokenizeRendered(rendered, tokenizer);
      assert.deepEqual(ex.inputIds, ref.ids);
      assert.deepEqual(
        ex.labels.map((l) => (l === IGNORE_INDEX ? 0 : 1)),
        ref.assistant_masks,
      );
      ex.labels.forEach((l, t) => {
        if (l !== IGNORE_INDEX) assert.equal(l, ex.inputIds[t]);
      });
    });
  });

  it('trained tokens decode to exactly the assistant contents, each closed by the end-of-turn token', () => {
    for (const [template, eot] of Object.entries(suite.endOfTurn)) {
      const renderer = chooseChatTemplate(tokenizer, template === 'model' ? undefined : template);
      const ex = tokenizeRendered(renderRecord({ kind: 'chat', messages: conversation }, { tokenizer, trainOn: 'completions', chat: () => renderer }), tokenizer);
      const runs: string[] = [];
      let t = 0;
      while (t < ex.labels.length) {
        if (ex.labels[t] === IGNORE_INDEX) {
          t++;
          continue;
        }
        const start = t;
        while (t < ex.labels.length && ex.labels[t] !== IGNORE_INDEX) t++;
        runs.push(tokenizer.decode(ex.inputIds.slice(start, t)));
      }
      // Qwen3 writes an (empty) reasoning block before the answer after the last user turn; the model writes it then.
      const assistants = conversation.filter((m) => m.role === 'assistant');
      const lastUser = conversation.map((m) => m.role).lastIndexOf('user');
      const thinks = (m: ChatMessage): boolean => template === 'model' && suite.label.includes('Qwen3') && conversation.indexOf(m) > lastUser;
      const expected = assistants.map((m) => `${thinks(m) ? '<think>\n\n</think>\n\n' : ''}${m.content.trim()}${eot}`);
      assert.deepEqual(runs, expected, template);
      const masked = ex.labels.filter((l) => l === IGNORE_INDEX).length;
      assert.ok(masked > 20, 'system and user turns are masked');
    }
  });

  it('prepareDataset on a messages JSONL gives the same ids and mask as transformers', async () => {
    const file = join(dir, 'chat.jsonl');
    writeFileSync(file, `${JSON.stringify({ messages: conversation })}\n`);
    const prepared = await prepareDataset({ path: file, format: 'auto', tokenizer, maxSeqLen: 4096, validationPercent: 0, seed: 1, badRecords: 'fail', trainOn: 'auto' });
    assert.equal(prepared.format, 'messages');
    assert.equal(prepared.train.length, 1);
    assert.deepEqual(prepared.train[0].inputIds, refs[0].ids);
    assert.deepEqual(prepared.train[0].labels.map((l) => (l === IGNORE_INDEX ? 0 : 1)), refs[0].assistant_masks);
  });
});

describe('chat datasets on a base model', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'data-chat-base-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a chat dataset with a model that has no template is refused, naming the built-in choices', async () => {
    const base = await llama3WithTemplate(null);
    const file = join(dir, 'chat-base.jsonl');
    writeFileSync(file, `${JSON.stringify({ messages: conversation })}\n`);
    const opts = { path: file, format: 'auto' as const, tokenizer: base, maxSeqLen: 512, validationPercent: 0, seed: 1, badRecords: 'skip' as const, trainOn: 'auto' as const };
    await assert.rejects(prepareDataset(opts), (err: Error) => {
      assert.match(err.message, /no chat template/);
      for (const name of ['llama3', 'chatml', 'mistral']) assert.ok(err.message.includes(name), name);
      return true;
    });
    const withBuiltin = await prepareDataset({ ...opts, chatTemplateOverride: 'chatml' });
    assert.equal(withBuiltin.chatTemplate, 'chatml');
    assert.equal(withBuiltin.train.length, 1);
    await assert.rejects(prepareDataset({ ...opts, chatTemplateOverride: 'vicuna' }), /unknown built-in chat template "vicuna"/);
  });
});

describe('Qwen3 reasoning in the final turn', () => {
  it('trains the same tokens whether the reasoning is written as Qwen3 renders it or inline', async () => {
    const tokenizer = await qwen3Tokenizer();
    const renderer = chooseChatTemplate(tokenizer);
    const [q, r, a] = brownSentences(3);
    const example = (content: string) =>
      tokenizeRendered(renderRecord({ kind: 'chat', messages: [{ role: 'user', content: q }, { role: 'assistant', content }] }, { tokenizer, trainOn: 'completions', chat: () => renderer }), tokenizer);
    const rendered = example(`<think>\n${r}\n</think>\n\n${a}`);
    const inline = example(`<think>${r}</think>${a}`);
    assert.deepEqual(inline.inputIds, rendered.inputIds);
    assert.deepEqual(inline.labels, rendered.labels);
    const trained = rendered.inputIds.filter((_, j) => rendered.labels[j] !== IGNORE_INDEX);
    assert.equal(tokenizer.decode(trained), `<think>\n${r}\n</think>\n\n${a}<|im_end|>`);
  });
});
