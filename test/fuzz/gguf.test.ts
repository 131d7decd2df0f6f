/**
 * GGUF headers under the mutation fuzzer, kept small (the reader may change on another branch): a GGUF LoRA file the
 * studio writes, mutated, must read (header and every tensor) or fail with an error that starts with the file's
 * path — never a raw TypeError/RangeError, never a hang or an allocation the file cannot back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { exportAdapterGguf } from '../../engine/quant/gguf-lora.ts';
import { GgufError, readGguf, readTensorF32 } from '../../engine/quant/gguf-reader.ts';
import { describeFaults, fuzz, fuzzCases } from '../helpers/fuzz.ts';
import { writeTestAdapter } from '../helpers/peft-folder.ts';

const root = mkdtempSync(join(tmpdir(), 'fuzz-gguf-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('GGUF LoRA: every mutation reads or names the file', async () => {
  const adapter = join(root, 'adapter');
  writeTestAdapter(adapter, SAMPLE_MODEL_DIR, 2, ['q_proj']);
  const source = join(root, 'source.gguf');
  exportAdapterGguf(adapter, source, { dtype: 'f16', name: 'fuzz' });
  const file = join(root, 'mutated.gguf');
  const o = await fuzz(
    {
      base: readFileSync(source),
      kind: 'bytes',
      write: (b) => writeFileSync(file, b),
      read: () => {
        const g = readGguf(file);
        for (const t of g.tensors) readTensorF32(g, t);
      },
      typed: (e) => (e instanceof GgufError || (e instanceof Error && Object.getPrototypeOf(e) === Error.prototype)) && e.message.startsWith(file),
    },
    fuzzCases(400),
    13,
  );
  assert.equal(o.faults.length, 0, describeFaults('GGUF LoRA', o));
  assert.ok(o.ok > 0 && o.typed > 0, `both outcomes reached (ok ${o.ok}, typed ${o.typed})`);
});
