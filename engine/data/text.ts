import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { SourceRecord } from './record.ts';

/**
 * Plain text: one example per paragraph, paragraphs being separated by one or more blank lines (a line holding only
 * whitespace counts as blank). Paragraphs keep their inner line breaks. Prose, code and chat logs split naturally at
 * blank lines, whereas one example per line would cut most prose into fragments too short to learn from.
 * `line` is the paragraph's first line. Streamed: only the current paragraph is held.
 */
export async function* readText(path: string): AsyncGenerator<SourceRecord> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let line = 0;
  let start = 0;
  let paragraph: string[] = [];
  for await (let text of lines) {
    line++;
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.trim() === '') {
      if (paragraph.length > 0) yield { line: start, value: { text: paragraph.join('\n') } };
      paragraph = [];
      continue;
    }
    if (paragraph.length === 0) start = line;
    paragraph.push(text);
  }
  if (paragraph.length > 0) yield { line: start, value: { text: paragraph.join('\n') } };
}
