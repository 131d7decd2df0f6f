/** Studio services over throwaway home folders, closed and removed when the test file ends. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { StudioError } from '../../host/services/errors.ts';
import { createStudioServices, type StudioServices } from '../../host/services/studio-services.ts';

/** A temp folder (`tmp`) and `services(name)`: a web-host studio with its home at tmp/name. */
export function tempStudios(prefix: string): { tmp: string; services: (name: string) => StudioServices } {
  const tmp = mkdtempSync(join(tmpdir(), prefix));
  const opened: StudioServices[] = [];
  after(async () => {
    for (const s of opened) await s.close();
    rmSync(tmp, { recursive: true, force: true });
  });
  const services = (name: string): StudioServices => {
    // The tests' own files live in the temp folder: allowed as `serve --allow` would (allowed-roots.ts).
    const s = createStudioServices({ home: join(tmp, name), host: 'web', allowedDirs: [tmpdir()] });
    opened.push(s);
    return s;
  };
  return { tmp, services };
}

/** Runs `fn` and returns the StudioError it must throw. */
export async function refusal(fn: () => Promise<unknown>): Promise<StudioError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof StudioError, `expected a StudioError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a refusal');
}
