/**
 * A studio process for the crash tests: opens the services on a data folder (argv[2]); with a run config (argv[3],
 * JSON) it starts that run. When nothing executes or waits any more it
 * closes the services and exits 0. Events go to stdout as short JSON lines ({log}, {steps, truncatedAfter?}, {state}).
 * The tests SIGKILL it mid-run and start another one on the same folder.
 */
import type { StudioEventMessage } from '../../common/protocol.ts';
import { createStudioServices } from '../../electron/services/studio-services.ts';

const home = process.argv[2];
const config = process.argv[3] ? (JSON.parse(process.argv[3]) as unknown) : null;
if (!home) throw new Error('usage: studio-child.ts <home> [run-config-json]');

const write = (o: unknown): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};
const services = createStudioServices({ home, host: 'web' });
// Compact lines: a pipe that fills up would hold the studio back, and the tests want it to run freely.
services.onEvent((m: StudioEventMessage) => {
  if (m.event === 'run.log') write({ log: (m.data as StudioEventMessage<'run.log'>['data']).message });
  else if (m.event === 'run.metrics') {
    const d = m.data as StudioEventMessage<'run.metrics'>['data'];
    write({ steps: d.points.map((p) => p.step), ...(d.truncatedAfter !== undefined ? { truncatedAfter: d.truncatedAfter } : {}) });
  } else if (m.event === 'run.updated') write({ state: (m.data as StudioEventMessage<'run.updated'>['data']).state });
});
if (config !== null) {
  const run = await services.handle('runs.start', { config });
  write({ started: run.id });
}
await services.whenIdle();
await services.close();
write({ idle: true });
