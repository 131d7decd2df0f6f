/**
 * `lora-studio export-ollama <adapter>`: an adapter (an id of the Adapters list, or any PEFT adapter folder) as a
 * folder for `ollama create` — adapter.gguf and a Modelfile FROM its base (engine/export/ollama-modelfile.ts) —
 * printing the command to run. Same as the Ollama button of the Adapters list.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { exportForOllama, type OllamaExport } from '../../engine/host-api.ts';
import { AdapterStore } from '../services/adapter-store.ts';
import { defaultHomeDir, openHome } from '../services/home.ts';

export interface ExportOllamaFlags {
  out?: string;
  model?: string;
  home?: string;
  json?: boolean;
}

export function exportOllamaCli(adapter: string, flags: ExportOllamaFlags, io: { stdout: { write(s: string): unknown } } = process): OllamaExport {
  let dir: string;
  let name: string | undefined;
  if (existsSync(join(adapter, 'adapter_config.json'))) {
    dir = resolve(adapter);
  } else {
    const summary = new AdapterStore(openHome(flags.home ?? defaultHomeDir())).get(adapter);
    dir = summary.path;
    name = summary.name;
  }
  const r = exportForOllama(dir, resolve(flags.out ?? join(dir, 'ollama')), { ...(flags.model ? { modelDir: flags.model } : {}), ...(name ? { name } : {}) });
  io.stdout.write(flags.json ? `${JSON.stringify(r, null, 2)}\n` : `wrote ${r.modelfile} (FROM ${r.from}) and ${r.adapter}\ncreate the Ollama model with:\n  ${r.command}\n`);
  return r;
}

export function registerExportOllama(program: Command): void {
  program
    .command('export-ollama')
    .description('write adapter.gguf and a Modelfile (FROM the base, ADAPTER, TEMPLATE/stop) for `ollama create`')
    .argument('<adapter>', 'adapter id (see `adapters list`) or a PEFT adapter folder')
    .option('--out <dir>', "folder to write into (default: the adapter folder's ollama/)")
    .option('--model <path>', "the base model (default: the adapter's base_model_name_or_path)")
    .option('--home <dir>', 'studio data folder (for an adapter id)')
    .option('--json', 'print the outcome as JSON')
    .action((adapter: string, flags: ExportOllamaFlags) => void exportOllamaCli(adapter, flags));
}
