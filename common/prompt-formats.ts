/** The Playground's prompt wrappings (requests, the engine's generate job, evaluation prompts). */
/**
 * How the prompt is wrapped before tokenizing, to match how the adapter was trained: 'raw' as typed (with the
 * tokenizer's BOS), 'alpaca' in the Stanford Alpaca prompt (Alpaca datasets), 'chat' as one user turn through the chat
 * template with the generation prompt (chat datasets).
 */
export const PROMPT_FORMATS = ['raw', 'alpaca', 'chat'] as const;
/** The engine's built-in chat templates (engine/data/chat-template.ts), for a model without its own. */
export const BUILTIN_CHAT_TEMPLATE_NAMES = ['llama3', 'chatml', 'mistral'] as const;
export type PromptFormat = (typeof PROMPT_FORMATS)[number];
