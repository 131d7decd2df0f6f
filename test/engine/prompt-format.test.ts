/**
 * The playground wraps a prompt exactly as training wrapped the examples an adapter learned from: for every format,
 * the prompt's ids are the untrained prefix of the training example built from the same record by the dataset
 * pipeline (engine/data/render.ts), and generation stops at the token that ended trained assistant turns.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BUILTIN_CHAT_TEMPLATE_NAMES } from '../../common/protocol.ts';
import { BUILTIN_TEMPLATE_NAMES, chooseChatTemplate } from '../../engine/data/chat-template.ts';
import { normalizeRecord } from '../../engine/data/formats.ts';
import { renderRecord, tokenizeRendered } from '../../engine/data/render.ts';
import { endOfTurnId, formatPrompt, PromptFormatError } from '../../engine/generate/prompt-format.ts';
import { readHfConfig } from '../../engine/io/hf-config.ts';
import { IGNORE_INDEX, type Tokenizer, type TrainingExample } from '../../engine/model/types.ts';
import { brownSentences, llama3Tokenizer, llama3WithTemplate, qwen3Tokenizer } from '../helpers/data-tokenizers.ts';
import { repoRoot } from '../helpers/python.ts';

const config = readHfConfig(join(repoRoot, 'assets/sample-model'));

function trainingExample(tokenizer: Tokenizer, record: unknown, format: 'alpaca' | 'messages' | 'prompt-completion'): TrainingExample {
  const rec = normalizeRecord(record, format);
  return tokenizeRendered(renderRecord(rec, { tokenizer, trainOn: 'completions', chat: () => chooseChatTemplate(tokenizer) }), tokenizer);
}

/** The ids before the first trained label: what the model saw before it was asked to answer. */
function untrainedPrefix(ex: TrainingExample): number[] {
  const first = ex.labels.findIndex((l) => l !== IGNORE_INDEX);
  assert.ok(first > 0, 'the example has a trained part after a prompt');
  return ex.inputIds.slice(0, first);
}

function singleId(tokenizer: Tokenizer, special: string): number {
  const ids = tokenizer.encode(special, { addSpecialTokens: false });
  assert.equal(ids.length, 1, `${special} is one token`);
  return ids[0];
}

describe('playground prompt formats match training', () => {
  const sentences = brownSentences(12);

  it('alpaca: the Stanford Alpaca prompt, as the dataset pipeline renders an Alpaca record', async () => {
    const tok = await llama3Tokenizer();
    for (const [i, instruction] of sentences.slice(0, 6).entries()) {
      const ex = trainingExample(tok, { instruction, input: '', output: sentences[i + 6] }, 'alpaca');
      const p = formatPrompt(tok, config, { prompt: instruction, promptFormat: 'alpaca' });
      assert.deepEqual(p.ids, untrainedPrefix(ex), `record ${i}`);
      assert.ok(p.text.includes('Below is an instruction'), p.text.slice(0, 60));
      assert.ok(p.text.endsWith('### Response:\n'));
    }
  });

  it('alpaca with a system text: it replaces the preamble, as a record\'s "system" field does', async () => {
    const tok = await llama3Tokenizer();
    const ex = trainingExample(tok, { instruction: sentences[0], input: '', output: sentences[1], system: 'You answer tersely.' }, 'alpaca');
    const p = formatPrompt(tok, config, { prompt: sentences[0], promptFormat: 'alpaca', system: 'You answer tersely.' });
    assert.deepEqual(p.ids, untrainedPrefix(ex));
  });

  it('chat (Llama 3 template): one user turn plus the generation prompt is the prefix of a trained conversation', async () => {
    const tok = await llama3Tokenizer();
    for (const [i, question] of sentences.slice(0, 4).entries()) {
      const ex = trainingExample(tok, { messages: [{ role: 'user', content: question }, { role: 'assistant', content: sentences[i + 4] }] }, 'messages');
      const p = formatPrompt(tok, config, { prompt: question, promptFormat: 'chat' });
      assert.deepEqual(p.ids, untrainedPrefix(ex), `conversation ${i}`);
    }
    const sys = trainingExample(tok, { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: sentences[0] }, { role: 'assistant', content: sentences[1] }] }, 'messages');
    assert.deepEqual(formatPrompt(tok, config, { prompt: sentences[0], promptFormat: 'chat', system: 'Be brief.' }).ids, untrainedPrefix(sys));
  });

  it('chat with history: the earlier turns and the new user turn are the prefix a multi-turn example trains the last answer after', async () => {
    for (const tok of [await llama3Tokenizer(), await qwen3Tokenizer()]) {
      const [u1, a1, u2, a2] = sentences.slice(0, 4);
      const ex = trainingExample(tok, { messages: [{ role: 'user', content: u1 }, { role: 'assistant', content: a1 }, { role: 'user', content: u2 }, { role: 'assistant', content: a2 }] }, 'messages');
      // The ids before the last trained run: everything up to where the second answer starts.
      let lastStart = -1;
      for (let j = 0; j < ex.labels.length; j++) if (ex.labels[j] !== IGNORE_INDEX && (j === 0 || ex.labels[j - 1] === IGNORE_INDEX)) lastStart = j;
      const p = formatPrompt(tok, config, { prompt: u2, promptFormat: 'chat', history: [{ role: 'user', content: u1 }, { role: 'assistant', content: a1 }] });
      assert.deepEqual(p.ids, ex.inputIds.slice(0, lastStart));
    }
  });

  it('history is refused outside the chat format, and when turns do not alternate', async () => {
    const tok = await llama3Tokenizer();
    const h = [{ role: 'user' as const, content: 'a' }, { role: 'assistant' as const, content: 'b' }];
    assert.throws(() => formatPrompt(tok, config, { prompt: 'c', promptFormat: 'alpaca', history: h }), (e: unknown) => e instanceof PromptFormatError && e.field === 'history');
    assert.throws(() => formatPrompt(tok, config, { prompt: 'c', promptFormat: 'chat', history: [h[1], h[0]] }), (e: unknown) => e instanceof PromptFormatError && e.field === 'history.0.role');
    assert.throws(() => formatPrompt(tok, config, { prompt: 'c', promptFormat: 'chat', history: [h[0]] }), (e: unknown) => e instanceof PromptFormatError && e.field === 'history');
  });

  it('chat stops at the end-of-turn token the template closes assistant turns with', async () => {
    const llama = await llama3Tokenizer();
    const eot = singleId(llama, '<|eot_id|>');
    assert.equal(endOfTurnId(chooseChatTemplate(llama), llama), eot);
    assert.ok(formatPrompt(llama, config, { prompt: 'hi', promptFormat: 'chat' }).stopIds.includes(eot));
    // The trained conversation ends its assistant turn with exactly that token, and it is trained on.
    const ex = trainingExample(llama, { messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] }, 'messages');
    const trained = ex.inputIds.filter((_, j) => ex.labels[j] !== IGNORE_INDEX);
    assert.equal(trained.at(-1), eot);

    const qwen = await qwen3Tokenizer();
    assert.equal(endOfTurnId(chooseChatTemplate(qwen), qwen), singleId(qwen, '<|im_end|>'));
    // A built-in template over the Llama 3 vocabulary: chatml's <|im_end|> is no token there, so nothing is added.
    assert.equal(endOfTurnId(chooseChatTemplate(llama, 'chatml'), llama), null);
  });

  it('raw: the text as typed, with the special tokens the tokenizer adds (as prompt/completion records)', async () => {
    const tok = await llama3Tokenizer();
    const ex = trainingExample(tok, { prompt: `${sentences[2]}\n`, completion: sentences[3] }, 'prompt-completion');
    const p = formatPrompt(tok, config, { prompt: `${sentences[2]}\n`, promptFormat: 'raw' });
    assert.deepEqual(p.ids, untrainedPrefix(ex));
    assert.deepEqual(p.ids, tok.encode(`${sentences[2]}\n`));
  });

  it('stop ids hold the model config eos and the tokenizer eos', async () => {
    const tok = await llama3Tokenizer();
    const p = formatPrompt(tok, { ...config, eosTokenId: [7, 9] }, { prompt: 'x', promptFormat: 'raw' });
    assert.ok([7, 9].every((id) => p.stopIds.includes(id)));
    if (tok.eosTokenId !== null) assert.ok(p.stopIds.includes(tok.eosTokenId));
  });

  it('the protocol lists the engine\'s built-in chat templates (the playground offers them)', () => {
    assert.deepEqual([...BUILTIN_CHAT_TEMPLATE_NAMES].sort(), [...BUILTIN_TEMPLATE_NAMES].sort());
  });

  it('refuses an empty prompt and chat without a template, naming the field', async () => {
    const tok = await llama3Tokenizer();
    assert.throws(() => formatPrompt(tok, config, { prompt: '  \n', promptFormat: 'raw' }), (e: unknown) => e instanceof PromptFormatError && e.field === 'prompt');
    const base = await llama3WithTemplate(null);
    assert.throws(
      () => formatPrompt(base, config, { prompt: 'hi', promptFormat: 'chat' }),
      (e: unknown) => e instanceof PromptFormatError && e.field === 'promptFormat' && /no chat template/.test(e.message),
    );
    assert.throws(() => formatPrompt(base, config, { prompt: 'hi', promptFormat: 'chat', chatTemplate: 'nope' }), (e: unknown) => e instanceof PromptFormatError && e.field === 'chatTemplate');
    // A built-in template makes chat possible for a base model.
    assert.ok(formatPrompt(base, config, { prompt: 'hi', promptFormat: 'chat', chatTemplate: 'llama3' }).ids.length > 3);
  });
});
