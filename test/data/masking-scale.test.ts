/**
 * Assistant masks of long conversations (engine/data/masking.ts). The straightforward way — render every prefix of
 * the conversation with the generation prompt, and tokenize the text up to every span boundary — is quadratic: an
 * 800-turn chat took minutes and blocked the studio. The studio now renders a window and tokenizes from the nearest
 * special-token anchor; these tests hold it to the same spans and labels as that straightforward reference (written
 * out below, on real tokenizers and templates), and an 800-turn chat to a bound.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseChatTemplate, type ChatRenderer } from '../../engine/data/chat-template.ts';
import type { ChatMessage } from '../../engine/data/formats.ts';
import { assistantSpans, endOfTurnLength, tokenizeWithSpans, type Span } from '../../engine/data/masking.ts';
import { SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { loadTokenizer } from '../../engine/io/tokenizer.ts';
import { IGNORE_INDEX, type Tokenizer } from '../../engine/model/types.ts';
import { brownSentences, llama3Tokenizer, qwen3Tokenizer } from '../helpers/data-tokenizers.ts';

// --- the reference: whole-prefix rendering and whole-prefix tokenization -------------------------------------------

function referenceSpans(renderer: ChatRenderer, messages: readonly ChatMessage[], rendered: string, tokenizer: Tokenizer): Span[] {
  const spans: Span[] = [];
  let cursor = 0;
  const forms = (c: string): string[] => [...new Set([c, c.trim(), c.replace(/^\n+|\n+$/g, ''), c.trimEnd(), c.trimStart()])].filter((f) => f.length > 0);
  const find = (content: string, from: number): { at: number; length: number } | null => {
    let best: { at: number; length: number } | null = null;
    for (const f of forms(content)) {
      const at = rendered.indexOf(f, from);
      if (at !== -1 && (best === null || at < best.at || (at === best.at && f.length > best.length))) best = { at, length: f.length };
    }
    return best;
  };
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (m.role === 'system') continue;
    if (m.role !== 'assistant') {
      const hit = find(m.content, cursor);
      if (hit) cursor = hit.at + hit.length;
      continue;
    }
    let from = cursor;
    try {
      const partial = renderer.render(messages.slice(0, i), true);
      let k = 0;
      while (k < partial.length && k < rendered.length && partial[k] === rendered[k]) k++;
      from = Math.max(from, k);
    } catch {
      // as the studio: the cursor bounds the search
    }
    // Reasoning templates drop or rebuild a <think> block: then only the answer after </think> is there verbatim.
    const cut = m.content.lastIndexOf('</think>');
    const answer = cut === -1 ? '' : m.content.slice(cut + '</think>'.length).replace(/^\n+/, '');
    const hit = find(m.content, from) ?? (answer.trim() === '' ? null : find(answer, from));
    assert.ok(hit, `reference: assistant message ${i} not found`);
    let end = hit.at + hit.length;
    end += endOfTurnLength(rendered, end, tokenizer, renderer.specialTokens);
    // A reasoning block between the generation prompt and the answer is trained with it.
    const gap = rendered.slice(from, hit.at);
    const open = gap.indexOf('<think>');
    const start = open !== -1 && gap.slice(0, open).trim() === '' && gap.trimEnd().endsWith('</think>') ? from + open : hit.at;
    spans.push([start, end]);
    cursor = end;
  }
  return spans;
}

function referenceLabels(tokenizer: Tokenizer, text: string, spans: readonly Span[], addSpecialTokens: boolean): number[] {
  const ids = tokenizer.encode(text, { addSpecialTokens });
  const labels = ids.map(() => IGNORE_INDEX);
  const boundary = (b: number, side: 'start' | 'end'): number => {
    if (b <= 0) return 0;
    if (b >= text.length) return ids.length;
    const prefix = tokenizer.encode(text.slice(0, b), { addSpecialTokens });
    let k = 0;
    while (k < prefix.length && prefix[k] === ids[k]) k++;
    if (k === prefix.length) return k;
    return side === 'start' ? k : Math.min(k + 1, ids.length);
  };
  for (const [s, e] of spans) for (let t = boundary(s, 'start'); t < boundary(e, 'end'); t++) labels[t] = ids[t];
  return labels;
}

// --- conversations --------------------------------------------------------------------------------------------------

const SENTENCES = brownSentences(1000);

/** A conversation of `turns` messages from the Brown Corpus, user first; `system` adds a system message; with
 * `reasoning`, every other assistant message holds a <think> block. Padding varies so templates that trim matter. */
function conversation(offset: number, turns: number, opts: { system?: boolean; reasoning?: boolean } = {}): ChatMessage[] {
  const out: ChatMessage[] = opts.system ? [{ role: 'system', content: 'You answer in plain English.' }] : [];
  for (let i = 0; i < turns; i++) {
    const s = SENTENCES[(offset + i) % SENTENCES.length];
    const role = i % 2 === 0 ? 'user' : 'assistant';
    let content = i % 5 === 3 ? `\n${s} ` : s;
    if (role === 'assistant' && opts.reasoning && i % 4 === 1) content = `<think>\nWhat they ask: ${SENTENCES[(offset + i + 7) % SENTENCES.length]}\n</think>\n\n${s}`;
    out.push({ role, content });
  }
  return out;
}

async function cases(): Promise<{ name: string; tokenizer: Tokenizer; renderer: ChatRenderer; reasoning: boolean }[]> {
  const llama3 = await llama3Tokenizer();
  const qwen3 = await qwen3Tokenizer();
  const sample = await loadTokenizer(SAMPLE_MODEL_DIR);
  assert.ok(sample, 'the sample model has a tokenizer');
  return [
    { name: 'Llama 3 (its own template)', tokenizer: llama3, renderer: chooseChatTemplate(llama3), reasoning: false },
    { name: 'Qwen3 (its own template, reasoning blocks)', tokenizer: qwen3, renderer: chooseChatTemplate(qwen3), reasoning: true },
    { name: 'Qwen3 with the built-in ChatML', tokenizer: qwen3, renderer: chooseChatTemplate(qwen3, 'chatml'), reasoning: false },
    // <|im_start|> is plain text to Llama 3's vocabulary: no anchors, every boundary from the start.
    { name: 'Llama 3 vocabulary with ChatML', tokenizer: llama3, renderer: chooseChatTemplate(llama3, 'chatml'), reasoning: false },
    { name: 'Llama 3 vocabulary with the built-in Mistral template', tokenizer: llama3, renderer: chooseChatTemplate(llama3, 'mistral'), reasoning: false },
    { name: 'the sample model (SmolLM2 vocabulary, ChatML)', tokenizer: sample, renderer: chooseChatTemplate(sample), reasoning: false },
  ];
}

test('normal chats: the same spans and labels as the whole-prefix reference, on real tokenizers and templates', async () => {
  let compared = 0;
  for (const c of await cases()) {
    for (let n = 0; n < 8; n++) {
      const turns = 2 + (n % 6) * 2; // 2 … 12 messages, ending on an assistant turn
      const messages = conversation(n * 37, turns, { system: n % 3 === 0, reasoning: c.reasoning });
      const text = c.renderer.render(messages, false);
      const spans = assistantSpans(c.renderer, messages, text, c.tokenizer);
      assert.deepEqual(spans, referenceSpans(c.renderer, messages, text, c.tokenizer), `${c.name}, chat ${n}: spans`);
      const { inputIds, labels } = tokenizeWithSpans(c.tokenizer, text, spans, false);
      assert.deepEqual(inputIds, c.tokenizer.encode(text, { addSpecialTokens: false }), `${c.name}, chat ${n}: ids`);
      assert.deepEqual(labels, referenceLabels(c.tokenizer, text, spans, false), `${c.name}, chat ${n}: labels`);
      assert.ok(labels.some((l) => l !== IGNORE_INDEX), `${c.name}, chat ${n}: something is trained`);
      compared++;
    }
  }
  assert.equal(compared, 48);
});

test('spans that end inside a word, and text with BOS added, label as the reference does', async () => {
  const tokenizer = await llama3Tokenizer();
  const text = `${SENTENCES[3]}<|eot_id|>${SENTENCES[4]} and then${SENTENCES[5]}`;
  const cuts: Span[] = [
    [5, 17],
    [text.indexOf('<|eot_id|>') + 3, text.indexOf(' and then') + 5],
    [text.length - 9, text.length],
  ];
  for (const add of [false, true]) {
    assert.deepEqual(tokenizeWithSpans(tokenizer, text, cuts, add).labels, referenceLabels(tokenizer, text, cuts, add), `addSpecialTokens ${add}`);
  }
});

test('a 60-turn chat matches the reference; an 800-turn chat is masked in seconds, not minutes', async () => {
  for (const c of (await cases()).slice(0, 2)) {
    const messages = conversation(11, 60, { system: true, reasoning: c.reasoning });
    const text = c.renderer.render(messages, false);
    const spans = assistantSpans(c.renderer, messages, text, c.tokenizer);
    assert.deepEqual(spans, referenceSpans(c.renderer, messages, text, c.tokenizer), `${c.name}: spans`);
    assert.deepEqual(tokenizeWithSpans(c.tokenizer, text, spans, false).labels, referenceLabels(c.tokenizer, text, spans, false), `${c.name}: labels`);

    const long = conversation(0, 800, { reasoning: c.reasoning });
    const longText = c.renderer.render(long, false);
    const started = performance.now();
    const longSpans = assistantSpans(c.renderer, long, longText, c.tokenizer);
    const example = tokenizeWithSpans(c.tokenizer, longText, longSpans, false);
    const seconds = (performance.now() - started) / 1000;
    assert.equal(longSpans.length, 400);
    // The whole-prefix way took 111 s (Llama 3) and 158 s (Qwen3) here; the bound leaves room for a busy machine.
    assert.ok(seconds < 20, `${c.name}: 800 turns took ${seconds.toFixed(1)} s`);
    // Every assistant turn is trained, and nothing of the user turns is.
    const trained = example.labels.filter((l) => l !== IGNORE_INDEX).length;
    assert.ok(trained > 0 && trained < example.labels.length / 1.5, `${c.name}: ${trained} of ${example.labels.length} tokens trained`);
  }
});
