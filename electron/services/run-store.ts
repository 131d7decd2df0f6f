/**
 * Where runs and their metrics are kept. For now JSON files (runs/<id>/run.json, written atomically, and
 * runs/<id>/metrics.jsonl, appended); the interface is all the run manager sees, so SQLite can replace it later.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MetricPoint, RunSummary } from '../../common/protocol.ts';
import type { StudioHome } from './home.ts';
import { isSafeId } from './ids.ts';

export interface RunStore {
  /** Folder of a run: the engine writes checkpoints/ and adapter/ under it. */
  runDir(id: string): string;
  create(run: RunSummary): void;
  save(run: RunSummary): void;
  get(id: string): RunSummary | null;
  /** Newest first. */
  list(): RunSummary[];
  appendMetrics(id: string, points: MetricPoint[]): void;
  /** Points with step > afterStep, in step order. */
  metrics(id: string, afterStep?: number): MetricPoint[];
}

/** Writes to a sibling file first, then renames, so a crash never leaves half a JSON file behind. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export class JsonRunStore implements RunStore {
  private readonly runsDir: string;
  private readonly cache = new Map<string, RunSummary>();

  constructor(home: StudioHome) {
    this.runsDir = home.runs;
    this.load();
  }

  runDir(id: string): string {
    if (!isSafeId(id)) throw new Error(`invalid run id ${JSON.stringify(id)}`);
    return join(this.runsDir, id);
  }

  create(run: RunSummary): void {
    const dir = this.runDir(run.id);
    if (existsSync(join(dir, 'run.json'))) throw new Error(`run ${run.id} already exists`);
    mkdirSync(dir, { recursive: true });
    this.save(run);
  }

  save(run: RunSummary): void {
    writeFileAtomic(join(this.runDir(run.id), 'run.json'), `${JSON.stringify(run, null, 2)}\n`);
    this.cache.set(run.id, structuredClone(run));
  }

  get(id: string): RunSummary | null {
    if (!isSafeId(id)) return null;
    const run = this.cache.get(id);
    return run ? structuredClone(run) : null;
  }

  list(): RunSummary[] {
    return [...this.cache.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : b.id.localeCompare(a.id))).map((r) => structuredClone(r));
  }

  appendMetrics(id: string, points: MetricPoint[]): void {
    if (points.length === 0) return;
    appendFileSync(join(this.runDir(id), 'metrics.jsonl'), points.map((p) => `${JSON.stringify(p)}\n`).join(''));
  }

  metrics(id: string, afterStep = -Infinity): MetricPoint[] {
    if (!isSafeId(id)) return [];
    const file = join(this.runDir(id), 'metrics.jsonl');
    if (!existsSync(file)) return [];
    const out: MetricPoint[] = [];
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line) continue;
      let point: MetricPoint;
      try {
        point = JSON.parse(line) as MetricPoint;
      } catch {
        continue; // a line cut short by a crash mid-append; every complete line is still good
      }
      if (point.step > afterStep) out.push(point);
    }
    return out.sort((a, b) => a.step - b.step);
  }

  private load(): void {
    let names: string[];
    try {
      names = readdirSync(this.runsDir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!isSafeId(name)) continue;
      const file = join(this.runsDir, name, 'run.json');
      if (!existsSync(file)) continue;
      try {
        const run = JSON.parse(readFileSync(file, 'utf8')) as RunSummary;
        if (run && run.id === name) this.cache.set(name, run);
      } catch {
        // An unreadable run.json hides that run rather than taking the studio down.
      }
    }
  }
}
