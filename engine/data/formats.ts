import type { DatasetFormat } from '../../common/protocol.ts';
import { RecordProblem } from './errors.ts';

export type RecordFormat = Exclude<DatasetFormat, 'auto'>;

/** A chat message as templates see it: role and content, plus any other keys the record carried (name, tool_calls…). */
export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

/** What every record format is reduced to before rendering. */
export type NormalizedRecord =
  | { kind: 'text'; text: string }
  | { kind: 'completion'; prompt: string; completion: string }
  | { kind: 'chat'; messages: ChatMessage[] }
  | { kind: 'tokens'; inputIds: number[]; labels: number[] | null };

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The record format a record's fields point to, or null when they fit none. */
export function detectFormat(value: unknown): RecordFormat | null {
  if (!isObject(value)) return null;
  if ('input_ids' in value) return 'tokenized';
  if ('messages' in value) return 'messages';
  if ('conversations' in value) return 'sharegpt';
  if ('instruction' in value && 'output' in value) return 'alpaca';
  if ('prompt' in value && 'completion' in value) return 'prompt-completion';
  if ('text' in value) return 'text';
  return null;
}

export function describeUndetected(value: unknown): string {
  const fields = isObject(value) ? Object.keys(value) : [];
  const what = isObject(value) ? `its fields (${fields.join(', ') || 'none'})` : `a ${Array.isArray(value) ? 'list' : typeof value === 'object' ? 'null' : typeof value}`;
  return `cannot tell the record format from ${what}: expected "text", "prompt" + "completion", "instruction" + "output" (Alpaca), "conversations" (ShareGPT), "messages", or "input_ids" (pre-tokenized)`;
}

// CSV cells are strings, so list-valued fields arrive as JSON text.
function maybeJson(v: unknown): unknown {
  if (typeof v === 'string' && /^\s*\[/.test(v)) {
    try {
      return JSON.parse(v) as unknown;
    } catch {
      return v;
    }
  }
  return v;
}

function str(rec: Obj, field: string, opts: { optional?: boolean } = {}): string {
  const v = rec[field];
  if (v === undefined || v === null) {
    if (opts.optional) return '';
    throw new RecordProblem(`field "${field}" is missing`, field);
  }
  if (typeof v !== 'string') throw new RecordProblem(`field "${field}" must be a string, got ${Array.isArray(v) ? 'a list' : typeof v}`, field);
  return v;
}

function tokenIds(v: unknown, field: string, allowIgnore: boolean): number[] {
  const list = maybeJson(v);
  if (!Array.isArray(list) && !ArrayBuffer.isView(list)) throw new RecordProblem(`field "${field}" must be a list of token ids`, field);
  const out = Array.from(list as ArrayLike<unknown>, (x, i) => {
    const n = typeof x === 'bigint' ? Number(x) : x;
    if (typeof n !== 'number' || !Number.isInteger(n) || (n < 0 && !(allowIgnore && n === -100))) {
      throw new RecordProblem(`${field}[${i}] must be a whole number${allowIgnore ? ' ≥ 0 or −100' : ' ≥ 0'}, got ${JSON.stringify(x)}`, field);
    }
    return n;
  });
  return out;
}

const SHAREGPT_ROLES: Record<string, string> = {
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
  model: 'assistant',
  chatgpt: 'assistant',
  bard: 'assistant',
  bing: 'assistant',
  function_call: 'assistant',
  system: 'system',
  tool: 'tool',
  function: 'tool',
  observation: 'tool',
  function_response: 'tool',
};

/** transformers drops keys whose value is None before rendering, because templates handle a missing key better. */
function withoutNulls(m: Obj): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(m)) if (v !== null && v !== undefined) out[k] = v;
  return out;
}

function messageList(value: unknown, field: string, sharegpt: boolean): ChatMessage[] {
  const list = maybeJson(value);
  if (!Array.isArray(list)) throw new RecordProblem(`field "${field}" must be a list of messages`, field);
  if (list.length === 0) throw new RecordProblem(`field "${field}" is an empty conversation`, field);
  return list.map((raw, i) => {
    const where = `${field}[${i}]`;
    if (!isObject(raw)) throw new RecordProblem(`${where} must be an object`, field);
    const m = withoutNulls(raw);
    if (sharegpt && 'from' in m) {
      const { from, value: text, ...rest } = m;
      if (typeof from !== 'string') throw new RecordProblem(`${where}.from must be a string`, field);
      const role = SHAREGPT_ROLES[from.toLowerCase()];
      if (!role) throw new RecordProblem(`${where}.from "${from}" is not a known speaker (human, gpt, system, tool…)`, field);
      if (typeof text !== 'string') throw new RecordProblem(`${where}.value must be a string`, field);
      return { ...rest, role, content: text };
    }
    const { role, content } = m;
    if (typeof role !== 'string' || role === '') throw new RecordProblem(`${where}.role must be a non-empty string`, field);
    if (typeof content !== 'string') throw new RecordProblem(`${where}.content must be a string`, field);
    return { ...m, role, content };
  });
}

function withSystem(rec: Obj, messages: ChatMessage[]): ChatMessage[] {
  const system = rec.system;
  if (system === undefined || system === null || system === '') return messages;
  if (typeof system !== 'string') throw new RecordProblem('field "system" must be a string', 'system');
  if (messages[0]?.role === 'system') return messages;
  return [{ role: 'system', content: system }, ...messages];
}

const ALPACA_WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.';
const ALPACA_NO_INPUT = 'Below is an instruction that describes a task. Write a response that appropriately completes the request.';

/**
 * The Stanford Alpaca prompt. Alpaca records are rendered with it, not with the model's chat template, so the same
 * file trains base and instruct models alike; a record's "system" field replaces the preamble.
 */
export function alpacaPrompt(instruction: string, input: string, system?: string): string {
  const preamble = system || (input ? ALPACA_WITH_INPUT : ALPACA_NO_INPUT);
  const inputPart = input ? `### Input:\n${input}\n\n` : '';
  return `${preamble}\n\n### Instruction:\n${instruction}\n\n${inputPart}### Response:\n`;
}

/** Checks a record against a format and reduces it; throws RecordProblem naming the field. */
export function normalizeRecord(value: unknown, format: RecordFormat): NormalizedRecord {
  if (!isObject(value)) throw new RecordProblem(`a record must be an object with fields, got ${Array.isArray(value) ? 'a list' : value === null ? 'null' : typeof value}`);
  switch (format) {
    case 'text':
      return { kind: 'text', text: str(value, 'text') };
    case 'prompt-completion': {
      const prompt = maybeJson(value.prompt);
      const completion = maybeJson(value.completion);
      // TRL's conversational prompt-completion: both sides are message lists.
      if (Array.isArray(prompt) || Array.isArray(completion)) {
        const p = messageList(prompt, 'prompt', false);
        const c = messageList(completion, 'completion', false);
        return { kind: 'chat', messages: withSystem(value, [...p, ...c]) };
      }
      return { kind: 'completion', prompt: str(value, 'prompt'), completion: str(value, 'completion') };
    }
    case 'alpaca': {
      const instruction = str(value, 'instruction');
      const input = str(value, 'input', { optional: true });
      const output = str(value, 'output');
      const system = str(value, 'system', { optional: true });
      return { kind: 'completion', prompt: alpacaPrompt(instruction, input, system), completion: output };
    }
    case 'sharegpt':
      if (!('conversations' in value)) throw new RecordProblem('field "conversations" is missing', 'conversations');
      return { kind: 'chat', messages: withSystem(value, messageList(value.conversations, 'conversations', true)) };
    case 'messages':
      if (!('messages' in value)) throw new RecordProblem('field "messages" is missing', 'messages');
      return { kind: 'chat', messages: withSystem(value, messageList(value.messages, 'messages', false)) };
    case 'tokenized': {
      if (!('input_ids' in value)) throw new RecordProblem('field "input_ids" is missing', 'input_ids');
      const inputIds = tokenIds(value.input_ids, 'input_ids', false);
      if (inputIds.length === 0) throw new RecordProblem('field "input_ids" is empty', 'input_ids');
      let labels: number[] | null = null;
      if (value.labels !== undefined && value.labels !== null) {
        labels = tokenIds(value.labels, 'labels', true);
        if (labels.length !== inputIds.length) throw new RecordProblem(`field "labels" has ${labels.length} entries but "input_ids" has ${inputIds.length}`, 'labels');
      }
      return { kind: 'tokens', inputIds, labels };
    }
  }
}
