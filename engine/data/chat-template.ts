import { Template } from '@huggingface/jinja';
import type { Tokenizer } from '../model/types.ts';
import type { ChatMessage } from './formats.ts';

/** A chat template that cannot be used: missing, unknown built-in name, or not valid Jinja. */
export class ChatTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChatTemplateError';
  }
}

interface BuiltinTemplate {
  description: string;
  template: string;
  /** Used when the model's tokenizer does not name these tokens itself. */
  specialTokens: Record<string, string>;
}

/**
 * Templates for models whose tokenizer_config.json has none (base models). Each is the family's published instruct
 * format, written with `trim_blocks`/`lstrip_blocks` semantics like every HF template.
 */
export const BUILTIN_CHAT_TEMPLATES = {
  llama3: {
    description: 'Llama 3 instruct (<|start_header_id|>role<|end_header_id|> … <|eot_id|>)',
    template:
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
    specialTokens: { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>' },
  },
  chatml: {
    description: 'ChatML, as Qwen uses (<|im_start|>role … <|im_end|>)',
    template:
      "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    specialTokens: { eos_token: '<|im_end|>' },
  },
  mistral: {
    description: 'Mistral instruct ([INST] … [/INST] answer</s>; a system message joins the first user turn)',
    template: [
      "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}",
      '{%- else %}{%- set loop_messages = messages %}{%- endif %}',
      '{{- bos_token }}',
      '{%- for message in loop_messages %}',
      "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif %}",
      "{%- if message['role'] == 'user' %}",
      "{%- if loop.first and system_message is defined %}{{- '[INST] ' + system_message + '\n\n' + message['content'] + ' [/INST]' }}",
      "{%- else %}{{- '[INST] ' + message['content'] + ' [/INST]' }}{%- endif %}",
      "{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] + eos_token }}",
      "{%- else %}{{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}",
      '{%- endif %}',
      '{%- endfor %}',
    ].join('\n'),
    specialTokens: { bos_token: '<s>', eos_token: '</s>' },
  },
} as const satisfies Record<string, BuiltinTemplate>;

export type BuiltinTemplateName = keyof typeof BUILTIN_CHAT_TEMPLATES;
export const BUILTIN_TEMPLATE_NAMES = Object.keys(BUILTIN_CHAT_TEMPLATES) as BuiltinTemplateName[];

function describeChoices(): string {
  return BUILTIN_TEMPLATE_NAMES.map((n) => `${n} — ${BUILTIN_CHAT_TEMPLATES[n].description}`).join('; ');
}

export function isBuiltinTemplateName(name: string): name is BuiltinTemplateName {
  return Object.hasOwn(BUILTIN_CHAT_TEMPLATES, name);
}

/** Renders conversations the way transformers' `apply_chat_template(..., tokenize=False)` does. */
export class ChatRenderer {
  /** 'model' for the model's own template, otherwise the built-in's name. */
  readonly name: string;
  readonly specialTokens: Readonly<Record<string, string>>;
  private readonly compiled: Template;

  constructor(name: string, source: string, specialTokens: Record<string, string>) {
    this.name = name;
    this.specialTokens = specialTokens;
    try {
      // @huggingface/jinja compiles with trim_blocks + lstrip_blocks, as transformers' sandboxed environment does.
      this.compiled = new Template(source);
    } catch (err) {
      throw new ChatTemplateError(`the ${name === 'model' ? "model's" : name} chat template is not valid Jinja (${err instanceof Error ? err.message : String(err)})`);
    }
  }

  render(messages: readonly ChatMessage[], addGenerationPrompt = false): string {
    // transformers passes the named special tokens, tools/documents (None when absent) and add_generation_prompt;
    // raise_exception is a global of the Jinja environment and surfaces here as a thrown Error.
    return this.compiled.render({
      ...this.specialTokens,
      messages: messages.map((m) => ({ ...m })),
      tools: null,
      documents: null,
      add_generation_prompt: addGenerationPrompt,
    });
  }
}

/**
 * The template a chat dataset is rendered with: a built-in when `override` names one, else the model's own.
 * A model without a template and no override is refused with the built-in choices named.
 */
export function chooseChatTemplate(tokenizer: Tokenizer | null, override?: string): ChatRenderer {
  const modelTokens = tokenizer?.specialTokens ?? {};
  if (override !== undefined && override !== '' && override !== 'model') {
    if (!isBuiltinTemplateName(override)) {
      throw new ChatTemplateError(`unknown built-in chat template "${override}": choose one of ${BUILTIN_TEMPLATE_NAMES.join(', ')}`);
    }
    const builtin = BUILTIN_CHAT_TEMPLATES[override];
    return new ChatRenderer(override, builtin.template, { ...builtin.specialTokens, ...modelTokens });
  }
  if (tokenizer === null) {
    throw new ChatTemplateError(`a chat dataset needs a chat template: give a model, or choose a built-in template (${describeChoices()})`);
  }
  if (tokenizer.chatTemplate === null || tokenizer.chatTemplate.trim() === '') {
    throw new ChatTemplateError(
      `this is a chat dataset but the model has no chat template (no "chat_template" in tokenizer_config.json); choose a built-in template: ${describeChoices()}`,
    );
  }
  return new ChatRenderer('model', tokenizer.chatTemplate, { ...modelTokens });
}
