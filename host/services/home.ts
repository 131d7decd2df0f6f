/**
 * The studio data folder: everything a user makes (runs, adapters, uploaded datasets, settings) lives under one
 * root, so the desktop app, the web host and the CLI all see the same studio.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export interface StudioHome {
  root: string;
  runs: string;
  adapters: string;
  datasets: string;
  settings: string;
}

/** Where the studio keeps its data: LORA_STUDIO_HOME, else the OS's usual per-user app-data folder. */
export function defaultHomeDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home: string = homedir()): string {
  if (env.LORA_STUDIO_HOME) return resolve(env.LORA_STUDIO_HOME);
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'LoRA Studio');
  if (platform === 'win32') return join(env.APPDATA || join(home, 'AppData', 'Roaming'), 'LoRA Studio');
  return join(env.XDG_CONFIG_HOME || join(home, '.config'), 'lora-studio');
}

/**
 * Refuses a data folder the studio cannot write (a read-only mount, no permission), at start and with the way out,
 * instead of failing later at the first run, upload or setting. A probe file is written and removed: permission bits
 * alone do not tell (root ignores them; a read-only mount does not show in them).
 */
export function assertWritableHome(home: StudioHome): void {
  const probe = join(home.root, `.write-test-${process.pid}`);
  try {
    writeFileSync(probe, 'ok');
    rmSync(probe, { force: true });
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === 'EROFS' ? 'it is on a read-only file system' : code === 'EACCES' || code === 'EPERM' ? 'this user may not write there' : code === 'ENOSPC' ? 'its disk is full' : e instanceof Error ? e.message : String(e);
    throw new Error(`the studio data folder ${home.root} is not writable (${why}${code ? `, ${code}` : ''}): the studio keeps its runs, adapters and settings there. Make it writable, or start the studio with LORA_STUDIO_HOME set to a writable folder`, { cause: e });
  }
}

/** The folder layout under a root; creates the folders so callers never race on a missing one. */
export function openHome(root: string = defaultHomeDir()): StudioHome {
  const abs = resolve(root);
  const home: StudioHome = {
    root: abs,
    runs: join(abs, 'runs'),
    adapters: join(abs, 'adapters'),
    datasets: join(abs, 'datasets'),
    settings: join(abs, 'settings.json'),
  };
  for (const dir of [home.root, home.runs, home.adapters, home.datasets]) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new Error(`cannot create the studio folder ${dir}: ${e instanceof Error ? e.message : String(e)} (set LORA_STUDIO_HOME to a writable folder)`, { cause: e });
    }
  }
  return home;
}
