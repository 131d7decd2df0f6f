/**
 * A 50 MB JSONL file is streamed: the heap grows by far less than the file while every record is read, normalised
 * and rendered (inspectDataset without a model keeps only counts and a short preview).
 */
import assert from 'node:assert/strict';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { inspectDataset } from '../../engine/data/inspect.ts';
import { readJsonl } from '../../engine/data/jsonl.ts';
import { brownSentences } from '../helpers/data-tokenizers.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const dir = mkdtempSync(join(tmpdir(), 'data-stream-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const TARGET_BYTES = 50 * 1024 * 1024;

async function writeBigJsonl(path: string): Promise<number> {
  const sentences = brownSentences(400);
  const out = createWriteStream(path);
  let bytes = 0;
  let n = 0;
  while (bytes < TARGET_BYTES) {
    const lines: string[] = [];
    for (let k = 0; k < 1000; k++, n++) {
      lines.push(JSON.stringify({ instruction: `Continue passage ${n}.`, input: sentences[n % 400], output: sentences[(n * 7 + 3) % 400] }));
    }
    const chunk = `${lines.join('\n')}\n`;
    bytes += Buffer.byteLength(chunk);
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return n;
}

it('streams a 50 MB JSONL with bounded memory', async () => {
  const path = join(dir, 'big.jsonl');
  const n = await writeBigJsonl(path);
  assert.ok(statSync(path).size >= TARGET_BYTES);

  // Retained memory: collect garbage before each sample, so only what the pipeline holds on to is counted.
  const sampler = (): { stop: () => number } => {
    gc();
    const base = process.memoryUsage().heapUsed;
    let peak = 0;
    const timer = setInterval(() => {
      gc();
      peak = Math.max(peak, process.memoryUsage().heapUsed - base);
    }, 50);
    return {
      stop: () => {
        clearInterval(timer);
        return peak;
      },
    };
  };

  const s1 = sampler();
  let count = 0;
  for await (const rec of readJsonl(path)) {
    if (rec.error !== undefined) assert.fail(rec.error);
    count++;
  }
  const peak = s1.stop();
  assert.equal(count, n);

  const s2 = sampler();
  const summary = await inspectDataset({ path, format: 'auto', tokenizer: null, show: 2 });
  const peak2 = s2.stop();
  assert.equal(summary.format, 'alpaca');
  assert.equal(summary.records, n);
  assert.equal(summary.preview.length, 2);
  // Holding the file would take over 50 MiB as one string, and several times that as parsed records.
  const limit = 12 * 1024 * 1024;
  assert.ok(peak < limit, `reader retained ${(peak / 2 ** 20).toFixed(1)} MiB`);
  assert.ok(peak2 < limit, `inspect retained ${(peak2 / 2 ** 20).toFixed(1)} MiB`);
  console.log(`records ${n}, reader retained +${(peak / 2 ** 20).toFixed(1)} MiB, inspect retained +${(peak2 / 2 ** 20).toFixed(1)} MiB`);
});
