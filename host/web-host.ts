/**
 * The studio as a web host: the same services as the desktop app behind HTTP + WebSocket, for a browser.
 *
 *   POST /api/<method>             JSON params → StudioReply JSON
 *   GET  /events                   WebSocket; every StudioEventMessage as JSON
 *   GET  /download/adapter/<id>.zip  the adapter folder zipped (target of the browser's DownloadURL drag)
 *   GET  anything else             the built renderer (dist/renderer), nothing outside it
 *
 * Binds 127.0.0.1 unless told otherwise. /api, /events and /download need the token printed at start (header
 * `x-studio-token` or `?token=`); a request carrying an Origin must come from this host's own origin, and on a
 * loopback bind the Host header must name a loopback address (so a DNS-rebinding page cannot pose as us).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { zipSync, type Zippable } from 'fflate';
import { WebSocketServer, type WebSocket } from 'ws';
import { STUDIO_METHODS, type StudioErrorInfo, type StudioMethod } from '../common/protocol.ts';
import { safeFileName } from './services/adapter-store.ts';
import { StudioError, toStudioErrorInfo } from './services/errors.ts';
import type { StudioHome } from './services/home.ts';
import { createStudioServices, type StudioServices } from './services/studio-services.ts';
import { withRequest } from './process-guard.ts';

export interface WebHostOptions {
  home: string | StudioHome;
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  /** Built renderer (index.html + assets); defaults to dist/renderer of this checkout or package. */
  rendererDir?: string;
  /** Fixed token (tests); by default 32 random bytes. */
  token?: string;
  /** Use these services instead of creating them (they are not closed with the host then). */
  services?: StudioServices;
  /** Folders requests may name besides the studio's own (`serve --allow DIR`); see services/allowed-roots.ts. */
  allow?: readonly string[];
}

export interface WebHost {
  /** The URL to open, token included. */
  url: string;
  origin: string;
  port: number;
  host: string;
  token: string;
  services: StudioServices;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 300 * 1024 * 1024;

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.webmanifest': 'application/manifest+json',
};

/** dist/renderer of this checkout or package: ../dist/renderer from electron/*.ts, ../renderer from dist/electron/. */
export function defaultRendererDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // From sources, ../renderer is the Vite project (its index.html is not the built page), so never fall back to it.
  return import.meta.url.endsWith('.ts') ? join(here, '..', 'dist', 'renderer') : join(here, '..', 'renderer');
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

function isLoopback(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function hostnameOf(hostHeader: string): string {
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  const colon = hostHeader.lastIndexOf(':');
  return colon >= 0 ? hostHeader.slice(0, colon) : hostHeader;
}

function sameToken(given: string | null | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function refuse(res: ServerResponse, status: number, message: string): void {
  const error: StudioErrorInfo = { message };
  sendJson(res, status, { ok: false, error });
}

class BodyTooLarge extends StudioError {}

/** How long, and how much more, an over-size body is read and thrown away so its sender gets the 413 reply. */
const DRAIN_AFTER_LIMIT_MS = 10_000;
const DRAIN_AFTER_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * The body, up to MAX_BODY_BYTES. Past that the request is refused with BodyTooLarge, and the rest of the body is
 * read and dropped (up to a bound) instead of the socket being destroyed at once: a client still sending would
 * otherwise see a connection reset instead of the 413 and its message.
 */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (over) {
        if (size > MAX_BODY_BYTES + DRAIN_AFTER_LIMIT_BYTES) req.destroy();
        return;
      }
      if (size > MAX_BODY_BYTES) {
        over = true;
        chunks.length = 0;
        reject(new BodyTooLarge({ message: `request body is over ${MAX_BODY_BYTES / 1024 / 1024} MiB; datasets that large go next to the server (a path under the data folder or an --allow folder), not through the browser` }));
        setTimeout(() => req.destroy(), DRAIN_AFTER_LIMIT_MS).unref();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolveBody(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Every file of a folder (recursively) as zip entries; already-dense weights are stored, text is deflated. */
function zipFolder(dir: string, prefix = ''): Zippable {
  const out: Zippable = {};
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) Object.assign(out, zipFolder(full, `${prefix}${name}/`));
    else out[`${prefix}${name}`] = [new Uint8Array(readFileSync(full)), { level: name.endsWith('.safetensors') ? 0 : 6 }];
  }
  return out;
}

/** A path under `root` for a URL path, or null when it would leave `root` (by `..`, an absolute part or a link). */
export function resolveInside(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const candidate = resolve(root, `.${decoded.startsWith('/') ? decoded : `/${decoded}`}`);
  const rel = relative(root, candidate);
  if (rel.startsWith('..') || isAbsolute(rel)) return null;
  if (!existsSync(candidate)) return candidate;
  // The real file must be inside the real root too, so a symlink cannot point out of the folder.
  const realRoot = realpathSync(root);
  const real = realpathSync(candidate);
  const realRel = relative(realRoot, real);
  if (realRel.startsWith('..') || isAbsolute(realRel)) return null;
  return real;
}

export async function startWebHost(options: WebHostOptions): Promise<WebHost> {
  const bindHost = options.host ?? '127.0.0.1';
  const token = options.token ?? randomBytes(32).toString('base64url');
  const services = options.services ?? createStudioServices({ home: options.home, host: 'web', allowedDirs: options.allow ?? [] });
  const ownServices = !options.services;
  const rendererDir = resolve(options.rendererDir ?? defaultRendererDir());

  /** Loopback Host, same-origin Origin (scheme + the Host header the page reached us by), then the token. */
  function checkCaller(req: IncomingMessage, url: URL): { ok: true } | { ok: false; status: number; message: string } {
    const hostHeader = req.headers.host ?? '';
    if (isLoopback(bindHost) && !isLoopback(hostnameOf(hostHeader))) {
      return { ok: false, status: 403, message: `host ${JSON.stringify(hostHeader)} is not allowed: this studio only answers on 127.0.0.1/localhost` };
    }
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${hostHeader}`) {
      return { ok: false, status: 403, message: `origin ${JSON.stringify(origin)} is not allowed: only pages served by this studio (http://${hostHeader}) may call it` };
    }
    const given = (req.headers['x-studio-token'] as string | undefined) ?? url.searchParams.get('token');
    if (!given) return { ok: false, status: 401, message: 'missing token: open the URL that `lora-studio serve` printed (it ends in ?token=…)' };
    if (!sameToken(given, token)) return { ok: false, status: 403, message: 'wrong token: open the URL that `lora-studio serve` printed in this session' };
    return { ok: true };
  }

  async function handleApi(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    if (req.method !== 'POST') return refuse(res, 405, `use POST for /api/${method}`);
    if (!(STUDIO_METHODS as readonly string[]).includes(method)) return refuse(res, 404, `unknown request ${JSON.stringify(method)}`);
    let params: unknown = {};
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch (e) {
      if (!(e instanceof BodyTooLarge)) throw e;
      return sendJson(res, 413, { ok: false, error: toStudioErrorInfo(e) }, { connection: 'close' });
    }
    if (body.length > 0) {
      try {
        params = JSON.parse(body.toString('utf8'));
      } catch (e) {
        return refuse(res, 400, `request body is not JSON: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    try {
      const result = await services.handle(method as StudioMethod, params);
      sendJson(res, 200, { ok: true, result });
    } catch (e) {
      const known = e instanceof StudioError || (e instanceof Error && ('file' in e || 'line' in e));
      sendJson(res, known ? 400 : 500, { ok: false, error: toStudioErrorInfo(e) });
    }
  }

  function handleDownload(res: ServerResponse, rawId: string): void {
    const id = decodeURIComponent(rawId);
    services
      .handle('adapters.list', {})
      .then((list) => {
        const adapter = list.find((a) => a.id === id);
        if (!adapter) return refuse(res, 404, `no adapter with id ${JSON.stringify(id)}`);
        const zip = zipSync(zipFolder(adapter.path));
        const fileName = `${safeFileName(adapter.name, adapter.id)}.zip`;
        res.writeHead(200, {
          'content-type': 'application/zip',
          'content-length': zip.byteLength,
          'content-disposition': `attachment; filename="${fileName.replace(/[^\x20-\x7e]|"/g, '_')}"; filename*=UTF-8''${encodeURIComponent(fileName)}`,
          'cache-control': 'no-store',
        });
        res.end(Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength));
      })
      .catch((e: unknown) => refuse(res, 500, toStudioErrorInfo(e).message));
  }

  function serveStatic(req: IncomingMessage, res: ServerResponse, pathname: string): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, 405, `${req.method ?? 'this method'} is not allowed here`);
    const wanted = pathname === '/' ? '/index.html' : pathname;
    const file = resolveInside(rendererDir, wanted);
    if (file === null) return refuse(res, 403, `path ${JSON.stringify(pathname)} is outside the studio's files`);
    if (!existsSync(file) || !statSync(file).isFile()) {
      if (pathname === '/' || pathname === '/index.html') {
        res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`The studio's UI is not built (no ${join(rendererDir, 'index.html')}). Run: npm run build:renderer\n`);
        return;
      }
      return refuse(res, 404, `not found: ${pathname}`);
    }
    const body = readFileSync(file);
    res.writeHead(200, {
      'content-type': MIME[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': body.length,
      'x-content-type-options': 'nosniff',
      'cache-control': file.endsWith('.html') ? 'no-store' : 'max-age=3600',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  function route(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const guarded = path.startsWith('/api/') || path === '/events' || path.startsWith('/download/');
    if (guarded) {
      const check = checkCaller(req, url);
      if (!check.ok) return refuse(res, check.status, check.message);
    } else if (isLoopback(bindHost) && !isLoopback(hostnameOf(req.headers.host ?? ''))) {
      return refuse(res, 403, 'this studio only answers on 127.0.0.1/localhost');
    }
    if (path.startsWith('/api/')) {
      handleApi(req, res, path.slice('/api/'.length)).catch((e: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { ok: false, error: toStudioErrorInfo(e) });
      });
      return;
    }
    if (path === '/events') return refuse(res, 426, 'open /events as a WebSocket');
    const download = /^\/download\/adapter\/([^/]+)\.zip$/.exec(path);
    if (download) return handleDownload(res, download[1]);
    if (path.startsWith('/download/')) return refuse(res, 404, `not found: ${path}`);
    serveStatic(req, res, path);
  }

  const server = createServer((req, res) => {
    try {
      // A stray error this request leaves behind is reported with it (process-guard.ts).
      withRequest(`${req.method ?? '?'} ${(req.url ?? '/').split('?')[0]}`, () => route(req, res));
    } catch (e) {
      // A malformed URL or a vanished file answers this request with an error; the host stays up.
      if (!res.headersSent) refuse(res, e instanceof URIError || e instanceof TypeError ? 400 : 500, toStudioErrorInfo(e).message);
      else res.destroy();
    }
  });

  const wss = new WebSocketServer({ noServer: true });
  const sockets = new Set<WebSocket>();
  const unsubscribe = services.onEvent((message) => {
    const text = JSON.stringify(message);
    for (const ws of sockets) if (ws.readyState === ws.OPEN) ws.send(text);
  });
  server.on('upgrade', (req, socket, head) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      socket.destroy();
      return;
    }
    const check = url.pathname === '/events' ? checkCaller(req, url) : { ok: false as const, status: 404, message: `no WebSocket at ${url.pathname}` };
    if (!check.ok) {
      const body = JSON.stringify({ ok: false, error: { message: check.message } });
      socket.end(`HTTP/1.1 ${check.status} ${check.status === 401 ? 'Unauthorized' : check.status === 403 ? 'Forbidden' : 'Not Found'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.on('error', () => sockets.delete(ws));
    });
  });

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, bindHost, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = bindHost.includes(':') ? `[${bindHost}]` : bindHost === '0.0.0.0' ? '127.0.0.1' : bindHost;
  const origin = `http://${urlHost}:${port}`;

  return {
    url: `${origin}/?token=${token}`,
    origin,
    port,
    host: bindHost,
    token,
    services,
    async close() {
      unsubscribe();
      for (const ws of sockets) ws.terminate();
      wss.close();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      if (ownServices) await services.close();
    },
  };
}
