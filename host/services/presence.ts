/**
 * A studio process's presence in its data folder: it registers in the database's `instances` table, heartbeats
 * there, and carries out the commands the CLI writes into the `commands` table (see host/cli/runs.ts). The CLI
 * treats a folder with a live instance as "a studio is running" and goes through it; without one it changes the
 * database itself.
 */
import { randomBytes } from 'node:crypto';
import type { CommandRecord, InstanceRecord, StudioDb } from './db.ts';

export interface PresenceOptions {
  kind: 'electron' | 'web';
  /** Carries a command out; returns the message for the CLI, throws to refuse (the message goes back). */
  onCommand: (command: CommandRecord) => string;
  pollMs?: number;
  heartbeatMs?: number;
}

export class StudioPresence {
  readonly id = `studio-${process.pid}-${randomBytes(4).toString('hex')}`;
  private readonly db: StudioDb;
  private readonly opts: Required<PresenceOptions>;
  private poll: NodeJS.Timeout | null = null;
  private beat: NodeJS.Timeout | null = null;

  constructor(db: StudioDb, options: PresenceOptions) {
    this.db = db;
    this.opts = { pollMs: 250, heartbeatMs: 5000, ...options };
  }

  /** Other studio processes alive on this folder right now. */
  others(): InstanceRecord[] {
    return this.db.liveInstances().filter((i) => i.id !== this.id);
  }

  start(): void {
    this.db.registerInstance({ id: this.id, kind: this.opts.kind });
    // Neither timer may keep a process alive on its own (tests, a CLI that embeds the services).
    this.beat = setInterval(() => this.safely(() => this.db.heartbeat(this.id)), this.opts.heartbeatMs);
    this.beat.unref();
    this.poll = setInterval(() => this.safely(() => this.takeCommands()), this.opts.pollMs);
    this.poll.unref();
  }

  /** Carries out every waiting command now (also what the poll timer does). */
  takeCommands(): void {
    for (const c of this.db.takeCommands()) {
      try {
        this.db.completeCommand(c.id, true, this.opts.onCommand(c));
      } catch (e) {
        this.db.completeCommand(c.id, false, e instanceof Error ? e.message : String(e));
      }
    }
  }

  stop(): void {
    if (this.poll) clearInterval(this.poll);
    if (this.beat) clearInterval(this.beat);
    this.poll = this.beat = null;
    this.safely(() => this.db.removeInstance(this.id));
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch {
      // A busy or closed database must not crash the studio; the next tick tries again.
    }
  }
}
