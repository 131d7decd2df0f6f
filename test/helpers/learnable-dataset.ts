/**
 * A dataset a few optimizer steps can fit: four short instruction/answer pairs, repeated. The QLoRA end-to-end tests
 * check that "the loss falls" over ten steps of a random sample model; on the sample dataset's ~300 different
 * instructions each step sees new text, and ten steps of a random model leave nothing but noise to compare. Here every
 * batch repeats what the adapter has already seen, so a learning run shows it at once and a broken one cannot.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PAIRS = [
  { instruction: 'Name the colour of the sky on a clear day.', input: '', output: 'The sky is blue on a clear day.' },
  { instruction: 'What do bees make?', input: '', output: 'Bees make honey and wax.' },
  { instruction: 'Add two and three.', input: '', output: 'Two plus three is five.' },
  { instruction: 'Say hello in French.', input: '', output: 'Hello in French is bonjour.' },
];

/** Writes the dataset into `dir` (as learnable.jsonl) and returns its path. */
export function writeLearnableDataset(dir: string, copies = 8): string {
  const path = join(dir, 'learnable.jsonl');
  const lines: string[] = [];
  for (let c = 0; c < copies; c++) for (const p of PAIRS) lines.push(JSON.stringify(p));
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}
