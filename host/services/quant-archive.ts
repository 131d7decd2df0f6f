/**
 * Finished quantization-lab reports on disk, so a report outlives the studio process: `<dir>/<jobId>.report.json`
 * (the report, megabytes for a big model) and `<dir>/<jobId>.job.json` (its summary, written last, so a summary is
 * never listed without its report). The newest `keep` are kept; older ones are deleted as new ones arrive.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { QuantJobSummary } from '../../common/protocol.ts';
import type { QuantReport } from '../../common/quant-report.ts';
import { writeFileAtomic } from '../../engine/host-api.ts';
import { isSafeId } from './ids.ts';

const JOB = '.job.json';
const REPORT = '.report.json';

/** Jobs by creation time, newest first (ISO timestamps sort as strings). */
export function newestFirst(a: QuantJobSummary, b: QuantJobSummary): number {
  return a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0;
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
        const summary = JSON.parse(readFileSync(file, 'utf8')) as QuantJobSummary;
        if (summary.id !== id || summary.state !== 'done' || typeof summary.createdAt !== 'string') throw new Error('not a finished job summary');
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

  /** The stored report, or null when there is none (never stored, pruned, or unreadable). */
  report(id: string): QuantReport | null {
    if (!isSafeId(id)) return null;
    try {
      return JSON.parse(readFileSync(join(this.dir, id + REPORT), 'utf8')) as QuantReport;
    } catch {
      return null;
    }
  }

  remove(id: string): void {
    if (!isSafeId(id)) return;
    rmSync(join(this.dir, id + JOB), { force: true });
    rmSync(join(this.dir, id + REPORT), { force: true });
  }
}
