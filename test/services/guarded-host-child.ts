/**
 * A web host process for the process-guard test: the real host on a data folder (argv[2]), guarded as `serve` is
 * unless argv[3] is `--unguarded`. One of its event listeners misbehaves the way a careless transport or library
 * would: on every settings change it leaves a promise rejecting unhandled and throws from a timer. Prints
 * `{"port":N,"token":"…"}` once it listens.
 */
import { installProcessGuard } from '../../host/process-guard.ts';
import { startWebHost } from '../../host/web-host.ts';

const home = process.argv[2];
if (!home) throw new Error('usage: guarded-host-child.ts <home> [--unguarded]');
if (process.argv[3] !== '--unguarded') installProcessGuard();
const host = await startWebHost({ home, port: 0 });
host.services.onEvent((m) => {
  if (m.event !== 'settings.changed') return;
  void Promise.reject(new Error('stray rejection from a settings listener'));
  setTimeout(() => {
    throw new Error('stray throw from a timer');
  }, 5);
});
process.stdout.write(`${JSON.stringify({ port: host.port, token: host.token })}\n`);
process.on('SIGTERM', () => void host.close().then(() => process.exit(0)));
