/**
 * Derives a small but real byte-level BPE tokenizer from a large tiktoken-style one (Llama 3): keep the tokens with
 * id < keep, the merges whose two parts and result are all kept, and renumber the special tokens right after.
 *
 * Why this stays exact: in tiktoken-derived vocabularies the id is the merge rank, and a merged token always ranks
 * after its parts. So whenever the full tokenizer's output contains only ids < keep, every merge it applied was a
 * kept one and happened in the same order, and the truncated tokenizer gives the same ids. The first 256 ids are
 * the 256 byte symbols, so any text still encodes (in more, shorter pieces).
 */

export interface TruncatedTokenizer {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** special token string → new id */
  specialIds: Map<string, number>;
  /** Total ids (kept tokens + specials). */
  vocabSize: number;
}

/** GPT-2's byte → printable character map, which byte-level BPE vocabularies are written in. */
export function byteLevelAlphabet(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i])));
  return out;
}

/** Meta-Llama-3-8B-Instruct's template: the generation prompt only with add_generation_prompt. */
export const LLAMA3_CHAT_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export interface TruncateOptions {
  /** Keep ids 0 … keep−1. */
  keep: number;
  /** Special tokens to keep, in the order they get ids keep, keep+1, …; unknown ones are created. */
  specials: string[];
  /** Add `<|reserved_special_token_k|>` tokens until the total is a multiple of this. */
  padTo: number;
  bosToken: string;
  eosToken: string;
  padToken: string;
  chatTemplate: string;
  modelMaxLength: number;
}

/** Truncates a Llama-3-style tokenizer.json + tokenizer_config.json. */
export function truncateBpeTokenizer(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>, opts: TruncateOptions): TruncatedTokenizer {
  const model = tokenizerJson.model;
  if (!isObject(model) || model.type !== 'BPE' || !isObject(model.vocab) || !Array.isArray(model.merges)) {
    throw new Error('truncateBpeTokenizer: tokenizer.json must hold a BPE model with vocab and merges');
  }
  const byId: [string, number][] = [];
  for (const [tokenStr, id] of Object.entries(model.vocab)) {
    if (typeof id === 'number' && id < opts.keep) byId.push([tokenStr, id]);
  }
  byId.sort((a, b) => a[1] - b[1]);
  if (byId.length !== opts.keep || byId.some(([, id], i) => id !== i)) {
    throw new Error(`truncateBpeTokenizer: ids 0..${opts.keep - 1} are not all present in the vocabulary`);
  }
  // Object.fromEntries and a Set, not `in`: tokens such as "constructor" or "__proto__" are ordinary strings here.
  const vocab: Record<string, number> = Object.fromEntries(byId);
  const kept = new Set(byId.map(([tokenStr]) => tokenStr));
  for (const ch of byteLevelAlphabet()) {
    if (!kept.has(ch)) throw new Error(`truncateBpeTokenizer: byte symbol ${JSON.stringify(ch)} is not among the kept ids; every byte must stay encodable`);
  }
  const merges = (model.merges as unknown[]).filter((m) => {
    const parts = typeof m === 'string' ? m.split(' ') : Array.isArray(m) ? m : [];
    if (parts.length !== 2 || typeof parts[0] !== 'string' || typeof parts[1] !== 'string') return false;
    return kept.has(parts[0]) && kept.has(parts[1]) && kept.has(parts[0] + parts[1]);
  });

  const originals = new Map<string, Record<string, unknown>>();
  for (const t of Array.isArray(tokenizerJson.added_tokens) ? tokenizerJson.added_tokens : []) {
    if (isObject(t) && typeof t.content === 'string') originals.set(t.content, t);
  }
  const specials = [...opts.specials];
  for (let k = 0; (opts.keep + specials.length) % opts.padTo !== 0; k++) {
    const name = `<|reserved_special_token_${k}|>`;
    if (!specials.includes(name)) specials.push(name);
  }
  const specialIds = new Map<string, number>();
  const addedTokens = specials.map((content, i) => {
    const id = opts.keep + i;
    specialIds.set(content, id);
    const o = originals.get(content);
    return {
      id,
      content,
      single_word: o?.single_word ?? false,
      lstrip: o?.lstrip ?? false,
      rstrip: o?.rstrip ?? false,
      normalized: o?.normalized ?? false,
      special: true,
    };
  });
  const bosId = specialIds.get(opts.bosToken);
  if (bosId === undefined) throw new Error(`truncateBpeTokenizer: bos token ${opts.bosToken} is not among the specials`);

  // As current Llama 3 tokenizers do: byte-level post-processing, then BOS prepended by TemplateProcessing.
  const byteLevel = isObject(tokenizerJson.post_processor) && tokenizerJson.post_processor.type === 'ByteLevel'
    ? tokenizerJson.post_processor
    : { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true };
  const postProcessor = {
    type: 'Sequence',
    processors: [
      byteLevel,
      {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: opts.bosToken, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [
          { SpecialToken: { id: opts.bosToken, type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: opts.bosToken, type_id: 1 } },
          { Sequence: { id: 'B', type_id: 1 } },
        ],
        special_tokens: { [opts.bosToken]: { id: opts.bosToken, ids: [bosId], tokens: [opts.bosToken] } },
      },
    ],
  };

  const newJson: Record<string, unknown> = {
    ...tokenizerJson,
    added_tokens: addedTokens,
    post_processor: postProcessor,
    model: { ...model, vocab, merges },
  };

  const decoder: Record<string, unknown> = {};
  for (const t of addedTokens) {
    decoder[String(t.id)] = { content: t.content, lstrip: t.lstrip, normalized: t.normalized, rstrip: t.rstrip, single_word: t.single_word, special: true };
  }
  const newConfig: Record<string, unknown> = {
    added_tokens_decoder: decoder,
    bos_token: opts.bosToken,
    chat_template: opts.chatTemplate,
    // Clean-up would turn " ." into "." on decode and break decode(encode(x)) == x.
    clean_up_tokenization_spaces: false,
    eos_token: opts.eosToken,
    model_input_names: tokenizerConfig.model_input_names ?? ['input_ids', 'attention_mask'],
    model_max_length: opts.modelMaxLength,
    pad_token: opts.padToken,
    tokenizer_class: tokenizerConfig.tokenizer_class ?? 'PreTrainedTokenizerFast',
  };
  return { tokenizerJson: newJson, tokenizerConfig: newConfig, specialIds, vocabSize: opts.keep + specials.length };
}
