/**
 * Downloads a model from the Hugging Face Hub into the standard HF cache, as huggingface_hub lays it out, so
 * transformers (`from_pretrained(repo)`), huggingface_hub's `scan_cache_dir` and our discovery all see it:
 *   models--{org}--{name}/blobs/{etag}            the file's bytes (etag = sha256 for LFS files, git sha1 else)
 *   models--{org}--{name}/snapshots/{commit}/{f}  a relative symlink to ../../blobs/{etag}
 *   models--{org}--{name}/refs/{revision}         the commit a branch or tag name pointed at
 * Over the Hub's documented HTTP API: `GET {endpoint}/api/models/{repo}/revision/{rev}` (the commit and file list),
 * `HEAD {endpoint}/{repo}/resolve/{commit}/{file}` (X-Linked-Etag / ETag, X-Linked-Size / Content-Length) and a GET
 * of the same URL with `Range: bytes=N-` to resume. The endpoint is HF_ENDPOINT (as huggingface_hub reads it), else
 * https://huggingface.co. A file is written to blobs/{etag}.incomplete and renamed only once complete (and its
 * sha256 checked when the etag is one), so a cut connection or a cancel never leaves a half file that looks whole;
 * the next pull resumes from the .incomplete part; one process fetches a blob at a time (blob-lock.ts), the others wait
 * and find it whole. Only what the studio loads is fetched: config.json, the tokenizer
 * files, the chat template, *.safetensors and their index, or the one .gguf asked for.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, unlinkSync, copyFileSync, lstatSync } from 'node:fs';
import { open, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import type { ModelPullDone, ModelPullProgress } from '../../common/models-pull.ts';
import { withBlobLock } from './blob-lock.ts';
import { modelStoreDirs } from './model-discovery.ts';

export const HF_DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubPullRequest {
  /** "org/name". */
  repo: string;
  /** Branch, tag or commit (default "main"). */
  revision?: string;
  /** One .gguf file of the repo instead of the safetensors model. */
  file?: string;
}

/** Progress of a pull, as the services forward it (common/models-pull.ts, without the job's own fields). */
export type HubPullProgress = Omit<ModelPullProgress, 'jobId' | 'repo'>;

/** What a pull leaves: the snapshot folder, the path the model field takes, the files and the bytes fetched. */
export type HubPullResult = ModelPullDone;

export interface HubPullOptions {
  /** Default process.env (HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE, HF_HOME…). */
  env?: Readonly<Record<string, string | undefined>>;
  home?: string;
  /** Wins over HF_TOKEN and the token file huggingface-cli login writes. */
  token?: string | null;
  signal?: AbortSignal;
  onProgress?: (p: HubPullProgress) => void;
}

/** A pull that failed for a reason the user can act on; `field` is the request field it is about. */
export class HubPullError extends Error {
  readonly field: string | undefined;
  constructor(message: string, field?: string) {
    super(message);
    this.name = 'HubPullError';
    this.field = field;
  }
}

export class HubPullCancelled extends HubPullError {
  constructor(message: string) {
    super(message);
    this.name = 'HubPullCancelled';
  }
}

const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;
const COMMIT = /^[0-9a-f]{40}$/;

/** Files a llama-family safetensors model needs beside its weights (top level of the repo only). */
function isModelFile(name: string): boolean {
  if (name.includes('/')) return false;
  if (name === 'config.json' || name === 'generation_config.json' || name === 'special_tokens_map.json' || name === 'chat_template.jinja' || name === 'chat_template.json') return true;
  if (name.startsWith('tokenizer') && (name.endsWith('.json') || name.endsWith('.model') || name === 'tokenizer.txt')) return true;
  if (name.endsWith('.safetensors')) return true;
  return name === 'model.safetensors.index.json';
}

export function hubEndpoint(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const e = env.HF_ENDPOINT?.trim();
  return (e ? e : HF_DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

/** The token: given, else HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN), else $HF_HOME/token (huggingface-cli login). */
export function hubToken(opts: HubPullOptions = {}): string | null {
  if (opts.token) return opts.token;
  const env = opts.env ?? process.env;
  const fromEnv = env.HF_TOKEN?.trim() || env.HUGGING_FACE_HUB_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  const hfHome = env.HF_HOME?.trim() || join(env.XDG_CACHE_HOME?.trim() || join(opts.home ?? homedir(), '.cache'), 'huggingface');
  const file = env.HF_TOKEN_PATH?.trim() || join(hfHome, 'token');
  try {
    return readFileSync(file, 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** The models--org--name folder of `repo` in the cache at `hub`. */
export function hubRepoFolder(hub: string, repo: string): string {
  return join(hub, `models--${repo.split('/').join('--')}`);
}

/** huggingface_hub's etag normalization: the weak prefix and the quotes go. */
function normalizeEtag(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

interface Answer {
  status: number;
  headers: Headers;
}

/** The message for a refused request, by status and the Hub's X-Error-Code, naming the repo (and file). */
function refusal(r: Answer, what: string, repo: string, revision: string, tokenSent: boolean, endpoint: string): HubPullError {
  const code = r.headers.get('x-error-code') ?? '';
  const page = `${endpoint}/${repo}`;
  if (code === 'GatedRepo') {
    return tokenSent
      ? new HubPullError(`${repo} is a gated repository and your Hugging Face token has no access to it yet: accept its terms at ${page}, then pull again`, 'token')
      : new HubPullError(`${repo} is a gated repository: Hugging Face answered ${r.status} without a token. Accept its terms at ${page}, then give a token (the token field, HF_TOKEN, or huggingface-cli login)`, 'token');
  }
  if (code === 'RevisionNotFound') return new HubPullError(`${repo} has no revision "${revision}" (Hugging Face answered ${r.status})`, 'revision');
  if (code === 'EntryNotFound') return new HubPullError(`${what} is not in ${repo} at revision "${revision}" (Hugging Face answered ${r.status})`, 'file');
  if (r.status === 401) {
    return tokenSent
      ? new HubPullError(`Hugging Face refused your token for ${repo} (401): the token is invalid or expired, or the repository does not exist; check the name and make a new token at ${endpoint}/settings/tokens`, 'token')
      : new HubPullError(`Hugging Face answered 401 for ${repo}: the repository is private or gated, or does not exist. Check the name; for a private or gated one give a token (the token field, HF_TOKEN, or huggingface-cli login)`, 'token');
  }
  if (r.status === 403) return new HubPullError(`Hugging Face answered 403 for ${repo}: your token is not allowed to read it (a fine-grained token without access to this repository, or terms not accepted at ${page})`, 'token');
  if (r.status === 404) return new HubPullError(code === 'RepositoryNotFound' || what === repo ? `${repo} was not found on ${endpoint} (404): check the name (org/name) and the revision "${revision}"` : `${what} was not found in ${repo} at "${revision}" (404)`, what === repo ? 'repo' : 'file');
  return new HubPullError(`Hugging Face answered ${r.status} for ${what}`);
}

function check(signal: AbortSignal | undefined, partial?: string): void {
  if (signal?.aborted) throw cancelled(partial);
}

function cancelled(partial?: string): HubPullCancelled {
  return new HubPullCancelled(partial ? `download cancelled; the part fetched stays in ${partial} and the next pull of this model resumes from it` : 'download cancelled');
}

/** Hashes what a resumed download already has, so the sha256 covers the whole file. */
async function hashExisting(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

function link(pointer: string, blob: string, target: string): void {
  try {
    lstatSync(pointer);
    unlinkSync(pointer);
  } catch {
    // nothing there yet
  }
  try {
    symlinkSync(target, pointer);
  } catch {
    // No symlinks (Windows without developer mode): huggingface_hub then copies the blob, and so do we.
    copyFileSync(blob, pointer);
  }
}

export async function pullFromHub(req: HubPullRequest, opts: HubPullOptions = {}): Promise<HubPullResult> {
  const env = opts.env ?? process.env;
  const repo = req.repo.trim();
  if (!REPO_ID.test(repo)) throw new HubPullError(`"${req.repo}" is not a Hugging Face model id: write it as org/name (e.g. HuggingFaceTB/SmolLM2-135M-Instruct)`, 'repo');
  const revision = req.revision?.trim() || 'main';
  const endpoint = hubEndpoint(env);
  const token = hubToken(opts);
  const headers: Record<string, string> = { 'user-agent': 'lora-studio' };
  if (token) headers.authorization = `Bearer ${token}`;
  const hubDir = modelStoreDirs({ env, ...(opts.home ? { home: opts.home } : {}) }).find((d) => d.store === 'hf-cache')!.dir;
  const signal = opts.signal;

  const request = async (url: string, init: RequestInit, what: string): Promise<Response> => {
    // A kept-alive connection the server has just closed fails at once: the request is tried again (as
    // huggingface_hub retries), twice, before the failure is the user's to see.
    for (let attempt = 0; ; attempt++) {
      check(signal);
      try {
        return await fetch(url, { ...init, headers: { ...headers, ...(init.headers as Record<string, string> | undefined) }, ...(signal ? { signal } : {}) });
      } catch (e) {
        if (signal?.aborted) throw cancelled();
        if (attempt < 2) continue;
        const cause = e instanceof Error ? ((e as Error & { cause?: Error }).cause?.message ?? e.message) : String(e);
        throw new HubPullError(`could not reach ${endpoint} for ${what}: ${cause}${env.HF_ENDPOINT ? ' (HF_ENDPOINT is set)' : ''}`);
      }
    }
  };

  // 1. The commit and the file list.
  const infoUrl = `${endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
  const infoRes = await request(infoUrl, {}, repo);
  if (!infoRes.ok) throw refusal(infoRes, repo, repo, revision, token !== null, endpoint);
  let info: { sha?: unknown; siblings?: unknown };
  try {
    info = (await infoRes.json()) as { sha?: unknown; siblings?: unknown };
  } catch (e) {
    throw new HubPullError(`${infoUrl} did not answer JSON (${e instanceof Error ? e.message : String(e)}); is HF_ENDPOINT a Hugging Face Hub?`);
  }
  const commit = typeof info.sha === 'string' && COMMIT.test(info.sha) ? info.sha : null;
  if (!commit) throw new HubPullError(`${infoUrl} gave no commit ("sha"); is HF_ENDPOINT a Hugging Face Hub?`);
  const siblings = Array.isArray(info.siblings) ? (info.siblings as { rfilename?: unknown; size?: unknown }[]).filter((s) => typeof s?.rfilename === 'string') : [];
  const names = siblings.map((s) => s.rfilename as string);
  const ggufs = names.filter((n) => n.toLowerCase().endsWith('.gguf'));

  // A name that could climb out of the snapshot folder is not a file this pull writes, whatever the server lists.
  const unsafe = names.find((n) => n.startsWith('/') || n.includes('\\') || n.split('/').some((part) => part === '..' || part === '.' || part === ''));
  if (unsafe !== undefined && (req.file === unsafe || (!req.file && isModelFile(unsafe)))) {
    throw new HubPullError(`${infoUrl} lists the file name ${JSON.stringify(unsafe)}, which is not a plain path inside the repository; refusing to write it`);
  }

  // 2. Which files.
  let files: string[];
  if (req.file) {
    if (!req.file.toLowerCase().endsWith('.gguf')) throw new HubPullError(`--file takes one .gguf file of the repository; "${req.file}" is not one`, 'file');
    if (!names.includes(req.file)) {
      throw new HubPullError(`${repo} has no file ${req.file}${ggufs.length ? `; its GGUF files: ${ggufs.join(', ')}` : ' and no GGUF files at all'}`, 'file');
    }
    files = [req.file];
  } else {
    files = names.filter(isModelFile);
    if (!files.includes('config.json')) {
      if (ggufs.length) throw new HubPullError(`${repo} holds GGUF files, not a transformers model: choose one (${ggufs.join(', ')})`, 'file');
      throw new HubPullError(`${repo} has no config.json: it is not a transformers model the studio can train`, 'repo');
    }
    if (!files.some((f) => f.endsWith('.safetensors'))) {
      throw new HubPullError(`${repo} has no .safetensors weights${names.some((n) => n.endsWith('.bin')) ? ' (only PyTorch .bin files, which the studio does not read)' : ''}`, 'repo');
    }
  }

  const repoDir = hubRepoFolder(hubDir, repo);
  const snapshotDir = join(repoDir, 'snapshots', commit);
  const blobsDir = join(repoDir, 'blobs');
  mkdirSync(snapshotDir, { recursive: true });
  mkdirSync(blobsDir, { recursive: true });

  // 3. Each file's etag and size, then its bytes.
  const metas: { file: string; etag: string; size: number | null }[] = [];
  for (const file of files) {
    const url = `${endpoint}/${repo}/resolve/${commit}/${file.split('/').map(encodeURIComponent).join('/')}`;
    // Not followed: an LFS file's answer is a redirect to its storage, and its X-Linked-Etag is on that redirect.
    const head = await request(url, { method: 'HEAD', redirect: 'manual' }, file);
    if (head.status >= 400) throw refusal(head, file, repo, revision, token !== null, endpoint);
    const etagHeader = head.headers.get('x-linked-etag') ?? head.headers.get('etag');
    if (!etagHeader) throw new HubPullError(`${url} gave no ETag, so the file cannot be stored in the Hugging Face cache layout`);
    const sizeHeader = head.headers.get('x-linked-size') ?? head.headers.get('content-length');
    const listed = siblings.find((s) => s.rfilename === file)?.size;
    const size = sizeHeader !== null && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : typeof listed === 'number' ? listed : null;
    metas.push({ file, etag: normalizeEtag(etagHeader), size });
  }
  const total = metas.every((m) => m.size !== null) ? metas.reduce((s, m) => s + (m.size ?? 0), 0) : null;
  let doneBytes = 0;
  let downloadedBytes = 0;
  for (const [i, m] of metas.entries()) {
    const blob = join(blobsDir, m.etag);
    const progress = (fileBytes: number): void => opts.onProgress?.({ file: m.file, fileIndex: i, files: metas.length, fileBytes, fileTotal: m.size, bytes: doneBytes + fileBytes, total });
    const complete = (): boolean => existsSync(blob) && (m.size === null || statSync(blob).size === m.size);
    // Found whole: reported as done, fetched by nobody (fetchBlob reports its own progress).
    const found = (): number => {
      progress(m.size ?? statSync(blob).size);
      return 0;
    };
    // Another process may be fetching this very blob (the CLI beside the studio): wait for it, then find it whole.
    const lock = join(hubDir, '.locks', basename(repoDir), `${m.etag}.lora-studio.lock`);
    downloadedBytes += complete() ? found() : await withBlobLock(lock, async () => (complete() ? found() : fetchBlob(m, blob, progress)), { signal, aborted: () => cancelled() });
    doneBytes += statSync(blob).size;
    // A file in a sub-folder of the repo (some GGUF repos keep one folder per quantization) links from there.
    const pointer = join(snapshotDir, ...m.file.split('/'));
    mkdirSync(dirname(pointer), { recursive: true });
    link(pointer, blob, relative(dirname(pointer), blob));
  }

  // 4. The name the revision goes by, as huggingface_hub records it (a commit asked for directly has none).
  if (revision !== commit) {
    const ref = join(repoDir, 'refs', ...revision.split('/'));
    mkdirSync(join(ref, '..'), { recursive: true });
    await writeFile(ref, commit);
  }
  return { repo, revision, commit, snapshotDir, path: req.file ? join(snapshotDir, ...req.file.split('/')) : snapshotDir, files, downloadedBytes };

  async function fetchBlob(m: { file: string; etag: string; size: number | null }, blob: string, progress: (fileBytes: number) => void): Promise<number> {
    const partial = `${blob}.incomplete`;
    let start = existsSync(partial) ? statSync(partial).size : 0;
    if (m.size !== null && start > m.size) start = 0; // not this file's beginning: start over
    const url = `${endpoint}/${repo}/resolve/${commit}/${m.file.split('/').map(encodeURIComponent).join('/')}`;
    const res = await request(url, start > 0 ? { headers: { range: `bytes=${start}-` } } : {}, m.file);
    if (res.status === 416 && m.size !== null && start === m.size) {
      // The part already holds every byte; it only missed its rename.
    } else if (!res.ok) {
      throw refusal(res, m.file, repo, revision, token !== null, endpoint);
    } else if (res.status !== 206) {
      start = 0; // the server sent the whole file
    }
    const sha = /^[0-9a-f]{64}$/.test(m.etag) ? createHash('sha256') : null;
    if (sha && start > 0) await hashExisting(partial, sha);
    const fh = await open(partial, start > 0 ? 'a' : 'w');
    let written = start;
    let fetched = 0;
    let lastReport = 0;
    try {
      progress(written);
      if (res.status !== 416 && res.body) {
        try {
          for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
            await fh.write(chunk);
            sha?.update(chunk);
            written += chunk.byteLength;
            fetched += chunk.byteLength;
            const now = Date.now();
            if (now - lastReport >= 100) {
              lastReport = now;
              progress(written);
            }
          }
        } catch (e) {
          if (signal?.aborted) throw cancelled(partial);
          throw new HubPullError(`the connection broke while fetching ${m.file} (${written} of ${m.size ?? '?'} bytes, kept in ${partial}): ${e instanceof Error ? e.message : String(e)}; pull again to resume`);
        }
      }
    } finally {
      await fh.close();
    }
    check(signal, partial);
    if (m.size !== null && written !== m.size) {
      throw new HubPullError(`${m.file} ended at ${written} of its ${m.size} bytes (kept in ${partial}); pull again to resume`);
    }
    if (sha) {
      const got = sha.digest('hex');
      if (got !== m.etag) {
        unlinkSync(partial);
        throw new HubPullError(`${m.file} arrived with sha256 ${got}, not the ${m.etag} the Hub named; the download was removed, pull again`);
      }
    }
    await rename(partial, blob);
    progress(written);
    return fetched;
  }
}
