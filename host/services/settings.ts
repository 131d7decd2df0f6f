/**
 * Studio-wide settings (checkpoint intervals, auto-resume, runs per device, the Prometheus port, timeouts), kept in
 * the studio database so the desktop app, the web host and the CLI share them. Unknown or broken stored values fall
 * back to their defaults instead of taking the studio down.
 */
import { DEFAULT_STUDIO_SETTINGS, StudioSettingsSchema, type StudioSettings } from '../../common/protocol.ts';
import type { StudioDb } from './db.ts';
import { StudioError } from './errors.ts';
import type { StateTimeouts } from './run-state.ts';

const KEYS = Object.keys(DEFAULT_STUDIO_SETTINGS) as (keyof StudioSettings)[];
const PREFIX = 'studio.';

export class SettingsStore {
  private readonly db: StudioDb;
  private cached: StudioSettings | null = null;
  private readonly listeners = new Set<(s: StudioSettings) => void>();

  constructor(db: StudioDb) {
    this.db = db;
  }

  get(): StudioSettings {
    if (this.cached) return { ...this.cached };
    const out: Record<string, unknown> = { ...DEFAULT_STUDIO_SETTINGS };
    for (const key of KEYS) {
      const stored = this.db.getSetting(PREFIX + key);
      if (stored === undefined) continue;
      const field = StudioSettingsSchema.shape[key].safeParse(stored);
      if (field.success) out[key] = field.data;
    }
    this.cached = out as StudioSettings;
    return { ...this.cached };
  }

  /** Validates and stores some settings; a bad value is refused naming the setting. Returns all settings. */
  set(patch: unknown): StudioSettings {
    // A key zod's record drops on the way (JSON's "__proto__" is an own key of the parsed object) is as unknown as any.
    if (typeof patch === 'object' && patch !== null) {
      const unknown = Object.keys(patch).filter((k) => !(KEYS as readonly string[]).includes(k));
      if (unknown.length > 0) throw StudioError.fields(unknown.map((k) => ({ field: k, message: `unknown setting: ${JSON.stringify(k)}` })));
    }
    // The alert thresholds are one setting holding several: a patch may change some of them, the rest stay.
    const input = patch as Record<string, unknown> | null | undefined;
    const health = input?.healthAlerts;
    const merged = typeof health === 'object' && health !== null && !Array.isArray(health) ? { ...input, healthAlerts: { ...this.get().healthAlerts, ...health } } : input;
    const parsed = StudioSettingsSchema.partial().strict().safeParse(merged ?? {});
    if (!parsed.success) throw StudioError.fields(parsed.error.issues.map((i) => ({ field: i.path.join('.') || 'settings', message: i.code === 'unrecognized_keys' ? `unknown setting: ${i.message}` : i.message })));
    this.db.tx(() => {
      for (const [key, value] of Object.entries(parsed.data)) if (value !== undefined) this.db.setSetting(PREFIX + key, value);
    });
    this.cached = null;
    const all = this.get();
    for (const l of this.listeners) l(all);
    return all;
  }

  onChange(listener: (s: StudioSettings) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** The watchdog limits the settings ask for (0 turns one off). */
export function timeoutsOf(s: StudioSettings): StateTimeouts {
  return {
    validatingMs: s.validationTimeoutSeconds * 1000,
    startupMs: s.startupTimeoutMinutes * 60_000,
    stepMs: s.stepTimeoutMinutes * 60_000,
    finalizingMs: 5 * 60_000,
  };
}
