/**
 * run.json under the mutation fuzzer (test/helpers/fuzz.ts), both ways a user meets one: `lora-studio train
 * run.json` (readRunConfig: load, or an error that starts with the file's path — never a raw TypeError), and the
 * run folders the studio rebuilds its runs list from (RunStore: a mutated runs/<id>/run.json is imported or left out
 * with a warning naming it — it never stops the studio from opening, and never leaves an unreadable row).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DEFAULT_RUN_CONFIG } from '../../common/protocol.ts';
import { SAMPLE_DATASET_PATH, SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { readRunConfig } from '../../host/cli/train.ts';
import { encodeJson, newRunRecord, StudioDb } from '../../host/services/db.ts';
import { openHome } from '../../host/services/home.ts';
import { RunStore } from '../../host/services/run-store.ts';
import { describeFaults, fuzz, fuzzCases } from '../helpers/fuzz.ts';

const root = mkdtempSync(join(tmpdir(), 'fuzz-runjson-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('lora-studio train run.json: every mutation loads or is refused naming the file', async () => {
  const file = join(root, 'run.json');
  const base = Buffer.from(JSON.stringify({ ...DEFAULT_RUN_CONFIG, name: 'fuzzed', modelPath: SAMPLE_MODEL_DIR, datasetPath: SAMPLE_DATASET_PATH }, null, 2));
  const o = await fuzz(
    {
      base,
      kind: 'json',
      write: (b) => writeFileSync(file, b),
      read: () => readRunConfig(file),
      // Plain Errors whose message starts with the path; a TypeError or RangeError is a fault.
      typed: (e) => e instanceof Error && Object.getPrototypeOf(e) === Error.prototype && e.message.startsWith(file),
    },
    fuzzCases(500),
    7,
  );
  assert.equal(o.faults.length, 0, describeFaults('run.json (train)', o));
  assert.ok(o.ok > 0 && o.typed > 0, `both outcomes reached (ok ${o.ok}, typed ${o.typed})`);
});

test('runs/<id>/run.json: every mutation is imported or left out with a warning; the studio always opens', async () => {
  const home = openHome(join(root, 'home'));
  const id = 'run-20261203-080000-abcdef';
  mkdirSync(join(home.runs, id), { recursive: true });
  const file = join(home.runs, id, 'run.json');
  const now = '2026-12-03T08:00:00.000Z';
  const record = newRunRecord({
    id, name: 'fuzzed', state: 'completed', config: { ...DEFAULT_RUN_CONFIG, modelPath: SAMPLE_MODEL_DIR, datasetPath: SAMPLE_DATASET_PATH },
    createdAt: now, updatedAt: now, step: 4, totalSteps: 4, lastLoss: 1.5, tokensPerSecond: 100, etaMs: 0, error: null, adapterId: id, backend: 'cpu', priority: 0, device: 'cpu', queuePosition: null, checkpointStep: 4,
  });
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(' '));
  let imported = 0;
  try {
    const o = await fuzz(
      {
        base: Buffer.from(encodeJson(record)),
        kind: 'json',
        write: (b) => writeFileSync(file, b),
        read: () => {
          const db = new StudioDb(':memory:');
          try {
            const before = warnings.length;
            const store = new RunStore(home, db);
            const runs = db.listRuns();
            assert.equal(runs.length, store.imported, 'every imported run reads back');
            assert.deepEqual(db.problems, [], 'no unreadable row was stored');
            if (store.imported === 0) assert.ok(warnings.slice(before).some((w) => w.includes(file)), `a left-out run.json is named: ${warnings.slice(before).join(' | ')}`);
            imported += store.imported;
          } finally {
            db.close();
          }
        },
        typed: () => false,
      },
      fuzzCases(400),
      11,
    );
    assert.equal(o.faults.length, 0, describeFaults('run.json (run folder)', o));
    assert.ok(imported > 0, 'some mutations are still importable runs');
  } finally {
    console.warn = warn;
  }
});
