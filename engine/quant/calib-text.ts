/**
 * Calibration tokens for the behaviour metrics: text from a file the user picks (plain text, JSONL or a JSON array of
 * records in any dataset format — every string value is taken, role names aside), tokenized with the model's
 * tokenizer, concatenated, and cut into `batch` sequences of `seqLen` tokens.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Tokenizer } from '../model/types.ts';
import type { CalibrationTokens } from './report.ts';

export interface CalibrationOptions {
  /** Total tokens wanted (rounded down to whole sequences); default 512. */
  tokens?: number;
  /** Tokens per sequence; default 128. */
  seqLen?: number;
}

const SKIP_KEYS = new Set(['role', 'from', 'type', 'id']);

function collectStrings(v: unknown, out: string[], key = ''): void {
  if (typeof v === 'string') {
    if (!SKIP_KEYS.has(key) && v.trim() !== '') out.push(v);
  } else if (Array.isArray(v)) {
    for (const x of v) collectStrings(x, out, key);
  } else if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v)) collectStrings(x, out, k);
  }
}

/** The text pieces of a calibration file, in order, stopping after about `maxChars` characters. */
export function calibrationTexts(path: string, maxChars: number): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read the calibration file (${(e as { code?: string }).code ?? String(e)})`, { cause: e });
  }
  const pieces: string[] = [];
  let chars = 0;
  const take = (s: string[]): boolean => {
    for (const p of s) {
      pieces.push(p);
      chars += p.length;
      if (chars >= maxChars) return true;
    }
    return false;
  };
  const name = basename(path);
  if (/\.jsonl$/i.test(path)) {
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (lines[i].trim() === '') continue;
      let rec: unknown;
      try {
        rec = JSON.parse(lines[i]);
      } catch (e) {
        throw new Error(`${name} line ${i + 1}: invalid JSON (${(e as Error).message})`, { cause: e });
      }
      const s: string[] = [];
      collectStrings(rec, s);
      if (take(s)) break;
    }
  } else if (/\.json$/i.test(path)) {
    let rec: unknown;
    try {
      rec = JSON.parse(text);
    } catch (e) {
      throw new Error(`${name}: invalid JSON (${(e as Error).message})`, { cause: e });
    }
    const s: string[] = [];
    collectStrings(rec, s);
    take(s);
  } else {
    take([text.slice(0, maxChars)]);
  }
  if (pieces.length === 0) throw new Error(`${name}: no text found for calibration`);
  return pieces;
}

export function calibrationTokens(path: string, tokenizer: Tokenizer, opts: CalibrationOptions = {}): CalibrationTokens {
  const want = opts.tokens ?? 512;
  const seqLen = opts.seqLen ?? 128;
  if (!Number.isInteger(want) || want < 2) throw new Error(`calibration tokens must be a whole number ≥ 2, got ${want}`);
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new Error(`calibration sequence length must be a whole number ≥ 2, got ${seqLen}`);
  // ~4 characters per token in English; take generously and cut after tokenizing.
  const texts = calibrationTexts(path, want * 8);
  const ids: number[] = [];
  for (const t of texts) {
    for (const id of tokenizer.encode(t, { addSpecialTokens: false })) ids.push(id);
    if (ids.length >= want) break;
  }
  if (ids.length < 2) throw new Error(`${basename(path)}: the calibration text is only ${ids.length} token long`);
  const T = Math.min(seqLen, ids.length);
  const B = Math.max(1, Math.floor(Math.min(want, ids.length) / T));
  return { inputIds: Int32Array.from(ids.slice(0, B * T)), batch: B, seqLen: T, source: basename(path) };
}
