/**
 * Renaming adapters: through the services ('adapters.rename': the list and 'adapters.changed' show the new name, it
 * survives a restart, bad names and unknown ids are refused naming the field), and through the CLI on a data folder
 * no studio runs (`adapters rename`, `adapters delete` with --dry-run first), the real binary included.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import type { AdapterSummary, StudioEventMessage } from '../../common/protocol.ts';
import { deleteAdapterCli, listAdaptersCli, renameAdapterCli } from '../../host/cli/adapters.ts';
import { writeTestAdapter } from '../helpers/peft-folder.ts';
import { repoRoot } from '../helpers/python.ts';
import { refusal, tempStudios } from '../helpers/temp-studio.ts';

const MODEL = join(repoRoot, 'assets/sample-model');
const { tmp, services } = tempStudios('lora-adapter-rename-');
const source = join(tmp, 'peft');
writeTestAdapter(source, MODEL, 4, ['q_proj', 'v_proj']);
const bin = fileURLToPath(new URL('../../bin/lora-studio.mjs', import.meta.url));

function quiet() {
  let out = '';
  return { io: { stdout: { write: (s: string) => (out += s) } }, out: () => out };
}

test('adapters.rename: the list and the event show the name, a restart keeps it, bad input is refused by field', async () => {
  const s = services('studio');
  const { adapter } = await s.handle('adapters.import', { path: source, modelPath: MODEL, name: 'first name' });
  const changed: AdapterSummary[][] = [];
  s.onEvent((m: StudioEventMessage) => {
    if (m.event === 'adapters.changed') changed.push(m.data as AdapterSummary[]);
  });
  const renamed = await s.handle('adapters.rename', { id: adapter.id, name: '  support bot v2  ' });
  assert.equal(renamed.name, 'support bot v2', 'trimmed');
  assert.equal(renamed.id, adapter.id);
  assert.equal(renamed.path, adapter.path, 'the folder stays');
  assert.deepEqual(
    (await s.handle('adapters.list', {})).map((a) => a.name),
    ['support bot v2'],
  );
  assert.deepEqual(changed.at(-1)?.map((a) => a.name), ['support bot v2']);

  const empty = await refusal(() => s.handle('adapters.rename', { id: adapter.id, name: '   ' }));
  assert.equal(empty.info.fieldErrors?.[0]?.field ?? empty.info.field, 'name');
  assert.match(empty.message, /cannot be empty/);
  const long = await refusal(() => s.handle('adapters.rename', { id: adapter.id, name: 'x'.repeat(201) }));
  assert.match(long.message, /at most 200 characters/);
  const missing = await refusal(() => s.handle('adapters.rename', { id: 'nope', name: 'x' }));
  assert.match(missing.message, /no adapter with id "nope"/);
  await s.close();

  const again = services('studio');
  assert.deepEqual(
    (await again.handle('adapters.list', {})).map((a) => a.name),
    ['support bot v2'],
  );
  await again.close();
});

test('the CLI renames and deletes adapters of a folder no studio runs; the binary has the command', async () => {
  const home = join(tmp, 'cli');
  const s = services('cli');
  const { adapter } = await s.handle('adapters.import', { path: source, modelPath: MODEL, name: 'cli adapter' });
  await s.close();

  const q = quiet();
  assert.equal(renameAdapterCli(adapter.id, 'renamed by cli', { home }, q.io).name, 'renamed by cli');
  assert.match(q.out(), new RegExp(`adapter ${adapter.id}: now "renamed by cli"`));
  assert.deepEqual(
    listAdaptersCli({ home }, quiet().io).map((a) => a.name),
    ['renamed by cli'],
  );
  assert.throws(() => renameAdapterCli(adapter.id, '', { home }, quiet().io), /cannot be empty/);

  const { stdout } = await promisify(execFile)(process.execPath, [bin, 'adapters', 'rename', adapter.id, 'from the binary', '--json'], { env: { ...process.env, LORA_STUDIO_HOME: home, LORA_STUDIO_FROM_SOURCE: '1' } });
  assert.equal((JSON.parse(stdout) as AdapterSummary).name, 'from the binary');

  const dry = deleteAdapterCli(adapter.id, { home, dryRun: true }, quiet().io);
  assert.equal(dry.deleted, false);
  assert.ok(dry.freedBytes > 0);
  assert.ok(existsSync(adapter.path), 'a dry run removes nothing');
  const gone = deleteAdapterCli(adapter.id, { home }, quiet().io);
  assert.equal(gone.deleted, true);
  // The dry run measures the folder; the deletion also counts the studio's small adapters/<id>.json beside it.
  assert.ok(gone.freedBytes >= dry.freedBytes && gone.freedBytes - dry.freedBytes < 4096, `${gone.freedBytes} vs ${dry.freedBytes}`);
  assert.equal(existsSync(adapter.path), false);
  assert.deepEqual(listAdaptersCli({ home }, quiet().io), []);
});
