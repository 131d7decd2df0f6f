/** Driving the engine worker in tests: send one command, collect its events until the run ends. */
import type { EngineCommand, EngineEvent } from '../../common/protocol.ts';
import type { EngineHandle } from '../../engine/engine-host.ts';

/** Sends a command and collects events until done / stopped / error (each also handed to `onEvent` as it comes). */
export function runUntilEnd(engine: EngineHandle, cmd: EngineCommand, onEvent?: (e: EngineEvent) => void): Promise<EngineEvent[]> {
  return new Promise((resolve) => {
    const events: EngineEvent[] = [];
    const off = engine.on((e) => {
      events.push(e);
      onEvent?.(e);
      if (e.type === 'done' || e.type === 'stopped' || e.type === 'error') {
        off();
        resolve(events);
      }
    });
    engine.send(cmd);
  });
}
