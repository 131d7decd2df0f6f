/**
 * A local HTTP server that speaks the Hugging Face Hub's documented download API, standing in for the Hub (which
 * tests must never reach): `GET /api/models/{repo}/revision/{rev}` (sha + siblings), `HEAD|GET /{repo}/resolve/{rev}/{file}`
 * with ETag / X-Repo-Commit, LFS files (.safetensors, .gguf) answered by a redirect carrying X-Linked-Etag (their
 * sha256) and X-Linked-Size, served from /lfs/{sha256} with Range support; gated and private repos with the Hub's
 * status codes and X-Error-Code headers. It can hold a file part-way, then send the rest or drop the connection, and records every request it saw.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HubRepo {
  commit: string;
  files: Record<string, Buffer>;
  /** 'gated': 401 without a token, 403 with one not in `tokens`; 'private': 401 without an accepted token. */
  access?: 'public' | 'gated' | 'private';
}

export interface SeenRequest {
  method: string;
  path: string;
  range: string | undefined;
  authorization: string | undefined;
}

export interface HubServer {
  endpoint: string;
  seen: SeenRequest[];
  /** Next GET of `file` sends `bytes` bytes, then waits for release() (the rest follows) or cut() (the connection drops). */
  holdOnce(file: string, bytes: number): void;
  release(): void;
  cut(): void;
  close(): Promise<void>;
}

const isLfs = (f: string): boolean => f.endsWith('.safetensors') || f.endsWith('.gguf');
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
/** git's blob id, the Hub's ETag for a file kept in git itself. */
const gitSha1 = (b: Buffer): string => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

export async function startHubServer(repos: Record<string, HubRepo>, tokens: string[]): Promise<HubServer> {
  const seen: SeenRequest[] = [];
  let hold: { file: string; bytes: number } | null = null;
  let releaseHeld: (() => void) | null = null;
  let cutHeld: (() => void) | null = null;
  const byLfs = new Map<string, { file: string; body: Buffer }>();
  for (const r of Object.values(repos)) for (const [f, b] of Object.entries(r.files)) if (isLfs(f)) byLfs.set(sha256(b), { file: f, body: b });

  const refuse = (res: ServerResponse, status: number, code: string | null, message: string): void => {
    res.writeHead(status, { 'content-type': 'application/json', ...(code ? { 'x-error-code': code } : {}) });
    res.end(JSON.stringify({ error: message }));
  };
  /** The Hub's access rules: null when allowed, else the refusal sent. */
  const denied = (req: IncomingMessage, res: ServerResponse, repo: HubRepo | undefined, id: string): boolean => {
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : null;
    const good = token !== null && tokens.includes(token);
    if (!repo || (repo.access === 'private' && !good)) {
      if (token === null || repo) refuse(res, 401, 'RepositoryNotFound', `Repository Not Found for url: ${id}`);
      else refuse(res, 404, 'RepositoryNotFound', `Repository Not Found for url: ${id}`);
      return true;
    }
    if (repo.access === 'gated' && !good) {
      refuse(res, token === null ? 401 : 403, 'GatedRepo', `Access to model ${id} is restricted`);
      return true;
    }
    return false;
  };

  const send = (req: IncomingMessage, res: ServerResponse, file: string, body: Buffer, extra: Record<string, string>): void => {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    if (start >= body.length && m) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` });
      res.end();
      return;
    }
    const part = body.subarray(start);
    res.writeHead(m ? 206 : 200, { 'content-length': String(part.length), 'accept-ranges': 'bytes', ...(m ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}), ...extra });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (hold && hold.file === file) {
      const n = hold.bytes;
      hold = null;
      res.write(part.subarray(0, n));
      // FIN before the promised length: the client sees the body end early, as a dropped connection shows it.
      cutHeld = () => res.socket?.end();
      new Promise<void>((resolve) => {
        releaseHeld = resolve;
        res.on('close', resolve);
      }).then(() => (res.destroyed ? undefined : res.end(part.subarray(n))));
      return;
    }
    res.end(part);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = decodeURIComponent(url.pathname);
    seen.push({ method: req.method ?? 'GET', path, range: req.headers.range, authorization: req.headers.authorization });
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(path);
    if (m) {
      const [, id, rev] = m as unknown as [string, string, string];
      const repo = repos[id];
      if (denied(req, res, repo, id)) return;
      if (rev !== 'main' && rev !== repo!.commit) return refuse(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id, modelId: id, sha: repo!.commit, siblings: Object.keys(repo!.files).map((rfilename) => ({ rfilename })) }));
      return;
    }
    m = /^\/lfs\/([0-9a-f]{64})$/.exec(path);
    if (m) {
      const blob = byLfs.get(m[1]!);
      if (!blob) return refuse(res, 404, null, 'no such object');
      return send(req, res, blob.file, blob.body, {});
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (m) {
      const [, id, rev, file] = m as unknown as [string, string, string, string];
      const repo = repos[id];
      if (denied(req, res, repo, id)) return;
      if (rev !== 'main' && rev !== repo!.commit) return refuse(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      const body = repo!.files[file];
      if (!body) return refuse(res, 404, 'EntryNotFound', `${file} does not exist`);
      const common = { 'x-repo-commit': repo!.commit };
      if (isLfs(file)) {
        const hex = sha256(body);
        res.writeHead(302, { location: `/lfs/${hex}`, 'x-linked-etag': `"${hex}"`, 'x-linked-size': String(body.length), etag: `"${gitSha1(Buffer.from(hex))}"`, ...common });
        res.end();
        return;
      }
      return send(req, res, file, body, { etag: `"${gitSha1(body)}"`, ...common });
    }
    refuse(res, 404, null, 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    holdOnce: (file, bytes) => (hold = { file, bytes }),
    release: () => releaseHeld?.(),
    cut: () => cutHeld?.(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
