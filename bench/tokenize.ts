/**
 * Tokenization throughput: writes a ~100 MB Alpaca JSONL of real text (the sample dataset's instructions,
 * repeated) once, then prepares it with the sample model's tokenizer and reports tokens/s.
 */
import { createWriteStream, existsSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareDataset } from '../engine/data/prepare.ts';
import { loadTokenizer } from '../engine/io/tokenizer.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../engine/io/sample.ts';

const target = Number(process.env.BENCH_TOKENIZE_MB ?? 100) * 1024 * 1024;
const file = join(tmpdir(), `lora-studio-bench-tokenize-${target}.jsonl`);
if (!existsSync(file) || statSync(file).size < target) {
  const lines = readFileSync(SAMPLE_DATASET_PATH, 'utf8').split('\n').filter(Boolean);
  const out = createWriteStream(file);
  let written = 0;
  for (let i = 0; written < target; i++) {
    const line = lines[i % lines.length] + '\n';
    written += Buffer.byteLength(line);
    if (!out.write(line)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(() => r()));
}
const tokenizer = await loadTokenizer(SAMPLE_MODEL_DIR);
const t0 = performance.now();
const ds = await prepareDataset({ path: file, format: 'alpaca', tokenizer, maxSeqLen: 1 << 20, validationPercent: 0, seed: 1, badRecords: 'fail', trainOn: 'all' });
const secs = (performance.now() - t0) / 1000;
const tokens = ds.tokenLengths.reduce((a, b) => a + b, 0);
console.log(JSON.stringify({ bench: 'tokenize', fileMiB: statSync(file).size / 1048576, records: ds.records, tokens, seconds: secs, tokensPerSecond: tokens / secs, peakRssMiB: process.resourceUsage().maxRSS / 1024 }));
