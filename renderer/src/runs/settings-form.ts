/**
 * The studio settings dialog as the user types it (strings, so a half-typed number is kept) and its translation
 * into a 'settings.set' patch, judged by the protocol's own StudioSettingsSchema so the dialog and the services
 * refuse the same values with the same words.
 */
import { StudioSettingsSchema, type StudioSettings } from '../../../common/protocol.ts';
import { HealthThresholdsSchema, type HealthThresholds } from '../../../common/run-health.ts';

/** The alert thresholds typed as numbers, in the order the dialog shows them. */
export const HEALTH_NUMBER_FIELDS = ['lossSpikeFactor', 'spikeSteps', 'skippedStepsIn20', 'lossScaleBelow', 'gradNormFactor', 'gradNormBelow', 'overfitEvaluations', 'throughputFraction', 'memoryFraction'] as const;
export type HealthNumberField = (typeof HEALTH_NUMBER_FIELDS)[number];
export type HealthDraft = { enabled: boolean; notify: boolean } & Record<HealthNumberField, string>;
/** A draft field's key for its error: a top-level field, or `health.<threshold>`. */
export type DraftErrorKey = Exclude<keyof SettingsDraft, 'health'> | `health.${HealthNumberField}`;

/** The port Prometheus exporters conventionally use; offered when the endpoint is switched on. */
export const DEFAULT_PROMETHEUS_PORT = 9464;

export interface SettingsDraft {
  checkpointEverySteps: string;
  checkpointEveryMinutes: string;
  autoResume: boolean;
  maxConcurrentRunsPerDevice: string;
  prometheusOn: boolean;
  prometheusPort: string;
  /** '' = automatic. */
  cpuThreads: string;
  health: HealthDraft;
}

export type SettingsPatch = Pick<StudioSettings, 'checkpointEverySteps' | 'checkpointEveryMinutes' | 'autoResume' | 'maxConcurrentRunsPerDevice' | 'prometheusPort' | 'cpuThreads' | 'healthAlerts'>;

function healthDraftOf(h: HealthThresholds): HealthDraft {
  const d = { enabled: h.enabled, notify: h.notify } as HealthDraft;
  for (const k of HEALTH_NUMBER_FIELDS) d[k] = String(h[k]);
  return d;
}

export function draftOf(s: StudioSettings): SettingsDraft {
  return {
    checkpointEverySteps: String(s.checkpointEverySteps),
    checkpointEveryMinutes: String(s.checkpointEveryMinutes),
    autoResume: s.autoResume,
    maxConcurrentRunsPerDevice: String(s.maxConcurrentRunsPerDevice),
    prometheusOn: s.prometheusPort !== null,
    prometheusPort: String(s.prometheusPort ?? DEFAULT_PROMETHEUS_PORT),
    cpuThreads: s.cpuThreads === null ? '' : String(s.cpuThreads),
    health: healthDraftOf(s.healthAlerts),
  };
}

/** '' → undefined (the schema says "expected number"); anything else → Number (NaN is refused the same way). */
function num(text: string): number | undefined {
  const t = text.trim();
  return t === '' ? undefined : Number(t);
}

const PatchSchema = StudioSettingsSchema.pick({
  checkpointEverySteps: true,
  checkpointEveryMinutes: true,
  autoResume: true,
  maxConcurrentRunsPerDevice: true,
  prometheusPort: true,
  cpuThreads: true,
});

/** The patch to send, or a message per draft field (keys of SettingsDraft). */
export function checkDraft(d: SettingsDraft): { ok: true; patch: SettingsPatch } | { ok: false; errors: Partial<Record<DraftErrorKey, string>> } {
  const input: Record<string, unknown> = {
    checkpointEverySteps: num(d.checkpointEverySteps),
    checkpointEveryMinutes: num(d.checkpointEveryMinutes),
    autoResume: d.autoResume,
    maxConcurrentRunsPerDevice: num(d.maxConcurrentRunsPerDevice),
    prometheusPort: d.prometheusOn ? num(d.prometheusPort) : null,
    // Empty means automatic here, unlike the other number fields.
    cpuThreads: d.cpuThreads.trim() === '' ? null : Number(d.cpuThreads.trim()),
  };
  const healthInput: Record<string, unknown> = { enabled: d.health.enabled, notify: d.health.notify };
  for (const k of HEALTH_NUMBER_FIELDS) healthInput[k] = num(d.health[k]);
  const parsed = PatchSchema.safeParse(input);
  const health = HealthThresholdsSchema.safeParse(healthInput);
  if (parsed.success && health.success) return { ok: true, patch: { ...parsed.data, healthAlerts: health.data } };
  const errors: Partial<Record<DraftErrorKey, string>> = {};
  // zod's own words for "" and "abc" name types ("expected number, received NaN"); say it plainly.
  const notANumber = (value: unknown) => value === undefined || (typeof value === 'number' && Number.isNaN(value));
  for (const issue of parsed.success ? [] : parsed.error.issues) {
    const key = String(issue.path[0] ?? '');
    if (!(key in d) || key === 'health' || key in errors) continue;
    errors[key as DraftErrorKey] = notANumber(input[key]) ? 'must be a number' : issue.message;
  }
  for (const issue of health.success ? [] : health.error.issues) {
    const key = String(issue.path[0] ?? '');
    if (!(HEALTH_NUMBER_FIELDS as readonly string[]).includes(key) || `health.${key}` in errors) continue;
    errors[`health.${key as HealthNumberField}`] = notANumber(healthInput[key]) ? 'must be a number' : issue.message;
  }
  return { ok: false, errors };
}
