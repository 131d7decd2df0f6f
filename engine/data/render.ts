import type { Tokenizer, TrainingExample } from '../model/types.ts';
import type { ChatRenderer } from './chat-template.ts';
import { RecordProblem } from './errors.ts';
import type { NormalizedRecord } from './formats.ts';
import { assistantSpans, tokenizeWithSpans, type Span } from './masking.ts';

/**
 * What the loss is computed on. 'completions': only completions and assistant turns (with their end-of-turn token);
 * 'all': every token; 'auto': completions for prompt/completion, Alpaca and chat data, everything for raw text.
 * Raw text has no completion, so it is always trained on whole; pre-tokenized data keeps its own labels unless 'all'.
 */
export type TrainOn = 'completions' | 'all' | 'auto';

export interface RenderContext {
  tokenizer: Tokenizer | null;
  trainOn: TrainOn;
  /** Chat template for chat records, created on first use so non-chat data never needs one. */
  chat: () => ChatRenderer;
}

/** A record as the model will read it: text with the character spans trained on, or ready token ids. */
export type Rendered = { kind: 'text'; text: string; spans: Span[]; addSpecialTokens: boolean } | { kind: 'tokens'; example: TrainingExample };

function withEos(text: string, tokenizer: Tokenizer | null): string {
  const eos = tokenizer?.specialTokens.eos_token;
  return eos && !text.endsWith(eos) ? text + eos : text;
}

export function renderRecord(rec: NormalizedRecord, ctx: RenderContext): Rendered {
  switch (rec.kind) {
    case 'text': {
      // EOS closes each document, as TRL does for language modelling, so the model learns where text ends.
      const text = withEos(rec.text, ctx.tokenizer);
      return { kind: 'text', text, spans: [[0, text.length]], addSpecialTokens: true };
    }
    case 'completion': {
      const text = withEos(rec.prompt + rec.completion, ctx.tokenizer);
      const from = ctx.trainOn === 'all' ? 0 : rec.prompt.length;
      if (from === text.length) throw new RecordProblem('the completion is empty: nothing to train on', 'completion');
      return { kind: 'text', text, spans: [[from, text.length]], addSpecialTokens: true };
    }
    case 'chat': {
      const renderer = ctx.chat();
      let text: string;
      try {
        text = renderer.render(rec.messages, false);
      } catch (err) {
        throw new RecordProblem(`the chat template refused this conversation: ${err instanceof Error ? err.message : String(err)}`, 'messages');
      }
      if (ctx.trainOn === 'all') return { kind: 'text', text, spans: [[0, text.length]], addSpecialTokens: false };
      if (!rec.messages.some((m) => m.role === 'assistant')) throw new RecordProblem('the conversation has no assistant message to train on', 'messages');
      const spans = assistantSpans(renderer, rec.messages, text, ctx.tokenizer);
      if (spans.length === 0) throw new RecordProblem('every assistant message is empty: nothing to train on', 'messages');
      // The template writes BOS itself; transformers tokenizes its output with add_special_tokens=False.
      return { kind: 'text', text, spans, addSpecialTokens: false };
    }
    case 'tokens': {
      const labels = ctx.trainOn === 'all' || rec.labels === null ? rec.inputIds.slice() : rec.labels;
      const vocab = ctx.tokenizer?.vocabSize;
      const outside = vocab === undefined ? undefined : rec.inputIds.find((id) => id >= vocab);
      if (outside !== undefined) throw new RecordProblem(`token id ${outside} is outside the vocabulary (size ${vocab})`, 'input_ids');
      return { kind: 'tokens', example: { inputIds: rec.inputIds, labels } };
    }
  }
}

/** Token ids and labels of a rendered record (the tokenizer is needed for everything but pre-tokenized data). */
export function tokenizeRendered(r: Rendered, tokenizer: Tokenizer | null): TrainingExample {
  if (r.kind === 'tokens') return r.example;
  if (!tokenizer) throw new Error('tokenizer required');
  return tokenizeWithSpans(tokenizer, r.text, r.spans, r.addSpecialTokens);
}
