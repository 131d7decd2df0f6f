/**
 * The training-health detector: fed one metric point at a time (run-manager.ts, as the engine reports them), it
 * says when a run goes wrong — a NaN/inf loss, a loss spike, a storm of skipped fp16 steps, a collapsing loss
 * scale, an exploding or vanishing gradient norm, validation loss rising while the training loss falls, throughput
 * collapsing, memory near the limit. Pure logic (no clock, no I/O), so tests feed it synthetic series.
 *
 * Each rule fires once when its condition starts to hold and again only after the condition cleared: a run that stays
 * bad for 1000 steps raises one alert, not 1000. Medians (robust to the spikes they look for) are over the last
 * WINDOW steps before the current one.
 */
import { totalmem } from 'node:os';
import type { MetricPoint } from '../../common/protocol.ts';
import type { AlertKind, HealthThresholds } from '../../common/run-health.ts';

/** Steps the recent medians and the skipped-step count look back over. */
export const WINDOW = 20;
/** A median needs this many steps before a rule that compares with it may fire (the first steps are noisy). */
const MIN_HISTORY = 5;
/** Steps quicker than this are never a throughput collapse: at a few ms a step, timing jitter (GC, a busy core) looks like one. */
const MIN_SLOW_STEP_MS = 250;

export interface HealthFinding {
  kind: AlertKind;
  step: number;
  message: string;
}

/** What the services measured of memory at this step (absent where nothing is measured). */
export interface MemorySample {
  usedBytes: number;
  limitBytes: number;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? x.toExponential(2) : String(Number(x.toPrecision(3)));
}

function pushWindow(list: number[], v: number): void {
  list.push(v);
  if (list.length > WINDOW) list.shift();
}

/** A condition that must hold for `need` steps in a row; reports once per streak. */
class Streak {
  private count = 0;
  private startStep = 0;
  private fired = false;

  /** The step the streak started at, the first time it reaches `need`; null otherwise. */
  update(holds: boolean, step: number, need: number): number | null {
    if (!holds) {
      this.count = 0;
      this.fired = false;
      return null;
    }
    if (this.count === 0) this.startStep = step;
    this.count++;
    if (this.count >= need && !this.fired) {
      this.fired = true;
      return this.startStep;
    }
    return null;
  }
}

export class RunHealthMonitor {
  private thresholds: HealthThresholds;
  private readonly losses: number[] = [];
  private readonly gradNorms: number[] = [];
  private readonly throughputs: number[] = [];
  private readonly skippedFlags: boolean[] = [];
  /** Evaluations so far: the validation loss and the training loss's recent median when it was measured. */
  private readonly evaluations: { step: number; validation: number; train: number }[] = [];
  private readonly nonFinite = new Streak();
  private readonly spike = new Streak();
  private readonly skippedStorm = new Streak();
  private readonly scaleCollapse = new Streak();
  private readonly exploding = new Streak();
  private readonly vanishing = new Streak();
  private readonly overfit = new Streak();
  private readonly slow = new Streak();
  private readonly memory = new Streak();
  private lastElapsedMs: number | null = null;

  constructor(thresholds: HealthThresholds) {
    this.thresholds = thresholds;
  }

  /** New settings apply from the next point. */
  setThresholds(t: HealthThresholds): void {
    this.thresholds = t;
  }

  observe(p: MetricPoint, mem?: MemorySample): HealthFinding[] {
    const t = this.thresholds;
    const out: HealthFinding[] = [];
    const fire = (kind: AlertKind, step: number | null, message: string): void => {
      if (step !== null && t.enabled) out.push({ kind, step, message });
    };
    const trains = p.tokens > 0;

    // NaN / inf loss on a step that had tokens to train on (a step without any is written as NaN on purpose).
    const badLoss = trains && !Number.isFinite(p.loss);
    fire('non-finite-loss', this.nonFinite.update(badLoss, p.step, 1), `the loss is ${String(p.loss)} at step ${p.step}: training has diverged (lower the learning rate, or use fp32)`);

    if (trains && Number.isFinite(p.loss)) {
      const m = this.losses.length >= MIN_HISTORY ? median(this.losses) : null;
      const holds = m !== null && m > 0 && p.loss > t.lossSpikeFactor * m;
      fire('loss-spike', this.spike.update(holds, p.step, t.spikeSteps), `the loss is ${fmt(p.loss)}, ${fmt(m !== null ? p.loss / m : 0)}× its recent median ${fmt(m ?? 0)}, for ${t.spikeSteps} step${t.spikeSteps === 1 ? '' : 's'} in a row`);
      pushWindow(this.losses, p.loss);
    }

    // fp16: skipped (overflowing) steps among the last WINDOW, and the loss scale.
    this.skippedFlags.push(p.skipped === true);
    if (this.skippedFlags.length > WINDOW) this.skippedFlags.shift();
    const skipped = this.skippedFlags.reduce((n, s) => n + (s ? 1 : 0), 0);
    fire('skipped-steps', this.skippedStorm.update(skipped >= t.skippedStepsIn20, p.step, 1), `${skipped} of the last ${this.skippedFlags.length} steps were skipped (fp16 overflow): the gradients overflow again and again`);
    if (p.lossScale !== undefined) {
      fire('loss-scale-collapse', this.scaleCollapse.update(p.lossScale < t.lossScaleBelow, p.step, 1), `the fp16 loss scale fell to ${fmt(p.lossScale)} (below ${fmt(t.lossScaleBelow)}): the gradients overflow even unscaled`);
    }

    if (trains && p.skipped !== true && Number.isFinite(p.gradNorm)) {
      const m = this.gradNorms.length >= MIN_HISTORY ? median(this.gradNorms) : null;
      const explodes = m !== null && m > 0 && p.gradNorm > t.gradNormFactor * m;
      fire('grad-norm-exploding', this.exploding.update(explodes, p.step, t.spikeSteps), `the gradient norm is ${fmt(p.gradNorm)}, ${fmt(m !== null ? p.gradNorm / m : 0)}× its recent median ${fmt(m ?? 0)}`);
      fire('grad-norm-vanishing', this.vanishing.update(p.gradNorm < t.gradNormBelow, p.step, t.spikeSteps), `the gradient norm is ${fmt(p.gradNorm)} (below ${fmt(t.gradNormBelow)}) for ${t.spikeSteps} step${t.spikeSteps === 1 ? '' : 's'}: the adapter has stopped learning`);
      pushWindow(this.gradNorms, p.gradNorm);
    }

    if (p.validationLoss !== undefined && this.losses.length > 0) {
      const prev = this.evaluations.at(-1);
      this.evaluations.push({ step: p.step, validation: p.validationLoss, train: median(this.losses) });
      if (this.evaluations.length > t.overfitEvaluations + 1) this.evaluations.shift();
      const rose = prev !== undefined && p.validationLoss > prev.validation;
      const first = this.evaluations[0];
      const falling = median(this.losses) < first.train;
      const streakStart = this.overfit.update(rose && falling, p.step, t.overfitEvaluations);
      fire('overfitting', streakStart, `the validation loss rose from ${fmt(first.validation)} (step ${first.step}) to ${fmt(p.validationLoss)} (step ${p.step}) while the training loss fell from ${fmt(first.train)} to ${fmt(median(this.losses))}: the adapter is memorising the training data`);
    }

    // elapsedMs restarts with a resumed engine: a step that went back in time has no duration of its own.
    const stepMs = this.lastElapsedMs !== null && p.elapsedMs >= this.lastElapsedMs ? p.elapsedMs - this.lastElapsedMs : 0;
    this.lastElapsedMs = p.elapsedMs;
    if (trains) {
      const m = this.throughputs.length >= MIN_HISTORY ? median(this.throughputs) : null;
      const collapsed = m !== null && m > 0 && p.tokensPerSecond < t.throughputFraction * m && stepMs >= MIN_SLOW_STEP_MS;
      fire('throughput-collapse', this.slow.update(collapsed, p.step, t.spikeSteps), `${fmt(p.tokensPerSecond)} tokens/s, ${Math.round((p.tokensPerSecond / (m ?? 1)) * 100)} % of its recent median ${fmt(m ?? 0)} (is the machine swapping, or busy with something else?)`);
      pushWindow(this.throughputs, p.tokensPerSecond);
    }

    if (mem && mem.limitBytes > 0) {
      const f = mem.usedBytes / mem.limitBytes;
      fire('memory-high', this.memory.update(f > t.memoryFraction, p.step, 1), `the studio uses ${Math.round(f * 100)} % of the machine's memory (${(mem.usedBytes / 2 ** 30).toFixed(1)} of ${(mem.limitBytes / 2 ** 30).toFixed(1)} GiB): a larger batch or sequence length may not fit`);
    }
    return out;
  }
}

/**
 * The studio's memory against the machine's: engine workers are threads of this process, so its resident set holds
 * the training's weights, activations and optimizer state (cpu backend; a GPU's own memory is not seen here).
 */
export function processMemory(): MemorySample {
  return { usedBytes: process.memoryUsage.rss(), limitBytes: totalmem() };
}

/**
 * The memory a point says the training held — the resident set the engine measured at the end of that step
 * (MetricPoint.rssBytes, the same process as processMemory) — against the machine's. A point without it (an engine
 * from before the field) falls back to measuring now. The webgpu figure (deviceBytes) is GPU memory, which the
 * machine's total says nothing about, so it is not compared here.
 */
export function pointMemory(p: MetricPoint, limitBytes: number = totalmem()): MemorySample {
  return p.rssBytes !== undefined ? { usedBytes: p.rssBytes, limitBytes } : processMemory();
}
