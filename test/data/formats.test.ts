/** Record formats: detection, normalisation, and errors that name the field. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RecordProblem } from '../../engine/data/errors.ts';
import { alpacaPrompt, detectFormat, normalizeRecord } from '../../engine/data/formats.ts';

function problem(fn: () => unknown, message: RegExp, field?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RecordProblem, String(e));
    assert.match(e.message, message);
    if (field !== undefined) assert.equal(e.field, field);
    return true;
  });
}

describe('format detection', () => {
  it('recognises each format by its fields', () => {
    assert.equal(detectFormat({ text: 'x' }), 'text');
    assert.equal(detectFormat({ prompt: 'p', completion: 'c' }), 'prompt-completion');
    assert.equal(detectFormat({ instruction: 'i', input: '', output: 'o' }), 'alpaca');
    assert.equal(detectFormat({ conversations: [] }), 'sharegpt');
    assert.equal(detectFormat({ messages: [] }), 'messages');
    assert.equal(detectFormat({ input_ids: [1] }), 'tokenized');
    assert.equal(detectFormat({ question: 'q', answer: 'a' }), null);
    assert.equal(detectFormat([1, 2]), null);
    assert.equal(detectFormat('text'), null);
  });
});

describe('normalisation', () => {
  it('renders Alpaca with the Stanford Alpaca prompt, with and without input', () => {
    const withInput = normalizeRecord({ instruction: 'Translate.', input: 'Bonjour', output: 'Hello' }, 'alpaca');
    assert.deepEqual(withInput, {
      kind: 'completion',
      prompt:
        'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nTranslate.\n\n### Input:\nBonjour\n\n### Response:\n',
      completion: 'Hello',
    });
    const noInput = normalizeRecord({ instruction: 'Say hi.', output: 'Hi' }, 'alpaca');
    assert.equal(noInput.kind === 'completion' && noInput.prompt, 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nSay hi.\n\n### Response:\n');
    assert.equal(alpacaPrompt('Do.', '', 'Be brief.'), 'Be brief.\n\n### Instruction:\nDo.\n\n### Response:\n');
  });

  it('maps ShareGPT speakers to roles and puts a top-level system prompt first', () => {
    const rec = normalizeRecord({ system: 'Be kind.', conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Hello', weight: 1 }] }, 'sharegpt');
    assert.deepEqual(rec, {
      kind: 'chat',
      messages: [
        { role: 'system', content: 'Be kind.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello', weight: 1 },
      ],
    });
    problem(() => normalizeRecord({ conversations: [{ from: 'narrator', value: 'x' }] }, 'sharegpt'), /conversations\[0\]\.from "narrator" is not a known speaker/, 'conversations');
  });

  it('keeps OpenAI messages with their extra keys, drops null values as transformers does, parses JSON text from CSV cells', () => {
    const rec = normalizeRecord({ messages: JSON.stringify([{ role: 'user', content: 'Q', name: null }, { role: 'assistant', content: 'A', name: 'bot' }]) }, 'messages');
    assert.deepEqual(rec, { kind: 'chat', messages: [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'A', name: 'bot' }] });
    problem(() => normalizeRecord({ messages: [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 42 }] }, 'messages'), /messages\[1\]\.content must be a string/, 'messages');
    problem(() => normalizeRecord({ messages: [] }, 'messages'), /empty conversation/, 'messages');
  });

  it('turns conversational prompt/completion (TRL) into one chat', () => {
    const rec = normalizeRecord({ prompt: [{ role: 'user', content: 'Q' }], completion: [{ role: 'assistant', content: 'A' }] }, 'prompt-completion');
    assert.deepEqual(rec, { kind: 'chat', messages: [{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'A' }] });
  });

  it('names the field that is missing or of the wrong type', () => {
    problem(() => normalizeRecord({ instruction: 'x', output: 3 }, 'alpaca'), /^field "output" must be a string, got number$/, 'output');
    problem(() => normalizeRecord({ prompt: 'x' }, 'prompt-completion'), /field "completion" is missing/, 'completion');
    problem(() => normalizeRecord({ body: 'x' }, 'text'), /field "text" is missing/, 'text');
    problem(() => normalizeRecord('just a string', 'text'), /must be an object/);
  });

  it('checks pre-tokenized ids and labels', () => {
    assert.deepEqual(normalizeRecord({ input_ids: '[1, 2, 3]', labels: [-100, 2, 3] }, 'tokenized'), { kind: 'tokens', inputIds: [1, 2, 3], labels: [-100, 2, 3] });
    assert.deepEqual(normalizeRecord({ input_ids: [5, 6] }, 'tokenized'), { kind: 'tokens', inputIds: [5, 6], labels: null });
    problem(() => normalizeRecord({ input_ids: [1, 2], labels: [1] }, 'tokenized'), /"labels" has 1 entries but "input_ids" has 2/, 'labels');
    problem(() => normalizeRecord({ input_ids: [1, -100] }, 'tokenized'), /input_ids\[1\] must be a whole number ≥ 0/, 'input_ids');
    problem(() => normalizeRecord({ input_ids: [1.5] }, 'tokenized'), /input_ids\[0\]/, 'input_ids');
  });
});
