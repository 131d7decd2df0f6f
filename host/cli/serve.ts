/**
 * `lora-studio serve`: the studio as a web host for a browser. Prints the URL with its token; the same services and
 * data folder (LORA_STUDIO_HOME) as the desktop app.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { acquireHomeLock } from '../services/home-lock.ts';
import { assertWritableHome, defaultHomeDir, openHome } from '../services/home.ts';
import { installProcessGuard } from '../process-guard.ts';
import { defaultRendererDir, startWebHost, type WebHost } from '../web-host.ts';

export const DEFAULT_PORT = 7420;

export interface ServeOptions {
  port: number;
  host: string;
  /** False when the port is the default, so a busy default falls back to a free port instead of failing. */
  portChosen: boolean;
  rendererDir?: string;
  /** Folders the browser may name besides the studio's own (--allow, repeatable). */
  allow?: string[];
  /** Called once it listens, before the URL is printed (the lock records the address then). */
  onListening?: (host: WebHost) => void;
}

/** --allow DIR, repeatable: each must be an existing folder. */
function collectAllowed(value: string, previous: string[]): string[] {
  const dir = resolve(value);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`--allow ${value}: no such folder`);
  return [...previous, dir];
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--port must be a whole number from 0 to 65535 (got ${JSON.stringify(value)})`);
  return n;
}

export async function serveCommand(opts: ServeOptions, out: NodeJS.WritableStream = process.stdout): Promise<WebHost> {
  const home = defaultHomeDir();
  const rendererDir = opts.rendererDir ?? defaultRendererDir();
  let host: WebHost;
  try {
    host = await startWebHost({ home, port: opts.port, host: opts.host, rendererDir, allow: opts.allow ?? [] });
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'EADDRINUSE' && !opts.portChosen) {
      host = await startWebHost({ home, port: 0, host: opts.host, rendererDir, allow: opts.allow ?? [] });
    } else if (code === 'EADDRINUSE') {
      throw new Error(`port ${opts.port} on ${opts.host} is in use; choose another with --port (0 picks a free one)`, { cause: e });
    } else if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
      throw new Error(`cannot listen on ${opts.host}: no such address on this machine (--host)`, { cause: e });
    } else {
      throw e;
    }
  }
  opts.onListening?.(host);
  const lines = [`LoRA Studio is running at ${host.url}`, `  data folder: ${host.services.home.root}`];
  for (const notice of host.services.notices) lines.push(`  note: ${notice}`);
  lines.push(`  files: only under the data folder, the Hugging Face cache and the Ollama store${opts.allow?.length ? `, and ${opts.allow.join(', ')}` : ''} (add folders with --allow DIR)`);
  if (!existsSync(join(rendererDir, 'index.html'))) lines.push(`  warning: the UI is not built (${rendererDir}); run 'npm run build:renderer' (npm run serve does it for you)`);
  if (opts.host !== '127.0.0.1' && opts.host !== 'localhost' && opts.host !== '::1') {
    lines.push(`  warning: listening on ${opts.host}: anyone who can reach this port and has the token can use the studio`);
  }
  lines.push('  press Ctrl+C to stop');
  out.write(`${lines.join('\n')}\n`);
  return host;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('start the studio as a web host and print its URL (with a random token) for a browser')
    .option('--port <n>', `port to listen on (0 picks a free one)`, parsePort, DEFAULT_PORT)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--renderer-dir <dir>', 'built UI to serve (default: dist/renderer)')
    .option('--allow <dir>', 'a folder the browser may use besides the data folder, the Hugging Face cache and the Ollama store (repeatable)', collectAllowed, [] as string[])
    .action(async (raw: { port: number; host: string; rendererDir?: string; allow: string[] }, cmd: Command) => {
      // The host outlives any one request: a stray rejection is logged with its request, never the end of the process.
      installProcessGuard();
      // One studio per data folder: a second `serve` (or the desktop app) on it is refused, naming the first.
      const studioHome = openHome(defaultHomeDir());
      assertWritableHome(studioHome);
      const lock = acquireHomeLock(studioHome.root, 'web');
      let host: WebHost;
      try {
        host = await serveCommand({ port: raw.port, host: raw.host, rendererDir: raw.rendererDir, allow: raw.allow, portChosen: cmd.getOptionValueSource('port') !== 'default', onListening: (h) => lock.setUrl(h.origin) });
      } catch (e) {
        lock.release();
        throw e;
      }
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          process.stdout.write('stopping the studio…\n');
          void host.close().finally(() => lock.release()).then(resolve, resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
