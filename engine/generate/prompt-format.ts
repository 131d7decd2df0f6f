/**
 * A playground prompt as the model should read it. An adapter answers best when its prompt is wrapped exactly as its
 * training examples were (engine/data/render.ts): Alpaca records in the Stanford Alpaca prompt with the tokenizer's
 * special tokens, chat records through the chat template (which writes BOS itself) with the generation prompt.
 */
import type { PromptFormat } from '../../common/protocol.ts';
import { chooseChatTemplate, type ChatRenderer } from '../data/chat-template.ts';
import { alpacaPrompt, type ChatMessage } from '../data/formats.ts';
import type { ModelConfig, Tokenizer } from '../model/types.ts';

export interface PromptInput {
  prompt: string;
  promptFormat: PromptFormat;
  system?: string;
  chatTemplate?: string;
  /** Chat only: earlier user and assistant turns, oldest first. */
  history?: readonly { role: 'user' | 'assistant'; content: string }[];
}

export interface FormattedPrompt {
  ids: number[];
  /** The ids decoded back, special tokens kept: what the model reads. */
  text: string;
  /** Token ids that end generation: the model's and tokenizer's EOS, and for chat the template's end of turn. */
  stopIds: number[];
}

/** Thrown for a prompt that cannot be formatted; `field` names the request field. */
export class PromptFormatError extends Error {
  readonly field: string;
  constructor(message: string, field: string) {
    super(message);
    this.name = 'PromptFormatError';
    this.field = field;
  }
}

/**
 * The token that closes an assistant turn in this template (<|eot_id|>, <|im_end|>, </s>…): rendered after a
 * sentinel answer, the first token of what follows it, when that token is a special one. A model fine-tuned on chat
 * data learns to emit it, so generation stops there rather than running on into a made-up next turn.
 */
export function endOfTurnId(renderer: ChatRenderer, tokenizer: Tokenizer): number | null {
  const sentinel = 'LORA_STUDIO_SENTINEL_ANSWER';
  let text: string;
  try {
    text = renderer.render([{ role: 'user', content: 'hi' }, { role: 'assistant', content: sentinel }], false);
  } catch {
    return null;
  }
  const at = text.lastIndexOf(sentinel);
  if (at < 0) return null;
  const after = text.slice(at + sentinel.length);
  const ids = tokenizer.encode(after, { addSpecialTokens: false });
  for (const id of ids) {
    const plain = tokenizer.decode([id], { skipSpecialTokens: true });
    if (plain === '') return id;
    if (plain.trim() !== '') return null;
  }
  return null;
}

function eosIds(config: ModelConfig, tokenizer: Tokenizer): Set<number> {
  const out = new Set<number>();
  const cfgEos = config.eosTokenId;
  for (const id of Array.isArray(cfgEos) ? cfgEos : cfgEos === null ? [] : [cfgEos]) out.add(id);
  if (tokenizer.eosTokenId !== null) out.add(tokenizer.eosTokenId);
  return out;
}

export function formatPrompt(tokenizer: Tokenizer, config: ModelConfig, input: PromptInput): FormattedPrompt {
  if (input.prompt.trim() === '') throw new PromptFormatError('the prompt is empty; type what the model should answer', 'prompt');
  const stop = eosIds(config, tokenizer);
  const history = input.history ?? [];
  if (history.length > 0 && input.promptFormat !== 'chat') throw new PromptFormatError('a conversation history needs the chat prompt format', 'history');
  history.forEach((t, i) => {
    if (t.role !== (i % 2 === 0 ? 'user' : 'assistant')) throw new PromptFormatError(`history turn ${i} must be a${i % 2 === 0 ? ' user' : 'n assistant'} turn: turns alternate, starting with the user`, `history.${i}.role`);
  });
  if (history.length % 2 !== 0) throw new PromptFormatError('the history must end with an assistant turn (the prompt is the next user turn)', 'history');
  let ids: number[];
  switch (input.promptFormat) {
    case 'raw':
      ids = tokenizer.encode(input.prompt);
      break;
    case 'alpaca':
      ids = tokenizer.encode(alpacaPrompt(input.prompt, '', input.system));
      break;
    case 'chat': {
      let renderer: ChatRenderer;
      try {
        renderer = chooseChatTemplate(tokenizer, input.chatTemplate);
      } catch (e) {
        throw new PromptFormatError(e instanceof Error ? e.message : String(e), input.chatTemplate ? 'chatTemplate' : 'promptFormat');
      }
      const messages: ChatMessage[] = [];
      if (input.system) messages.push({ role: 'system', content: input.system });
      for (const t of history) messages.push({ role: t.role, content: t.content });
      messages.push({ role: 'user', content: input.prompt });
      let text: string;
      try {
        text = renderer.render(messages, true);
      } catch (e) {
        throw new PromptFormatError(`the chat template refused the prompt: ${e instanceof Error ? e.message : String(e)}`, 'promptFormat');
      }
      ids = tokenizer.encode(text, { addSpecialTokens: false });
      const eot = endOfTurnId(renderer, tokenizer);
      if (eot !== null) stop.add(eot);
      break;
    }
  }
  if (ids.length === 0) throw new PromptFormatError('the prompt encodes to no tokens', 'prompt');
  return { ids, text: tokenizer.decode(ids, { skipSpecialTokens: false }), stopIds: [...stop] };
}
