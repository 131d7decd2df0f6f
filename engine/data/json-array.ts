import { createReadStream } from 'node:fs';
import { DatasetError } from './errors.ts';
import type { SourceRecord } from './record.ts';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const NEWLINE = 0x0a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0xfeff;
}

/**
 * A top-level JSON array (`[ {...}, {...} ]`), streamed: the file is scanned in chunks, each element's text is cut out
 * by tracking strings and nesting, and only that element is parsed. So a multi-GB array never sits in memory whole,
 * and every element knows the line it starts on.
 */
export async function* readJsonArray(path: string, chunkBytes = 1 << 20): AsyncGenerator<SourceRecord> {
  let line = 1;
  let opened = false;
  let closed = false;
  let depth = 0; // nesting inside the current element
  let inElement = false;
  let inString = false;
  let escaped = false;
  let elementLine = 0;
  let pieces: string[] = [];

  const finish = (text: string): SourceRecord => {
    try {
      return { line: elementLine, value: JSON.parse(text) };
    } catch (err) {
      return { line: elementLine, error: `invalid JSON (${err instanceof Error ? err.message : String(err)})` };
    }
  };

  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: chunkBytes });
  for await (const chunkValue of stream) {
    const chunk = chunkValue as string;
    const out: SourceRecord[] = [];
    let start = inElement ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (c === NEWLINE) line++;
      if (inString) {
        if (escaped) escaped = false;
        else if (c === BACKSLASH) escaped = true;
        else if (c === QUOTE) inString = false;
        continue;
      }
      if (!opened) {
        if (isSpace(c)) continue;
        if (c !== OPEN_BRACKET) throw new DatasetError(path, 'not a JSON array: the file must start with "["', { line });
        opened = true;
        continue;
      }
      if (closed) {
        if (!isSpace(c)) throw new DatasetError(path, 'unexpected text after the closing "]" of the JSON array', { line });
        continue;
      }
      if (!inElement) {
        if (isSpace(c) || c === COMMA) continue;
        if (c === CLOSE_BRACKET) {
          closed = true;
          continue;
        }
        inElement = true;
        elementLine = line;
        start = i;
        pieces = [];
        if (c === OPEN_BRACE || c === OPEN_BRACKET) depth = 1;
        else if (c === QUOTE) {
          depth = 0;
          inString = true;
        } else depth = 0;
        continue;
      }
      if (c === QUOTE) inString = true;
      else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
      else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        if (depth === 0) {
          // a scalar element ended by the array's own "]"
          pieces.push(chunk.slice(start, i));
          out.push(finish(pieces.join('')));
          inElement = false;
          if (c === CLOSE_BRACKET) closed = true;
          continue;
        }
        depth--;
        if (depth === 0) {
          pieces.push(chunk.slice(start, i + 1));
          out.push(finish(pieces.join('')));
          inElement = false;
        }
      } else if (c === COMMA && depth === 0) {
        pieces.push(chunk.slice(start, i));
        out.push(finish(pieces.join('')));
        inElement = false;
      }
    }
    if (inElement) pieces.push(chunk.slice(start));
    yield* out;
  }
  if (!opened) throw new DatasetError(path, 'the file is empty');
  if (inElement) yield { line: elementLine, error: 'unexpected end of file inside this element' };
  else if (!closed) yield { line, error: 'unexpected end of file: the JSON array is not closed with "]"' };
}
