import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { QuantJobSummary } from '../../common/protocol.ts';
import type { QuantReport } from '../../common/quant-report.ts';
import { QuantArchive } from '../../host/services/quant-archive.ts';

const dir = mkdtempSync(join(tmpdir(), 'quant-archive-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const summary = (id: string, createdAt: string): QuantJobSummary => ({
  id,
  state: 'done',
  request: { modelPath: '/m', formats: ['q8_0'] },
  createdAt,
  startedAt: createdAt,
  finishedAt: createdAt,
  progress: null,
  error: null,
});
// Only its identity matters here: the archive stores whatever report it is given.
const report = (tag: string): QuantReport => ({ tag }) as unknown as QuantReport;

test('keeps the newest reports, lists them newest first, and reads each back', () => {
  const a = new QuantArchive(dir, 2);
  a.save(summary('quant-a', '2026-11-27T10:00:00.000Z'), report('a'));
  a.save(summary('quant-c', '2026-11-27T12:00:00.000Z'), report('c'));
  a.save(summary('quant-b', '2026-11-27T11:00:00.000Z'), report('b'));
  assert.deepEqual(
    a.list().map((s) => s.id),
    ['quant-c', 'quant-b'],
  );
  assert.deepEqual(a.report('quant-b'), report('b'));
  assert.equal(a.report('quant-a'), null, 'the oldest was pruned');
  assert.equal(a.report('../etc/passwd'), null);
  assert.throws(() => a.save(summary('../x', '2026-11-27T13:00:00.000Z'), report('x')), /unsafe job id/);
});

test('a summary whose report is gone is skipped and named', () => {
  const a = new QuantArchive(dir, 5);
  rmSync(join(dir, 'quant-b.report.json'));
  const fresh = new QuantArchive(dir, 5);
  assert.deepEqual(
    fresh.list().map((s) => s.id),
    ['quant-c'],
  );
  assert.match(fresh.problems.join('\n'), /quant-b\.job\.json: its report quant-b\.report\.json is missing/);
  assert.ok(a);
});
