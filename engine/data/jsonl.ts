import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { SourceRecord } from './record.ts';

/** JSON Lines, read line by line (never the whole file); blank lines are ignored, line numbers are 1-based. */
export async function* readJsonl(path: string): AsyncGenerator<SourceRecord> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let line = 0;
  for await (let text of lines) {
    line++;
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      yield { line, error: `invalid JSON (${err instanceof Error ? err.message : String(err)})` };
      continue;
    }
    yield { line, value };
  }
}
