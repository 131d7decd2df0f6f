/**
 * The tokenizer a GGUF describes in its metadata, as a Hugging Face tokenizer.json the studio's tokenizer library
 * (@huggingface/tokenizers) loads, built the way transformers' GGUF loader builds it (integrations/gguf,
 * gguf_tokenizer_mapping.py), so the ids equal `AutoTokenizer.from_pretrained(dir, gguf_file=…)`:
 *
 * - `tokenizer.ggml.model` "gpt2": byte-level BPE with the file's merges; tokens outside the byte alphabet are
 *   respelled in it; the pre-tokenizer splits with the regex of `tokenizer.ggml.pre` where that names one of the
 *   known families (llama3/llama-bpe, qwen2 …), else GPT-2's; BOS only when add_bos_token says so.
 * - "llama": SentencePiece-style BPE with byte fallback and Metaspace; merges from the file, or derived from the
 *   token scores as transformers' generate_merges does; BOS unless add_bos_token is false.
 * - Control tokens (token_type 3) become special added tokens, user-defined ones (4) plain added tokens.
 * - bos/eos/unk/pad from the `*_token_id` keys, the chat template from `tokenizer.chat_template`.
 */
import type { Tokenizer } from '../model/types.ts';
import { GgufError, readGguf, type GgufFile } from '../quant/gguf-reader.ts';
import type { GgufScalar } from '../quant/gguf-types.ts';
import { byteLevelAlphabet } from './sample-tokenizer.ts';
import { makeTokenizer } from './tokenizer.ts';

type Json = Record<string, unknown>;

const LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** llama.cpp pre-tokenizer names (tokenizer.ggml.pre) with a split of their own, as transformers maps them. */
export const GGUF_PRE_TOKENIZER_SPLITS: Readonly<Record<string, string>> = {
  llama3: LLAMA3_SPLIT,
  'llama-v3': LLAMA3_SPLIT,
  'llama-bpe': LLAMA3_SPLIT,
  'smaug-bpe': LLAMA3_SPLIT,
  dbrx: LLAMA3_SPLIT,
  falcon3: LLAMA3_SPLIT,
  pixtral: LLAMA3_SPLIT,
  qwen2: QWEN2_SPLIT,
  'deepseek-r1-qwen': QWEN2_SPLIT,
  megrez: QWEN2_SPLIT,
};

const BYTE_CHARS = byteLevelAlphabet();
const BYTE_SET = new Set(BYTE_CHARS);

function inByteAlphabet(token: string): boolean {
  for (const ch of token) if (!BYTE_SET.has(ch)) return false;
  return true;
}

function respell(token: string): string {
  if (inByteAlphabet(token)) return token;
  let out = '';
  for (const b of new TextEncoder().encode(token)) out += BYTE_CHARS[b];
  return out;
}

function stringArray(file: GgufFile, key: string): string[] | undefined {
  const v = file.kv.get(key);
  if (v === undefined) return undefined;
  if (v.type !== 'array' || v.itemType !== 'string') throw new GgufError(file.path, `key '${key}' must be an array of strings`, { key });
  return v.values as string[];
}

function numberArray(file: GgufFile, key: string): number[] | undefined {
  const v = file.kv.get(key);
  if (v === undefined) return undefined;
  if (v.type !== 'array' || v.itemType === 'string' || v.itemType === 'bool') throw new GgufError(file.path, `key '${key}' must be an array of numbers`, { key });
  return v.values.map((x: GgufScalar) => Number(x));
}

function scalar(file: GgufFile, key: string): GgufScalar | undefined {
  const v = file.kv.get(key);
  if (v === undefined) return undefined;
  if (v.type === 'array') throw new GgufError(file.path, `key '${key}' must be a single value, not an array`, { key });
  return v.value;
}

function bool(file: GgufFile, key: string): boolean | undefined {
  const v = scalar(file, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new GgufError(file.path, `key '${key}' must be a bool, got ${JSON.stringify(String(v))}`, { key });
  return v;
}

/** Unicode code points of a string (Python's len and slicing count these, not UTF-16 units). */
const codePoints = (s: string): string[] => Array.from(s);

/**
 * Merges implied by a vocabulary and its scores, as transformers' generate_merges: every split of every token into
 * two tokens of the vocabulary, ordered by the merged token's score (best first), then by the lengths of the parts.
 */
export function mergesFromScores(vocab: Map<string, number>, scores: Map<string, number>): [string, string][] {
  const found: { l: string; r: string; score: number; ll: number; lr: number }[] = [];
  for (const [merge, score] of scores) {
    const cps = codePoints(merge);
    const local: { l: string; r: string; score: number; ll: number; lr: number }[] = [];
    for (let i = 1; i < cps.length; i++) {
      const l = cps.slice(0, i).join('');
      const r = cps.slice(i).join('');
      if (vocab.has(l) && vocab.has(r)) local.push({ l, r, score, ll: i, lr: cps.length - i });
    }
    local.sort((a, b) => (vocab.get(a.l) ?? 0) - (vocab.get(b.l) ?? 0) || (vocab.get(a.r) ?? 0) - (vocab.get(b.r) ?? 0));
    found.push(...local);
  }
  // Python's sorted(reverse=True) is stable: equal keys keep their order.
  found.sort((a, b) => b.score - a.score || b.ll - a.ll || b.lr - a.lr);
  return found.map((m) => [m.l, m.r]);
}

export interface GgufTokenizerFiles {
  /** A tokenizer.json. */
  tokenizerJson: Json;
  /** A tokenizer_config.json (special tokens, add_bos_token/add_eos_token, chat_template). */
  tokenizerConfig: Json;
  chatTemplate: string | null;
}

function addedToken(id: number, content: string, special: boolean): Json {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special };
}

/** The tokenizer.json and tokenizer_config.json a GGUF's metadata describes (transformers' conversion). */
export function ggufTokenizerFiles(file: GgufFile): GgufTokenizerFiles {
  const model = scalar(file, 'tokenizer.ggml.model');
  const tokens = stringArray(file, 'tokenizer.ggml.tokens');
  if (model === undefined || tokens === undefined) throw new GgufError(file.path, "has no tokenizer (keys 'tokenizer.ggml.model' and 'tokenizer.ggml.tokens')", { key: 'tokenizer.ggml.tokens' });
  if (model !== 'gpt2' && model !== 'llama') {
    throw new GgufError(file.path, `tokenizer type '${String(model)}' (tokenizer.ggml.model) is not supported (supported: gpt2, llama)`, { key: 'tokenizer.ggml.model' });
  }
  const types = numberArray(file, 'tokenizer.ggml.token_type') ?? [];
  if (types.length > 0 && types.length !== tokens.length) throw new GgufError(file.path, `'tokenizer.ggml.token_type' has ${types.length} entries for ${tokens.length} tokens`, { key: 'tokenizer.ggml.token_type' });
  const merges = stringArray(file, 'tokenizer.ggml.merges');
  const idOf = (key: string): number | null => {
    const v = scalar(file, key);
    if (v === undefined) return null;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0 || n >= tokens.length) throw new GgufError(file.path, `key '${key}' is ${String(v)}, not a token id below ${tokens.length}`, { key });
    return n;
  };
  const special = {
    bos_token: idOf('tokenizer.ggml.bos_token_id'),
    eos_token: idOf('tokenizer.ggml.eos_token_id'),
    unk_token: idOf('tokenizer.ggml.unknown_token_id'),
    pad_token: idOf('tokenizer.ggml.padding_token_id'),
  };
  const splitMerge = (m: string, i: number): [string, string] => {
    const parts = m.split(' ');
    if (parts.length !== 2) throw new GgufError(file.path, `'tokenizer.ggml.merges' item ${i} (${JSON.stringify(m)}) is not two tokens separated by one space`, { key: 'tokenizer.ggml.merges' });
    return [parts[0], parts[1]];
  };

  const byteLevel = model === 'gpt2';
  // Both: Python dicts, where a repeated token keeps its first place and takes the last id.
  const vocab = new Map<string, number>();
  tokens.forEach((t, i) => vocab.set(byteLevel ? respell(t) : t, i));
  let mergeList: [string, string][];
  if (merges) mergeList = merges.map(splitMerge);
  else if (byteLevel) throw new GgufError(file.path, "a gpt2 tokenizer needs 'tokenizer.ggml.merges'", { key: 'tokenizer.ggml.merges' });
  else {
    const scores = numberArray(file, 'tokenizer.ggml.scores');
    if (!scores || scores.length !== tokens.length) throw new GgufError(file.path, "a llama tokenizer without merges needs 'tokenizer.ggml.scores', one per token", { key: 'tokenizer.ggml.scores' });
    const byToken = new Map<string, number>();
    tokens.forEach((t, i) => byToken.set(t, scores[i]));
    mergeList = mergesFromScores(vocab, byToken);
  }

  const added: Json[] = [];
  const addedIds = new Set<number>();
  tokens.forEach((t, i) => {
    if (types[i] === 3 && (!byteLevel || inByteAlphabet(t))) {
      const id = vocab.get(t) ?? i;
      if (!addedIds.has(id)) {
        added.push(addedToken(id, t, true));
        addedIds.add(id);
      }
    }
  });
  tokens.forEach((t, i) => {
    if (types[i] === 4 && vocab.has(t)) {
      const id = vocab.get(t) ?? i;
      if (!addedIds.has(id)) {
        added.push(addedToken(id, t, false));
        addedIds.add(id);
      }
    }
  });

  const addBos = bool(file, 'tokenizer.ggml.add_bos_token') ?? !byteLevel;
  const addEos = bool(file, 'tokenizer.ggml.add_eos_token') ?? false;
  const tokenOf = (id: number | null): string | null => (id === null ? null : tokens[id]);
  const bos = tokenOf(special.bos_token);
  const eos = tokenOf(special.eos_token);
  const useBos = addBos && bos !== null;
  const useEos = addEos && eos !== null;
  const seq = (id: string, typeId: number): Json => ({ Sequence: { id, type_id: typeId } });
  const sp = (token: string, typeId: number): Json => ({ SpecialToken: { id: token, type_id: typeId } });
  const single = [...(useBos && bos ? [sp(bos, 0)] : []), seq('A', 0), ...(useEos && eos ? [sp(eos, 0)] : [])];
  const pair = [...single, ...(useBos && bos ? [sp(bos, 1)] : []), seq('B', 1), ...(useEos && eos ? [sp(eos, 1)] : [])];
  const specialTokens: Json = {};
  for (const [t, id] of [
    [useBos ? bos : null, special.bos_token],
    [useEos ? eos : null, special.eos_token],
  ] as const) {
    if (t !== null && id !== null) specialTokens[t] = { id: t, ids: [id], tokens: [t] };
  }
  const postProcessor = { type: 'TemplateProcessing', single, pair, special_tokens: specialTokens };

  const pre = scalar(file, 'tokenizer.ggml.pre');
  const split = typeof pre === 'string' ? GGUF_PRE_TOKENIZER_SPLITS[pre] : undefined;
  const tokenizerJson: Json = byteLevel
    ? {
        version: '1.0',
        truncation: null,
        padding: null,
        added_tokens: added,
        normalizer: null,
        pre_tokenizer: split
          ? { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: split }, behavior: 'Isolated', invert: false }, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] }
          : { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
        post_processor: postProcessor,
        decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
        model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: Object.fromEntries(vocab), merges: mergeList },
      }
    : {
        version: '1.0',
        truncation: null,
        padding: null,
        added_tokens: added,
        normalizer: null,
        pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false },
        post_processor: postProcessor,
        decoder: {
          type: 'Sequence',
          decoders: [{ type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
        },
        model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab: Object.fromEntries(vocab), merges: mergeList },
      };
  const chat = scalar(file, 'tokenizer.chat_template');
  const chatTemplate = typeof chat === 'string' && chat.length > 0 ? chat : null;
  // transformers' GGUF tokenizer keeps the spaces before punctuation on decode (no clean-up), as llama.cpp does.
  const tokenizerConfig: Json = { add_bos_token: useBos, add_eos_token: useEos, clean_up_tokenization_spaces: false };
  for (const [key, id] of Object.entries(special)) if (id !== null) tokenizerConfig[key] = tokens[id];
  if (chatTemplate) tokenizerConfig.chat_template = chatTemplate;
  return { tokenizerJson, tokenizerConfig, chatTemplate };
}

/** The engine's Tokenizer for a GGUF file (or an already read header). */
export function loadGgufTokenizer(source: string | GgufFile): Tokenizer {
  const file = typeof source === 'string' ? readGguf(source) : source;
  const t = ggufTokenizerFiles(file);
  return makeTokenizer(t.tokenizerJson, t.tokenizerConfig, t.chatTemplate, `${file.path} (tokenizer metadata)`);
}
