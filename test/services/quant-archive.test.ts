/**
 * The lab's archive of finished reports: the newest kept, listed newest first, read back as stored; a summary without
 * its report, or one another version (or a person) left in a shape the schema refuses, is skipped and named; a
 * report file that is there but broken is refused naming the file and the field, and 'quant.get' says so.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { QuantJobSummary } from '../../common/protocol.ts';
import type { QuantReport } from '../../common/quant-report.ts';
import { SAMPLE_MODEL_DIR } from '../../engine/io/sample.ts';
import { runQuantJob } from '../../engine/quant/quant-job.ts';
import { QuantArchive } from '../../host/services/quant-archive.ts';
import { refusal, tempStudios } from '../helpers/temp-studio.ts';

const dir = mkdtempSync(join(tmpdir(), 'quant-archive-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const summary = (id: string, createdAt: string): QuantJobSummary => ({
  id,
  state: 'done',
  request: { modelPath: SAMPLE_MODEL_DIR, formats: ['q8_0'] },
  createdAt,
  startedAt: createdAt,
  finishedAt: createdAt,
  progress: null,
  error: null,
});
/** A real report of the sample model, told apart by its createdAt. */
let real: QuantReport;
const report = (tag: string): QuantReport => ({ ...real, createdAt: tag });
before(async () => {
  real = await runQuantJob({ modelPath: SAMPLE_MODEL_DIR, formats: ['q8_0'] });
});

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
  // An error that is not a number (NaN, Infinity) is stored as JSON's null and reads back as NaN, not as a refusal.
  const odd = report('odd');
  const other = new QuantArchive(join(dir, 'other'));
  other.save(summary('quant-odd', '2026-11-27T09:00:00.000Z'), { ...odd, formats: [{ ...odd.formats[0], overall: { ...odd.formats[0].overall, relErr: Infinity } }] });
  const back = new QuantArchive(other.dir).report('quant-odd');
  assert.ok(back !== null && Number.isNaN(back.formats[0].overall.relErr), 'relErr reads back as NaN');
});

test('a summary whose report is gone, or whose shape is wrong, is skipped and named', () => {
  const a = new QuantArchive(dir, 5);
  rmSync(join(dir, 'quant-b.report.json'));
  a.save(summary('quant-d', '2026-11-27T14:00:00.000Z'), report('d'));
  const d = JSON.parse(readFileSync(join(dir, 'quant-d.job.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'quant-d.job.json'), JSON.stringify({ ...d, request: { modelPath: SAMPLE_MODEL_DIR, formats: 'q8_0' } }));
  const fresh = new QuantArchive(dir, 5);
  assert.deepEqual(
    fresh.list().map((s) => s.id),
    ['quant-c'],
  );
  const problems = fresh.problems.join('\n');
  assert.match(problems, /quant-b\.job\.json: its report quant-b\.report\.json is missing/);
  assert.match(problems, /quant-d\.job\.json: not a lab job summary \(field request\.formats: /);
});

test('a broken report file is refused naming the file and the field, through quant.get too', async () => {
  const a = new QuantArchive(dir, 5);
  const file = join(dir, 'quant-c.report.json');
  const good = JSON.parse(readFileSync(file, 'utf8')) as QuantReport;
  writeFileSync(file, JSON.stringify({ ...good, formats: [{ ...good.formats[0], cells: 'none' }] }));
  assert.throws(() => a.report('quant-c'), (e: Error) => e.message.includes(file) && /field formats\.0\.cells: /.test(e.message));
  writeFileSync(file, '{"version": 1, "formats": [');
  assert.throws(() => a.report('quant-c'), (e: Error) => e.message.startsWith(`the stored report ${file} cannot be read: `) && /JSON/.test(e.message));

  // A studio whose home holds such an archive lists the job, and 'quant.get' answers the problem, not a blank report.
  const { tmp, services } = tempStudios('quant-archive-studio-');
  const archive = new QuantArchive(join(tmp, 'home', 'quant-reports'));
  archive.save(summary('quant-e', '2026-11-27T15:00:00.000Z'), report('e'));
  const stored = join(archive.dir, 'quant-e.report.json');
  writeFileSync(stored, JSON.stringify({ ...report('e'), version: 2 }));
  const s = services('home');
  assert.deepEqual((await s.handle('quant.list', {})).map((j) => j.id), ['quant-e']);
  const refused = await refusal(() => s.handle('quant.get', { jobId: 'quant-e' }));
  assert.equal(refused.info.field, 'jobId');
  assert.ok(refused.message.includes(stored) && /field version: /.test(refused.message), refused.message);
});
