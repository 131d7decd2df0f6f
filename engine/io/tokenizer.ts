/**
 * A model folder's tokenizer (tokenizer.json + tokenizer_config.json) through @huggingface/tokenizers, pure JS.
 * The chat template comes from chat_template.jinja when present (transformers 5 saves it there), else from
 * tokenizer_config.json `chat_template` (a string, or a list of {name, template} where "default" wins).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { Tokenizer } from '../model/types.ts';

export class TokenizerLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerLoadError';
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function readJson(path: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new TokenizerLoadError(`${path}: cannot be read as JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isObject(json)) throw new TokenizerLoadError(`${path}: must be a JSON object`);
  return json;
}

/** A special token in tokenizer_config.json is a string or an AddedToken object `{content, ...}`. */
function tokenString(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return null;
}

function chatTemplateOf(dir: string, cfg: Record<string, unknown>): string | null {
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return readFileSync(jinja, 'utf8');
  const t = cfg.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t.filter((x): x is { name: string; template: string } => isObject(x) && typeof x.name === 'string' && typeof x.template === 'string');
    return (named.find((x) => x.name === 'default') ?? named[0])?.template ?? null;
  }
  return null;
}

/**
 * Token ids must be dense: a vocab of N entries plus its added tokens uses ids below N + added. One id of 1e9 in a
 * damaged tokenizer.json made the tokenizer library build a billion-slot table (70 s and gigabytes, on the services'
 * thread), so every id is checked against that bound first.
 */
function checkTokenIds(json: Record<string, unknown>, label: string): void {
  const model = json.model;
  const added = Array.isArray(json.added_tokens) ? json.added_tokens : [];
  const vocab = isObject(model) ? model.vocab : undefined;
  // Unigram vocabs are [piece, score] lists: their ids are the positions, dense by construction.
  const entries = isObject(vocab) ? Object.entries(vocab) : [];
  const bound = entries.length + added.length;
  for (const [piece, id] of entries) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= bound) {
      throw new TokenizerLoadError(`${label}: model.vocab[${JSON.stringify(piece.slice(0, 40))}] must be a token id from 0 to ${bound - 1}, got ${JSON.stringify(id)}`);
    }
  }
  added.forEach((t: unknown, i) => {
    const id = isObject(t) ? t.id : undefined;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= Math.max(bound, 1)) {
      throw new TokenizerLoadError(`${label}: added_tokens[${i}].id must be a token id from 0 to ${bound - 1}, got ${JSON.stringify(id)}`);
    }
  });
}

/** The engine's Tokenizer over tokenizer.json / tokenizer_config.json contents already parsed. */
export function makeTokenizer(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>, chatTemplate: string | null, label = 'tokenizer.json'): Tokenizer {
  checkTokenIds(tokenizerJson, label);
  let tok: HfTokenizer;
  try {
    tok = new HfTokenizer(tokenizerJson, tokenizerConfig);
  } catch (e) {
    throw new TokenizerLoadError(`${label}: not a tokenizer this studio can load (${e instanceof Error ? e.message : String(e)})`);
  }
  const specialTokens: Record<string, string> = {};
  for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
    const s = tokenString(tokenizerConfig[key]);
    if (s !== null) specialTokens[key] = s;
  }
  const idOf = (key: string): number | null => {
    const s = specialTokens[key];
    if (s === undefined) return null;
    return tok.token_to_id(s) ?? null;
  };
  let vocabSize = 0;
  for (const id of tok.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);
  return {
    encode: (text, opts) => tok.encode(text, { add_special_tokens: opts?.addSpecialTokens ?? true }).ids,
    decode: (ids, opts) => tok.decode(ids, { skip_special_tokens: opts?.skipSpecialTokens ?? false }),
    vocabSize,
    bosTokenId: idOf('bos_token'),
    eosTokenId: idOf('eos_token'),
    padTokenId: idOf('pad_token'),
    chatTemplate,
    specialTokens,
  };
}

/** Loads the tokenizer of a model folder; null when the folder has no tokenizer.json. */
export async function loadTokenizer(modelDir: string): Promise<Tokenizer | null> {
  const tjPath = join(modelDir, 'tokenizer.json');
  if (!existsSync(tjPath)) return null;
  const tokenizerJson = readJson(tjPath);
  const tcPath = join(modelDir, 'tokenizer_config.json');
  const tokenizerConfig = existsSync(tcPath) ? readJson(tcPath) : {};
  return makeTokenizer(tokenizerJson, tokenizerConfig, chatTemplateOf(modelDir, tokenizerConfig), tjPath);
}
