/**
 * The studio data folder: everything a user makes (runs, adapters, uploaded datasets, settings) lives under one
 * root, so the desktop app, the web host and the CLI all see the same studio.
 */
import { mkdirSync } from 'node:fs';
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
