/**
 * Which waiting run gets an engine next. Runs wait per device; a device executes at most `concurrency(device)` runs
 * at once (default 1). The highest priority goes first, equal priorities in the order they joined. When an executing
 * run ends (`release`), the next one starts by itself — so a queue filled in the evening trains all night.
 *
 * The queue only decides; starting a run (state changes, the engine) is the `start` callback's job. It is kept
 * in memory and rebuilt from the database at start-up (queued runs carry their priority and queue position there).
 */

export interface QueueItem {
  id: string;
  /** Higher first. */
  priority: number;
  /** Runs are counted per device ('cpu', 'webgpu:0', …). */
  device: string;
  /** Position among equal priorities: lower first. */
  seq: number;
}

export interface RunQueueOptions {
  /** Executing runs allowed at once per device (default 1); a number applies to every device. */
  concurrency?: number | ((device: string) => number);
  /**
   * Called when a run gets a slot; from then on it counts as executing on its device until `release(id)`.
   * If it throws, the slot is freed again and the error goes to onStartError (the next run is tried).
   */
  start: (item: QueueItem) => void;
  onStartError?: (item: QueueItem, error: unknown) => void;
}

function byTurn(a: QueueItem, b: QueueItem): number {
  return b.priority - a.priority || a.seq - b.seq || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export class RunQueue {
  private readonly waitingItems = new Map<string, QueueItem>();
  private readonly running = new Map<string, string>(); // id → device
  private concurrency: (device: string) => number;
  private readonly startRun: (item: QueueItem) => void;
  private readonly onStartError: (item: QueueItem, error: unknown) => void;
  private nextSeq = 1;
  private held = false;
  private pumping = false;
  private again = false;

  constructor(options: RunQueueOptions) {
    this.concurrency = RunQueue.limitOf(options.concurrency ?? 1);
    this.startRun = options.start;
    this.onStartError = options.onStartError ?? (() => undefined);
  }

  private static limitOf(c: number | ((device: string) => number)): (device: string) => number {
    if (typeof c === 'number') {
      if (!(Number.isInteger(c) && c >= 1)) throw new Error(`concurrent runs per device must be a whole number ≥ 1, got ${c}`);
      return () => c;
    }
    return (device) => {
      const n = c(device);
      if (!(Number.isInteger(n) && n >= 1)) throw new Error(`concurrent runs for device ${device} must be a whole number ≥ 1, got ${n}`);
      return n;
    };
  }

  /** Adds a waiting run (and starts it at once when its device has a free slot). */
  enqueue(item: { id: string; priority?: number; device?: string; seq?: number }): QueueItem {
    if (this.waitingItems.has(item.id)) throw new Error(`run ${item.id} is already waiting in the queue`);
    if (this.running.has(item.id)) throw new Error(`run ${item.id} is already executing`);
    const seq = item.seq ?? this.nextSeq;
    this.nextSeq = Math.max(this.nextSeq, seq + 1);
    const entry: QueueItem = { id: item.id, priority: item.priority ?? 0, device: item.device ?? 'cpu', seq };
    this.waitingItems.set(entry.id, entry);
    this.pump();
    return entry;
  }

  /** Takes a waiting run out of the queue (cancel, pause); false when it was not waiting. */
  remove(id: string): boolean {
    return this.waitingItems.delete(id);
  }

  /** An executing run ended: its slot goes to the next waiting run of its device. False when it was not executing. */
  release(id: string): boolean {
    const had = this.running.delete(id);
    if (had) this.pump();
    return had;
  }

  /** Counts a run as executing without going through the queue (e.g. one already running when the queue was built). */
  markRunning(id: string, device = 'cpu'): void {
    this.waitingItems.delete(id);
    this.running.set(id, device);
  }

  setPriority(id: string, priority: number): boolean {
    const item = this.waitingItems.get(id);
    if (!item) return false;
    item.priority = priority;
    this.pump();
    return true;
  }

  setConcurrency(c: number | ((device: string) => number)): void {
    this.concurrency = RunQueue.limitOf(c);
    this.pump();
  }

  /** Stops handing out slots (the studio is closing); `resume()` starts again. */
  hold(): void {
    this.held = true;
  }

  resume(): void {
    this.held = false;
    this.pump();
  }

  isWaiting(id: string): boolean {
    return this.waitingItems.has(id);
  }

  isRunning(id: string): boolean {
    return this.running.has(id);
  }

  /** Waiting runs in the order they will start (of one device, or all). */
  waiting(device?: string): QueueItem[] {
    return [...this.waitingItems.values()].filter((i) => device === undefined || i.device === device).sort(byTurn).map((i) => ({ ...i }));
  }

  /** Ids of executing runs (of one device, or all). */
  executing(device?: string): string[] {
    return [...this.running.entries()].filter(([, d]) => device === undefined || d === device).map(([id]) => id);
  }

  /** 1-based place in its device's line, or null when not waiting. */
  position(id: string): number | null {
    const item = this.waitingItems.get(id);
    if (!item) return null;
    return this.waiting(item.device).findIndex((i) => i.id === id) + 1;
  }

  get size(): number {
    return this.waitingItems.size + this.running.size;
  }

  /** Starts waiting runs while their devices have free slots. Safe to call from inside `start` or `release`. */
  pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        if (this.held) return;
        for (const item of this.waiting()) {
          if (this.executing(item.device).length >= this.concurrency(item.device)) continue;
          if (!this.waitingItems.has(item.id)) continue;
          this.waitingItems.delete(item.id);
          this.running.set(item.id, item.device);
          try {
            this.startRun(item);
          } catch (e) {
            this.running.delete(item.id);
            this.onStartError(item, e);
            this.again = true;
          }
        }
      } while (this.again);
    } finally {
      this.pumping = false;
    }
  }
}
