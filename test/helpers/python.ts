import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The reference Python (torch + transformers + peft) made by scripts/ensure-python.mjs. */
export function pythonPath(): string {
  const p = process.env.LORA_STUDIO_PYTHON ?? `${repoRoot}.venv/bin/python`;
  if (!existsSync(p)) throw new Error(`reference Python not found at ${p}: run 'node scripts/ensure-python.mjs' (npm test does)`);
  return p;
}

/** Runs a script from tests/python and returns its stdout; throws with stderr on failure. */
export function runPython(script: string, args: string[], timeoutMs = 300_000): string {
  const r = spawnSync(pythonPath(), [`${repoRoot}tests/python/${script}`, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`python ${script} failed (exit ${r.status}):\n${r.stderr}`);
  return r.stdout;
}
