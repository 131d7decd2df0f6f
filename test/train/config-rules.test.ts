/**
 * The allowed ranges the CLI prints are read off the run-config schema (common/field-rules.ts): for every number
 * setting, the bounds the words name are checked against the schema itself — the bound passes when the words say
 * "from/at least/at most", fails when they say "above/below", and one step beyond always fails; enums list exactly
 * what the schema accepts; unknown keys are found at any depth.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { allowedValues, unknownKeys } from '../../common/field-rules.ts';
import { DEFAULT_RUN_CONFIG, RunConfigSchema, validateRunConfig } from '../../common/protocol.ts';
import { readRunConfig } from '../../host/cli/train.ts';

const base = { ...DEFAULT_RUN_CONFIG, modelPath: '/m', datasetPath: '/d.jsonl' };

function withValue(path: string, value: unknown): unknown {
  const copy = structuredClone(base) as unknown as Record<string, Record<string, unknown>>;
  const [group, key] = path.split('.') as [string, string];
  copy[group]![key] = value;
  return copy;
}

const fieldsOf = (group: 'lora' | 'train') => Object.keys(RunConfigSchema.shape[group].shape).map((k) => `${group}.${k}`);

test('every bound the words name agrees with the schema', () => {
  let checked = 0;
  for (const path of [...fieldsOf('lora'), ...fieldsOf('train')]) {
    const words = allowedValues(RunConfigSchema, path);
    assert.ok(words, `${path} has a description`);
    if (!/number/.test(words)) continue;
    const whole = words.startsWith('a whole number');
    const step = whole ? 1 : 1e-9;
    const num = (s: string) => Number(s.replace(/,/g, ''));
    const range = /from (-?[\d,.e]+) to (-?[\d,.e]+)/.exec(words);
    const low = range ? { v: num(range[1]!), incl: true } : (/at least (-?[\d,.e]+)/.exec(words) ?? /above (-?[\d,.e]+)/.exec(words));
    const high = range ? { v: num(range[2]!), incl: true } : (/at most (-?[\d,.e]+)/.exec(words) ?? /below (-?[\d,.e]+)/.exec(words));
    const bound = (m: typeof low, incl: string) => (m === null ? null : 'v' in m ? m : { v: num(m[1]!), incl: m[0].startsWith(incl) });
    const lo = bound(low, 'at least');
    const hi = bound(high, 'at most');
    const ok = (v: number) => validateRunConfig(withValue(path, v)).ok;
    if (lo) {
      assert.equal(ok(lo.v), lo.incl, `${path} = ${lo.v} (${words})`);
      assert.equal(ok(lo.v - step), false, `${path} just below ${lo.v}`);
      checked++;
    }
    if (hi) {
      assert.equal(ok(hi.v), hi.incl, `${path} = ${hi.v} (${words})`);
      assert.equal(ok(hi.v + step), false, `${path} just above ${hi.v}`);
      checked++;
    }
    if (whole && lo) assert.equal(ok(lo.v + 0.5), false, `${path} takes whole numbers only`);
  }
  assert.ok(checked >= 20, `bounds checked: ${checked}`);
});

test('enums and lists name what the schema takes', () => {
  assert.equal(allowedValues(RunConfigSchema, 'train.schedule'), 'one of constant, linear, cosine');
  assert.equal(allowedValues(RunConfigSchema, 'backend'), 'one of auto, cpu, webgpu');
  assert.equal(allowedValues(RunConfigSchema, 'lora.targets'), 'a list of at least 1, each one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj');
  assert.equal(allowedValues(RunConfigSchema, 'lora.targets.3'), 'one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj');
  assert.equal(allowedValues(RunConfigSchema, 'data.badRecords'), 'one of fail, skip');
  assert.equal(allowedValues(RunConfigSchema, 'lora.nothing'), null);
});

test('unknown keys are found at every depth, with the keys that exist there', () => {
  const found = unknownKeys(RunConfigSchema, { ...base, epochs: 3, lora: { ...base.lora, rank: 8 }, train: { ...base.train }, data: { packing: true, shuffle: true } });
  assert.deepEqual(found.map((u) => u.path), ['lora.rank', 'epochs', 'data.shuffle'], 'in the order they appear in the file');
  assert.ok(found[0]!.known.includes('r'));
  assert.deepEqual(unknownKeys(RunConfigSchema, base), []);
});

test("a studio run folder's run.json (the run with its config inside) is read as its config", () => {
  const dir = mkdtempSync(join(tmpdir(), 'lora-config-rules-'));
  try {
    const file = join(dir, 'run.json');
    writeFileSync(file, JSON.stringify({ id: 'run-1', name: 'x', state: 'completed', tags: [], config: base }));
    assert.equal(readRunConfig(file).lora.r, base.lora.r);
    writeFileSync(file, JSON.stringify({ id: 'run-1', name: 'x', state: 'completed', config: { ...base, lora: { ...base.lora, r: 2000 } } }));
    assert.throws(() => readRunConfig(file), /lora\.r: rank must be at most 1024 \(Rank \(r\); got 2000; allowed: a whole number from 1 to 1024\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
