/**
 * A studio process for the crash tests: opens the services on a data folder (argv[2]); with a run config (argv[3],
 * JSON) it starts that run. When nothing executes or waits any more it
 * closes the services and exits 0. Events go to stdout as short JSON lines ({log}, {steps, truncatedAfter?}, {state}).
 * The tests SIGKILL it mid-run and start another one on the same folder: with LORA_CRASH_AFTER_CHECKPOINT=k in its
 * environment it SIGKILLs itself the moment the database holds two steps past a checkpoint at step k or later. From
 * inside, because a test process reading these lines lags behind a fast machine's steps by a whole run.
 */
import { join } from 'node:path';
import type { StudioEventMessage } from '../../common/protocol.ts';
import { listCheckpoints } from '../../engine/train/checkpoint.ts';
import { createStudioServices } from '../../host/services/studio-services.ts';

const home = process.argv[2];
const config = process.argv[3] ? (JSON.parse(process.argv[3]) as unknown) : null;
if (!home) throw new Error('usage: studio-child.ts <home> [run-config-json]');

const write = (o: unknown): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};
const crashAfter = process.env.LORA_CRASH_AFTER_CHECKPOINT ? Number(process.env.LORA_CRASH_AFTER_CHECKPOINT) : null;
const services = createStudioServices({ home, host: 'web' });
// Compact lines: a pipe that fills up would hold the studio back, and the tests want it to run freely.
services.onEvent((m: StudioEventMessage) => {
  if (m.event === 'run.log') write({ log: (m.data as StudioEventMessage<'run.log'>['data']).message });
  else if (m.event === 'run.metrics') {
    const d = m.data as StudioEventMessage<'run.metrics'>['data'];
    write({ steps: d.points.map((p) => p.step), ...(d.truncatedAfter !== undefined ? { truncatedAfter: d.truncatedAfter } : {}) });
    // The points of an event are stored before it is sent; the newest checkpoint on disk is the one a resume takes.
    const stored = Math.max(0, ...d.points.map((p) => p.step));
    const onDisk = crashAfter === null ? -1 : (listCheckpoints(join(home, 'runs', d.runId))[0]?.step ?? -1);
    if (crashAfter !== null && onDisk >= crashAfter && stored >= onDisk + 2) process.kill(process.pid, 'SIGKILL');
  } else if (m.event === 'run.updated') write({ state: (m.data as StudioEventMessage<'run.updated'>['data']).state });
});
if (config !== null) {
  const run = await services.handle('runs.start', { config });
  write({ started: run.id });
}
await services.whenIdle();
await services.close();
write({ idle: true });
