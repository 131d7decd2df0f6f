/**
 * The studio settings dialog as the user types it (strings, so a half-typed number is kept) and its translation
 * into a 'settings.set' patch, judged by the protocol's own StudioSettingsSchema so the dialog and the services
 * refuse the same values with the same words.
 */
import { StudioSettingsSchema, type StudioSettings } from '../../../common/protocol.ts';

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
}

export type SettingsPatch = Pick<StudioSettings, 'checkpointEverySteps' | 'checkpointEveryMinutes' | 'autoResume' | 'maxConcurrentRunsPerDevice' | 'prometheusPort' | 'cpuThreads'>;

export function draftOf(s: StudioSettings): SettingsDraft {
  return {
    checkpointEverySteps: String(s.checkpointEverySteps),
    checkpointEveryMinutes: String(s.checkpointEveryMinutes),
    autoResume: s.autoResume,
    maxConcurrentRunsPerDevice: String(s.maxConcurrentRunsPerDevice),
    prometheusOn: s.prometheusPort !== null,
    prometheusPort: String(s.prometheusPort ?? DEFAULT_PROMETHEUS_PORT),
    cpuThreads: s.cpuThreads === null ? '' : String(s.cpuThreads),
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
export function checkDraft(d: SettingsDraft): { ok: true; patch: SettingsPatch } | { ok: false; errors: Partial<Record<keyof SettingsDraft, string>> } {
  const input: Record<string, unknown> = {
    checkpointEverySteps: num(d.checkpointEverySteps),
    checkpointEveryMinutes: num(d.checkpointEveryMinutes),
    autoResume: d.autoResume,
    maxConcurrentRunsPerDevice: num(d.maxConcurrentRunsPerDevice),
    prometheusPort: d.prometheusOn ? num(d.prometheusPort) : null,
    // Empty means automatic here, unlike the other number fields.
    cpuThreads: d.cpuThreads.trim() === '' ? null : Number(d.cpuThreads.trim()),
  };
  const parsed = PatchSchema.safeParse(input);
  if (parsed.success) return { ok: true, patch: parsed.data };
  const errors: Partial<Record<keyof SettingsDraft, string>> = {};
  for (const issue of parsed.error.issues) {
    const key = String(issue.path[0] ?? '');
    if (!(key in d) || key in errors) continue;
    const value = input[key];
    // zod's own words for "" and "abc" name types ("expected number, received NaN"); say it plainly.
    const notANumber = value === undefined || (typeof value === 'number' && Number.isNaN(value));
    errors[key as keyof SettingsDraft] = notANumber ? 'must be a number' : issue.message;
  }
  return { ok: false, errors };
}
