/**
 * The run state machine. A run is a durable object; every change of its state goes through `assertTransition`, so a
 * bug (or a stale CLI command) can never move a completed run back to executing or skip validation.
 *
 *   pending ─► validating ─► queuing ─► executing ─► finalizing ─► completed
 *      │            │           │  ▲        │  │  │          │
 *      │            │           │  │        │  │  └─► paused ─┤ (paused ─► queuing on resume)
 *      └────────────┴───────────┴──┴────────┴──┴──────────────┴─► failed | cancelled
 *
 * Besides the straight line:
 * - executing → queuing: the studio died (kill -9, power cut) while the run executed; the next start puts it back
 *   in the queue and it resumes from its last checkpoint.
 * - queuing → paused and paused → queuing: a waiting run can be held and released.
 * - executing → paused: the engine wrote a checkpoint and stopped; resuming continues from it.
 * - failed → queuing: retry from the last checkpoint (after freeing disk space, say). Completed and cancelled are
 *   final.
 */
// The protocol's own list (common/run-summary.ts), which RunState is derived from.
import { RUN_STATES, type RunState } from '../../common/protocol.ts';

export { RUN_STATES };

/** Every legal move; anything not listed here is refused. */
export const TRANSITIONS: Readonly<Record<RunState, readonly RunState[]>> = {
  pending: ['validating', 'failed', 'cancelled'],
  validating: ['queuing', 'failed', 'cancelled'],
  queuing: ['executing', 'paused', 'failed', 'cancelled'],
  executing: ['finalizing', 'paused', 'queuing', 'failed', 'cancelled'],
  finalizing: ['completed', 'failed'],
  paused: ['queuing', 'failed', 'cancelled'],
  failed: ['queuing'],
  completed: [],
  cancelled: [],
};

/** States a run never leaves on its own (failed can only be retried by the user). */
export const TERMINAL_STATES: readonly RunState[] = ['completed', 'failed', 'cancelled'];
/** States in which a run holds an engine (a device slot). */
export const ACTIVE_STATES: readonly RunState[] = ['executing', 'finalizing'];
/** States in which a run is on its way to an engine. */
export const WAITING_STATES: readonly RunState[] = ['pending', 'validating', 'queuing'];

export function isRunState(value: unknown): value is RunState {
  return typeof value === 'string' && (RUN_STATES as readonly string[]).includes(value);
}

export function isTerminal(state: RunState): boolean {
  return TERMINAL_STATES.includes(state);
}

export function canTransition(from: RunState, to: RunState): boolean {
  return TRANSITIONS[from].includes(to);
}

export class IllegalTransitionError extends Error {
  readonly from: RunState;
  readonly to: RunState;
  readonly runId: string | null;
  constructor(from: RunState, to: RunState, runId: string | null = null) {
    const allowed = TRANSITIONS[from];
    const who = runId ? `run ${runId}` : 'a run';
    super(
      `illegal run state transition from ${from} to ${to}: ${who} that is ${from} ` +
        (allowed.length ? `can only become ${allowed.join(', ')}` : 'never changes state again'),
    );
    this.name = 'IllegalTransitionError';
    this.from = from;
    this.to = to;
    this.runId = runId;
  }
}

/** Throws IllegalTransitionError (naming both states) unless from → to is legal. */
export function assertTransition(from: RunState, to: RunState, runId?: string): void {
  if (!isRunState(from)) throw new Error(`unknown run state ${JSON.stringify(from)}${runId ? ` (run ${runId})` : ''}`);
  if (!isRunState(to)) throw new Error(`unknown run state ${JSON.stringify(to)}${runId ? ` (run ${runId})` : ''}`);
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to, runId ?? null);
}

// ---------------------------------------------------------------------------------------------------------------
// Timeouts per state

export interface StateTimeouts {
  /** Checking the config, the model folder and every dataset line. */
  validatingMs: number;
  /** From handing the run to an engine to its first finished step (model load, tokenizing, first step). */
  startupMs: number;
  /** Longest gap between two finished steps while executing (the per-step watchdog). */
  stepMs: number;
  /** Saving the final adapter and registering it. */
  finalizingMs: number;
}

export const DEFAULT_TIMEOUTS: StateTimeouts = {
  validatingMs: 5 * 60_000,
  startupMs: 30 * 60_000,
  stepMs: 30 * 60_000,
  finalizingMs: 5 * 60_000,
};

export type WatchdogPhase = 'validating' | 'startup' | 'step' | 'finalizing';

function phaseLimit(phase: WatchdogPhase, t: StateTimeouts): number {
  switch (phase) {
    case 'validating':
      return t.validatingMs;
    case 'startup':
      return t.startupMs;
    case 'step':
      return t.stepMs;
    case 'finalizing':
      return t.finalizingMs;
  }
}

function describeMs(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms >= 1000) return `${Math.round(ms / 100) / 10} s`;
  return `${ms} ms`;
}

/** The message a run fails with when a phase overruns; says which phase and the limit. */
export function timeoutMessage(phase: WatchdogPhase, limitMs: number, step?: number): string {
  const limit = describeMs(limitMs);
  switch (phase) {
    case 'validating':
      return `validation took longer than ${limit}; the model or dataset may be on a slow or hung drive`;
    case 'startup':
      return `the engine did not finish its first step within ${limit} (loading the model and data, then step 1)`;
    case 'step':
      return `no training step finished for ${limit} after step ${step ?? '?'}; the engine seems stuck (watchdog)`;
    case 'finalizing':
      return `saving the final adapter took longer than ${limit}`;
  }
}

/**
 * One timer per run: `arm(phase)` starts (or restarts) the clock for a phase, `kick()` restarts it after a step,
 * `disarm()` stops it. `onTimeout` gets the phase and the message the run should fail with. A limit of 0 or less
 * turns that phase's watchdog off.
 */
export class RunWatchdog {
  private timer: NodeJS.Timeout | null = null;
  private phase: WatchdogPhase | null = null;
  private step: number | undefined;
  private readonly timeouts: StateTimeouts;
  private readonly onTimeout: (phase: WatchdogPhase, message: string) => void;

  constructor(timeouts: StateTimeouts, onTimeout: (phase: WatchdogPhase, message: string) => void) {
    this.timeouts = timeouts;
    this.onTimeout = onTimeout;
  }

  get current(): WatchdogPhase | null {
    return this.phase;
  }

  arm(phase: WatchdogPhase, step?: number): void {
    this.disarm();
    this.phase = phase;
    this.step = step;
    const limit = phaseLimit(phase, this.timeouts);
    if (!(limit > 0)) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const p = this.phase;
      this.phase = null;
      if (p) this.onTimeout(p, timeoutMessage(p, limit, this.step));
    }, limit);
    // A watchdog alone must never keep a process (a test, the CLI) alive.
    this.timer.unref();
  }

  /** A step finished: the per-step clock starts again. */
  kick(step: number): void {
    this.arm('step', step);
  }

  disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.phase = null;
  }
}
