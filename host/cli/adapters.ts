/**
 * `lora-studio adapters list|rename|delete`: the Adapters list of a studio data folder from the command line. They
 * change the folder's files and database directly (adapters/<id>.json holds the name; a running studio reads the
 * list from there, so its windows show the change at their next refresh).
 */
import type { Command } from 'commander';
import type { AdapterSummary } from '../../common/protocol.ts';
import type { AdapterDeleteResult } from '../../common/run-info.ts';
import { formatBytes } from '../../engine/host-api.ts';
import { AdapterStore, renameAdapter } from '../services/adapter-store.ts';
import { openStudioDb, type StudioDb } from '../services/db.ts';
import { defaultHomeDir, openHome } from '../services/home.ts';
import { deleteAdapter } from '../services/run-catalog.ts';

export interface AdaptersFlags {
  home?: string;
  json?: boolean;
}

export interface AdaptersCliIo {
  stdout: { write(s: string): unknown };
}

function withStores<T>(flags: AdaptersFlags, fn: (db: StudioDb, adapters: AdapterStore) => T): T {
  const dir = flags.home ?? defaultHomeDir();
  const db = openStudioDb(dir);
  try {
    return fn(db, new AdapterStore(openHome(dir)));
  } finally {
    db.close();
  }
}

export function listAdaptersCli(flags: AdaptersFlags, io: AdaptersCliIo = process): AdapterSummary[] {
  const list = withStores(flags, (_db, adapters) => adapters.list());
  if (flags.json) io.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
  else if (list.length === 0) io.stdout.write('no adapters\n');
  else for (const a of list) io.stdout.write(`${a.id}  ${a.name}  r${a.r} α${a.alpha}  ${formatBytes(a.sizeBytes)}  ${a.path}\n`);
  return list;
}

export function renameAdapterCli(id: string, name: string, flags: AdaptersFlags, io: AdaptersCliIo = process): AdapterSummary {
  const renamed = withStores(flags, (db, adapters) => renameAdapter(db, adapters, id, name));
  io.stdout.write(flags.json ? `${JSON.stringify(renamed, null, 2)}\n` : `adapter ${id}: now "${renamed.name}"\n`);
  return renamed;
}

export function deleteAdapterCli(id: string, flags: AdaptersFlags & { dryRun?: boolean }, io: AdaptersCliIo = process): AdapterDeleteResult {
  const r = withStores(flags, (db, adapters) => deleteAdapter(db, adapters, id, flags.dryRun ? { dryRun: true } : {}));
  const message = r.deleted ? `adapter ${id} ("${r.name}") deleted: ${formatBytes(r.freedBytes)} freed` : `adapter ${id} ("${r.name}") would free ${formatBytes(r.freedBytes)}; nothing was removed`;
  io.stdout.write(flags.json ? `${JSON.stringify(r, null, 2)}\n` : `${message}\n`);
  return r;
}

export function registerAdapters(program: Command): void {
  const cmd = program.command('adapters').description('list, rename and delete the adapters of the studio data folder (LORA_STUDIO_HOME)');
  cmd
    .command('list')
    .description('the adapters, newest first')
    .option('--home <dir>', 'studio data folder (default: LORA_STUDIO_HOME or the app-data folder)')
    .option('--json', 'print as JSON')
    .action((flags: AdaptersFlags) => void listAdaptersCli(flags));
  cmd
    .command('rename')
    .description("give an adapter a new name (its folder and id stay)")
    .argument('<id>', 'adapter id (see `adapters list`)')
    .argument('<name>', 'the new name')
    .option('--home <dir>', 'studio data folder')
    .option('--json', 'print the adapter as JSON')
    .action((id: string, name: string, flags: AdaptersFlags) => void renameAdapterCli(id, name, flags));
  cmd
    .command('delete')
    .description("remove an adapter's folder from the disk and the list (runs that made it keep their record)")
    .argument('<id>', 'adapter id')
    .option('--dry-run', 'only say what it would free')
    .option('--home <dir>', 'studio data folder')
    .option('--json', 'print the outcome as JSON')
    .action((id: string, flags: AdaptersFlags & { dryRun?: boolean }) => void deleteAdapterCli(id, flags));
}
