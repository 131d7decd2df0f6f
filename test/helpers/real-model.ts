/** The real model of the slow tests: SmolLM2-135M-Instruct Q4_1 GGUF, fetched by scripts/ensure-real-model.mjs. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './python.ts';

export const REAL_MODEL_FILE = 'SmolLM2-135M-Instruct.Q4_1.gguf';

export function realModelPath(): string {
  const dir = process.env.LORA_STUDIO_MODEL_CACHE ?? join(repoRoot, '.cache/models');
  const p = join(dir, REAL_MODEL_FILE);
  if (!existsSync(p)) throw new Error(`the real test model is not at ${p}: run 'node scripts/ensure-real-model.mjs' (npm test does)`);
  return p;
}
