/**
 * Training-health alerts: what the services' detector (host/services/run-health.ts) says about a run while it
 * trains, the thresholds it uses (a studio setting, 'healthAlerts') and how an alert is kept in the run's event log.
 *
 * An alert is stored as a 'warn' line of the event log whose message starts with `[alert:<kind>]`, so a run's alerts
 * come back with 'runs.events' after a reload or a restart (alertFromEvent reads them), and live as 'run.alert'.
 */
import { z } from 'zod';

export const ALERT_KINDS = ['non-finite-loss', 'loss-spike', 'skipped-steps', 'loss-scale-collapse', 'grad-norm-exploding', 'grad-norm-vanishing', 'overfitting', 'throughput-collapse', 'memory-high'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** Short titles, as the run's alert list and the notification show them. */
export const ALERT_TITLES: Record<AlertKind, string> = {
  'non-finite-loss': 'Loss is NaN or infinite',
  'loss-spike': 'Loss spike',
  'skipped-steps': 'Many skipped fp16 steps',
  'loss-scale-collapse': 'Loss scale collapsing',
  'grad-norm-exploding': 'Gradient norm exploding',
  'grad-norm-vanishing': 'Gradient norm vanishing',
  overfitting: 'Overfitting: validation loss rising',
  'throughput-collapse': 'Throughput collapsed',
  'memory-high': 'Memory near the limit',
};

/** One alert of one run at one step. */
export const RunAlertSchema = z.object({
  runId: z.string(),
  kind: z.enum(ALERT_KINDS),
  /** The step the problem shows at first (the chart highlights it). */
  step: z.number().int().min(0),
  /** Plain words: what was seen, with the numbers. */
  message: z.string(),
  /** The event-log line holding it ('runs.events'), when it is stored. */
  eventId: z.number().int().optional(),
  at: z.string().optional(),
});
export type RunAlert = z.infer<typeof RunAlertSchema>;

/** The detector's thresholds (Settings → Training-health alerts). */
export const HealthThresholdsSchema = z.object({
  /** Off: no alerts at all. */
  enabled: z.boolean(),
  /** Loss spike: the loss is above this many times its recent median… */
  lossSpikeFactor: z.number({ message: 'must be a number' }).gt(1, 'must be above 1').max(1000, 'must be at most 1000'),
  /** …for this many steps in a row (also used by the gradient-norm and throughput rules). */
  spikeSteps: z.number({ message: 'must be a number' }).int('must be a whole number of steps').min(1, 'must be at least 1').max(1000, 'must be at most 1000'),
  /** Skipped fp16 steps among the last 20 that make a storm. */
  skippedStepsIn20: z.number({ message: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(20, 'must be at most 20'),
  /** fp16: the loss scale below this has collapsed. */
  lossScaleBelow: z.number({ message: 'must be a number' }).positive('must be greater than 0'),
  /** Gradient norm above this many times its recent median is exploding. */
  gradNormFactor: z.number({ message: 'must be a number' }).gt(1, 'must be above 1').max(1e6, 'must be at most 1,000,000'),
  /** Gradient norm below this (for spikeSteps steps) is vanishing. */
  gradNormBelow: z.number({ message: 'must be a number' }).min(0, 'cannot be negative'),
  /** Overfitting: validation loss rose at this many evaluations in a row while the training loss fell. */
  overfitEvaluations: z.number({ message: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(100, 'must be at most 100'),
  /** Throughput collapse: tokens/s below this fraction of its recent median. */
  throughputFraction: z.number({ message: 'must be a number' }).gt(0, 'must be greater than 0').lt(1, 'must be below 1'),
  /** Memory: the studio's process uses more than this fraction of the machine's memory. */
  memoryFraction: z.number({ message: 'must be a number' }).gt(0, 'must be greater than 0').max(1, 'must be at most 1'),
  /** Also show a desktop / browser notification (when the browser allows it). */
  notify: z.boolean(),
});
export type HealthThresholds = z.infer<typeof HealthThresholdsSchema>;

export const DEFAULT_HEALTH_THRESHOLDS: HealthThresholds = {
  enabled: true,
  lossSpikeFactor: 2,
  spikeSteps: 3,
  skippedStepsIn20: 5,
  lossScaleBelow: 1,
  gradNormFactor: 10,
  gradNormBelow: 1e-8,
  overfitEvaluations: 2,
  throughputFraction: 0.3,
  memoryFraction: 0.9,
  notify: true,
};

const PREFIX = /^\[alert:([a-z-]+)\] /;

/** The event-log line of an alert. */
export function alertEventMessage(kind: AlertKind, message: string): string {
  return `[alert:${kind}] ${message}`;
}

/** An alert kept in the event log, or null for any other line. */
export function alertFromEvent(e: { id?: number; runId: string; at?: string; step: number | null; message: string }): RunAlert | null {
  const m = PREFIX.exec(e.message);
  if (!m || !(ALERT_KINDS as readonly string[]).includes(m[1])) return null;
  const alert: RunAlert = { runId: e.runId, kind: m[1] as AlertKind, step: e.step ?? 0, message: e.message.slice(m[0].length) };
  if (e.id !== undefined) alert.eventId = e.id;
  if (e.at !== undefined) alert.at = e.at;
  return alert;
}

/** A log line as a person reads it: an alert's `[alert:<kind>]` key becomes its title ("Loss spike: …"). */
export function plainLogMessage(message: string): string {
  const m = PREFIX.exec(message);
  if (!m || !(ALERT_KINDS as readonly string[]).includes(m[1])) return message;
  return `${ALERT_TITLES[m[1] as AlertKind]}: ${message.slice(m[0].length)}`;
}
