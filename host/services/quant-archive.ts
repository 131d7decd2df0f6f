/**
 * Finished quantization-lab reports on disk, so a report outlives the studio process: `<dir>/<jobId>.report.json`
 * (the report, megabytes for a big model) and `<dir>/<jobId>.job.json` (its summary, written last, so a summary is
 * never listed without its report). The newest `keep` are kept; older ones are deleted as new ones arrive. Both are
 * read back through their schemas (common/quant-job.ts, common/quant-report.ts): a file edited or written by another
 * version is skipped with the field that is wrong, never handed to the lab page half-shaped.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import type { QuantJobSummary } from '../../common/protocol.ts';
import { QuantJobSummarySchema } from '../../common/quant-job.ts';
import { QuantReportSchema, type QuantReport } from '../../common/quant-report.ts';
import { writeFileAtomic } from '../../engine/host-api.ts';
import { isSafeId } from './ids.ts';

const JOB = '.job.json';
const REPORT = '.report.json';

/** Jobs by creation time, newest first (ISO timestamps sort as strings). */
export function newestFirst(a: QuantJobSummary, b: QuantJobSummary): number {
  return a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0;
}

/** The first problem zod found, as "field a.b.2: message". */
function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `field ${issue.path.join('.') || '(the whole file)'}: ${issue.message}` : 'not valid';
}

export class QuantArchive {
  readonly dir: string;
  private readonly keep: number;
  /** Files that could not be read, with why (shown once in the studio log by the caller). */
  readonly problems: string[] = [];

  constructor(dir: string, keep = 20) {
    this.dir = dir;
    this.keep = keep;
    mkdirSync(dir, { recursive: true });
  }

  /** Summaries of the stored reports, newest first. Unreadable entries are skipped and listed in `problems`. */
  list(): QuantJobSummary[] {
    const out: QuantJobSummary[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith(JOB)) continue;
      const id = name.slice(0, -JOB.length);
      const file = join(this.dir, name);
      try {
        const parsed = QuantJobSummarySchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
        if (!parsed.success) throw new Error(`not a lab job summary (${firstIssue(parsed.error)})`);
        const summary = parsed.data;
        if (summary.id !== id || summary.state !== 'done') throw new Error(`not the finished job ${id} (id ${summary.id}, ${summary.state})`);
        if (!existsSync(join(this.dir, id + REPORT))) throw new Error(`its report ${id}${REPORT} is missing`);
        out.push(summary);
      } catch (e) {
        this.problems.push(`${file}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    return out.sort(newestFirst);
  }

  save(summary: QuantJobSummary, report: QuantReport): void {
    if (!isSafeId(summary.id)) throw new Error(`quant archive: unsafe job id ${JSON.stringify(summary.id)}`);
    writeFileAtomic(join(this.dir, summary.id + REPORT), JSON.stringify(report));
    writeFileAtomic(join(this.dir, summary.id + JOB), JSON.stringify(summary));
    for (const old of this.list().slice(this.keep)) this.remove(old.id);
  }

  /** The stored report, or null when there is none (never stored, or pruned). A file that is there but unreadable throws, naming it and why. */
  report(id: string): QuantReport | null {
    if (!isSafeId(id)) return null;
    const file = join(this.dir, id + REPORT);
    if (!existsSync(file)) return null;
    let why: string;
    try {
      const parsed = QuantReportSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
      if (parsed.success) return parsed.data;
      why = `it is not a lab report (${firstIssue(parsed.error)})`;
    } catch (e) {
      why = e instanceof Error ? e.message : String(e);
    }
    throw new Error(`the stored report ${file} cannot be read: ${why}; run the job again`);
  }

  remove(id: string): void {
    if (!isSafeId(id)) return;
    rmSync(join(this.dir, id + JOB), { force: true });
    rmSync(join(this.dir, id + REPORT), { force: true });
  }
}
