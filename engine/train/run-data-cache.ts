/**
 * A run's dataset is tokenized once per run start: the preflight (in a worker, before the run exists) prepares it to
 * find every reason to refuse the run and keeps the result in the studio's dataset cache; the engine uses that
 * entry instead of preparing again — and so does every resume, and every other run on the same data and settings.
 *
 * An entry is named by a key over everything the preparation depends on: the options run-data.ts passes to
 * prepareDataset, the path and the SHA-256 of the content of the dataset (and validation) file, the tokenizer's
 * source files, and LAYOUT. A dataset edited after the preflight has another key, so its entry is never used; a
 * damaged entry fails its checksum (prepared-file.ts); either way the engine prepares anew, and keeps that result.
 *
 * Bad records: the preflight prepares with 'fail' (unless the run chose), the engine with 'skip'. A preparation
 * that passed under 'fail' met no bad record, and then 'skip' gives the same result, so the key leaves the mode out
 * and an entry that lists bad records serves only 'skip'.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { RunConfig } from '../../common/protocol.ts';
import type { PreparedDataset } from '../data/prepare.ts';
import { readPreparedDataset, writePreparedDataset } from '../data/prepared-file.ts';
import { isGgufFile } from '../io/model-source.ts';
import { ggufTokenizerFiles } from '../io/tokenizer-gguf.ts';
import type { Tokenizer } from '../model/types.ts';
import { readGguf } from '../quant/gguf-reader.ts';
import { prepareRunDataset, runPrepareOptions } from './run-data.ts';

/** Changes whenever the preparation's output for the same inputs changes (masking, rendering, the file layout). */
const LAYOUT = 1;
/** The cache keeps its newest entries within these bounds; an evicted entry only means preparing again. */
const MAX_ENTRIES = 16;
const MAX_BYTES = 2 * 1024 ** 3;
/** A temporary file a crashed writer left behind is removed after this long. */
const STALE_TEMP_MS = 60 * 60 * 1000;

type BadRecordMode = 'skip' | 'fail';

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * What loadTokenizer (engine/io/model-source.ts) builds the tokenizer from: tokenizer.json, tokenizer_config.json
 * and chat_template.jinja of a model folder, or a GGUF file's tokenizer metadata (not its weights).
 */
export function tokenizerFingerprint(modelPath: string): string {
  const hash = createHash('sha256');
  if (isGgufFile(modelPath)) {
    hash.update('gguf\0').update(JSON.stringify(ggufTokenizerFiles(readGguf(resolve(modelPath)))));
    return hash.digest('hex');
  }
  for (const name of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) {
    const file = join(modelPath, name);
    hash.update(`${name}\0`);
    if (existsSync(file)) hash.update(readFileSync(file)).update('\0');
    else hash.update('absent\0');
  }
  return hash.digest('hex');
}

/** The cache key of a run's prepared dataset (reads the dataset files through once to hash them). */
export async function runDatasetKey(config: RunConfig): Promise<string> {
  const options: Record<string, unknown> = { ...runPrepareOptions(config, null) };
  const path = String(options.path);
  const validationPath = typeof options.validationPath === 'string' ? options.validationPath : null;
  // Held apart: the tokenizer by its files, the files by their content, the mode as the header says.
  for (const k of ['tokenizer', 'badRecords', 'path', 'validationPath']) delete options[k];
  const parts = {
    layout: LAYOUT,
    options: Object.keys(options)
      .sort()
      .map((k) => [k, options[k]]),
    data: [resolve(path), await fileSha256(path)],
    validation: validationPath === null ? null : [resolve(validationPath), await fileSha256(validationPath)],
    tokenizer: tokenizerFingerprint(config.modelPath),
  };
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

function entryPath(cacheDir: string, key: string): string {
  return join(cacheDir, `${key}.prepared`);
}

function servesMode(data: PreparedDataset, mode: BadRecordMode): boolean {
  return mode === 'skip' || (data.badRecordCount ?? data.badRecords.length) === 0;
}

function modeOf(config: RunConfig, unset: BadRecordMode): BadRecordMode {
  return config.data?.badRecords ?? unset;
}

/** Key of the run's data now, or null when it cannot be made (a missing file: preparing says what is wrong). */
async function keyOrNull(config: RunConfig): Promise<string | null> {
  try {
    return await runDatasetKey(config);
  } catch {
    return null;
  }
}

/** Removes the oldest entries past the bounds (never `keep`) and temporary files crashed writers left. */
function prune(cacheDir: string, keep: string): void {
  const now = Date.now();
  const entries: { path: string; mtimeMs: number; size: number }[] = [];
  for (const name of readdirSync(cacheDir)) {
    const path = join(cacheDir, name);
    try {
      const st = statSync(path);
      if (name.startsWith('.') && name.includes('.tmp-')) {
        if (now - st.mtimeMs > STALE_TEMP_MS) rmSync(path, { force: true });
      } else if (name.endsWith('.prepared')) entries.push({ path, mtimeMs: st.mtimeMs, size: st.size });
    } catch {
      // Another studio pruned it meanwhile.
    }
  }
  entries.sort((a, b) => b.mtimeMs - a.mtimeMs);
  let bytes = 0;
  let count = 0;
  for (const e of entries) {
    if (e.path === keep) continue;
    bytes += e.size;
    count++;
    if (count >= MAX_ENTRIES || bytes > MAX_BYTES) rmSync(e.path, { force: true });
  }
}

/**
 * Keeps `data` under `key` when the files still have that key (they were not edited while being prepared). Returns
 * why not, or null when kept; a cache that cannot be written only costs the next preparation.
 */
async function keep(config: RunConfig, cacheDir: string, key: string, data: PreparedDataset): Promise<string | null> {
  try {
    if ((await keyOrNull(config)) !== key) return 'the dataset changed while it was prepared';
    const path = entryPath(cacheDir, key);
    writePreparedDataset(path, key, data);
    prune(cacheDir, path);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * The preflight's check (the dataset-check worker runs it): prepares the run's dataset as the engine will, with
 * bad records refused unless the run chose to skip them, and keeps the result for the engine. Throws what
 * prepareDataset throws (DatasetError with file, line and field). A valid entry for the same key is the same check
 * already passed, so it is not repeated.
 */
export async function checkRunDataset(config: RunConfig, tokenizer: Tokenizer | null, cacheDir: string | null): Promise<{ tokenized: boolean; kept: boolean }> {
  const key = cacheDir === null ? null : await keyOrNull(config);
  if (cacheDir !== null && key !== null) {
    const cached = readPreparedDataset(entryPath(cacheDir, key), key);
    if (cached && servesMode(cached, modeOf(config, 'fail'))) return { tokenized: false, kept: true };
  }
  const data = await prepareRunDataset(config, tokenizer, { badRecordsWhenUnset: 'fail' });
  if (cacheDir === null || key === null) return { tokenized: true, kept: false };
  return { tokenized: true, kept: (await keep(config, cacheDir, key, data)) === null };
}

/**
 * The engine's dataset for a run: the cache entry the preflight kept when its key matches the data as it is now,
 * else a fresh preparation (kept for resumes). Without a cache folder (a headless `lora-studio train`), as before.
 */
export async function runDataset(config: RunConfig, tokenizer: Tokenizer | null, cacheDir: string | null, log: (message: string) => void): Promise<PreparedDataset> {
  if (cacheDir === null) return prepareRunDataset(config, tokenizer);
  const key = await keyOrNull(config);
  if (key !== null) {
    const cached = readPreparedDataset(entryPath(cacheDir, key), key);
    if (cached && servesMode(cached, modeOf(config, 'skip'))) {
      log(`dataset ${config.datasetPath}: as prepared before the run started (cache ${key.slice(0, 12)}), not tokenized again`);
      return cached;
    }
  }
  log(`preparing dataset ${config.datasetPath}`);
  const data = await prepareRunDataset(config, tokenizer);
  if (key !== null) {
    const why = await keep(config, cacheDir, key, data);
    if (why !== null) log(`the prepared dataset was not kept for resuming (${why})`);
  }
  return data;
}
