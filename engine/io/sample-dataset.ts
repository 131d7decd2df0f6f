/**
 * The sample dataset: ~300 Alpaca-style instruction/answer pairs written for the project (so there is no licence
 * question) — how-to questions, explanations of everyday, science and computing ideas, rewriting and summarising an
 * input, classification, short lists, arithmetic word problems and a few short translations. They live in
 * sample-instructions.jsonl next to this file, grouped by kind for editing; the generator checks them and writes
 * them shuffled with a fixed seed, so batches and validation splits mix the kinds and the output is reproducible.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export interface AlpacaRecord {
  instruction: string;
  input: string;
  output: string;
}

/** The source file: next to this module in the source tree, or back in engine/io/ when running from dist/. */
export function sampleInstructionsPath(): string {
  const candidates = [fileURLToPath(new URL('./sample-instructions.jsonl', import.meta.url)), fileURLToPath(new URL('../../../engine/io/sample-instructions.jsonl', import.meta.url))];
  return candidates.find((c) => existsSync(c)) ?? candidates[0];
}

const field = (what: string): z.ZodString =>
  z.string().min(1, `${what} is empty`).refine((s) => s === s.trim(), `${what} has leading or trailing whitespace`);

// `input` is left out of the source when there is none; the dataset always has it (Alpaca's three keys).
const sourceRecord = z.strictObject({ instruction: field('instruction'), input: field('input').optional(), output: field('output') });

/** Parses and checks the source lines: one JSON object a line, no empty fields, every instruction different. */
export function parseSampleInstructions(text: string, file = 'sample-instructions.jsonl'): AlpacaRecord[] {
  const records: AlpacaRecord[] = [];
  const seen = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] === '') continue;
    const where = `${file}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(lines[i]);
    } catch (e) {
      throw new Error(`${where}: not JSON (${(e as Error).message})`, { cause: e });
    }
    const parsed = sourceRecord.safeParse(value);
    if (!parsed.success) throw new Error(`${where}: ${parsed.error.issues.map((x) => x.message).join('; ')}`);
    const { instruction, input = '', output } = parsed.data;
    const first = seen.get(instruction);
    if (first !== undefined) throw new Error(`${where}: the same instruction as line ${first}`);
    seen.set(instruction, i + 1);
    records.push({ instruction, input, output });
  }
  return records;
}

/** Fisher-Yates with mulberry32: the same order on every machine and Node version (Math.random has no seed). */
export function seededShuffle<T>(items: readonly T[], seed: number): T[] {
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

export const SAMPLE_DATASET_SEED = 1961;

/** The records of the sample dataset, in the order the dataset file has them. */
export function buildInstructionDataset(sourcePath = sampleInstructionsPath(), seed = SAMPLE_DATASET_SEED): AlpacaRecord[] {
  return seededShuffle(parseSampleInstructions(readFileSync(sourcePath, 'utf8'), sourcePath), seed);
}

/** JSON Lines, keys in Alpaca order. */
export function toJsonl(records: AlpacaRecord[]): string {
  return records.map((r) => JSON.stringify({ instruction: r.instruction, input: r.input, output: r.output })).join('\n') + '\n';
}
