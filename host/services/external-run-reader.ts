/**
 * Reading an external run's output folder while it is being written (by train.py of an exported bundle, possibly on
 * another machine behind a mounted or synced folder): status.json (replaced atomically by the run) and the new bytes
 * of metrics.jsonl since the last read. Only whole lines are taken — a line still being written stays for the next
 * poll — and a relaunch (a new runId in status.json, or a shorter metrics file) starts the series again.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { MetricPointSchema, type MetricPoint } from '../../common/protocol.ts';
import { mergeMetricPoints } from '../../common/run-metrics.ts';

export const METRICS_FILE = 'metrics.jsonl';
export const STATUS_FILE = 'status.json';
/** Problems listed per run; past this only the first ones are kept. */
const MAX_PROBLEMS = 20;

const StatusSchema = z.object({
  format: z.literal('lora-studio-external-run'),
  runId: z.string(),
  state: z.enum(['starting', 'running', 'completed', 'failed']),
  step: z.number().int().min(0).optional(),
  totalSteps: z.number().int().min(0).nullable().optional(),
  name: z.string().nullable().optional(),
  bundleId: z.string().nullable().optional(),
  sourceRunId: z.string().nullable().optional(),
  worldSize: z.number().int().nullable().optional(),
  distributedType: z.string().nullable().optional(),
  mixedPrecision: z.string().nullable().optional(),
  dropoutMasks: z.string().nullable().optional(),
  zeroStage: z.number().int().nullable().optional(),
  startedAt: z.string().nullable().optional(),
  updatedAt: z.string().nullable().optional(),
  finishedAt: z.string().nullable().optional(),
  error: z.string().nullable().optional(),
  adapterDir: z.string().nullable().optional(),
  finalValidationLoss: z.number().nullable().optional(),
});
export type ExternalStatus = z.infer<typeof StatusSchema>;

export interface PollResult {
  /** Something the summary shows changed (points, status, problems). */
  changed: boolean;
  /** The series started again: drop what was shown (truncatedAfter 0), then add newPoints. */
  reset: boolean;
  newPoints: MetricPoint[];
}

export class ExternalRunReader {
  readonly dir: string;
  points: MetricPoint[] = [];
  status: ExternalStatus | null = null;
  problems: string[] = [];
  /** mtime of metrics.jsonl at the last read, ms. */
  metricsMtimeMs: number | null = null;
  private offset = 0;
  private lineNo = 0;
  private pending: Buffer = Buffer.alloc(0);
  private statusText = '';

  constructor(dir: string) {
    this.dir = dir;
  }

  private resetSeries(): void {
    this.points = [];
    this.offset = 0;
    this.lineNo = 0;
    this.pending = Buffer.alloc(0);
    this.problems = [];
  }

  private problem(message: string): void {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push(message);
  }

  poll(): PollResult {
    let changed = false;
    let reset = false;
    const statusPath = join(this.dir, STATUS_FILE);
    if (existsSync(statusPath)) {
      let text = '';
      try {
        text = readFileSync(statusPath, 'utf8');
      } catch {
        // replaced between the check and the read: next poll
      }
      if (text && text !== this.statusText) {
        let parsed: ExternalStatus | null = null;
        try {
          const r = StatusSchema.safeParse(JSON.parse(text));
          if (r.success) parsed = r.data;
          else this.problem(`${STATUS_FILE}: ${r.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; ')}`);
        } catch (e) {
          this.problem(`${STATUS_FILE}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
        }
        this.statusText = text;
        if (parsed) {
          if (this.status && parsed.runId !== this.status.runId) {
            this.resetSeries();
            reset = true;
          }
          this.status = parsed;
        }
        changed = true;
      }
    }
    const metricsPath = join(this.dir, METRICS_FILE);
    if (!existsSync(metricsPath)) {
      if (this.offset > 0) {
        this.resetSeries();
        reset = changed = true;
      }
      return { changed, reset, newPoints: [] };
    }
    const st = statSync(metricsPath);
    if (st.size < this.offset) {
      this.resetSeries();
      reset = changed = true;
    }
    this.metricsMtimeMs = st.mtimeMs;
    const fresh: MetricPoint[] = [];
    if (st.size > this.offset) {
      const buf = Buffer.alloc(st.size - this.offset);
      const fd = openSync(metricsPath, 'r');
      let got: number;
      try {
        got = readSync(fd, buf, 0, buf.length, this.offset);
      } finally {
        closeSync(fd);
      }
      this.offset += got;
      const bytes = Buffer.concat([this.pending, buf.subarray(0, got)]);
      const lastNl = bytes.lastIndexOf(0x0a);
      // Bytes after the last newline belong to a line still being written (split on bytes: never inside a UTF-8 character).
      this.pending = Buffer.from(bytes.subarray(lastNl + 1));
      if (lastNl >= 0) {
        for (const line of bytes.subarray(0, lastNl).toString('utf8').split('\n')) {
          this.lineNo++;
          if (!line.trim()) continue;
          let json: unknown;
          try {
            json = JSON.parse(line);
          } catch (e) {
            this.problem(`${METRICS_FILE} line ${this.lineNo}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
            continue;
          }
          const r = MetricPointSchema.safeParse(json);
          if (!r.success) {
            this.problem(`${METRICS_FILE} line ${this.lineNo}: ${r.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; ')}`);
            continue;
          }
          fresh.push(r.data);
        }
        changed = true;
      }
    }
    if (fresh.length > 0) this.points = mergeMetricPoints(this.points, fresh);
    return { changed, reset, newPoints: fresh };
  }
}
