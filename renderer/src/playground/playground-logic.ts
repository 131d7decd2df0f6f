/** The playground's pure parts: which prompt format matches a training run, and the settings as typed → numbers. */
import type { PlaygroundRequest } from '../../../common/protocol.ts';

/** The wrapping of a run's examples, shared with the engine's evaluation prompts (common/eval-prompts.ts). */
export { promptFormatFor } from '../../../common/eval-prompts.ts';

export interface TypedSettings {
  maxNewTokens: string;
  temperature: string;
  topP: string;
  seed: string;
}

export type SettingsKey = keyof TypedSettings;
export type ParsedSettings = Pick<PlaygroundRequest, SettingsKey>;

/** The typed settings as numbers, or a message per field that is not a valid value. */
export function parseSettings(t: TypedSettings): { values: ParsedSettings | null; errors: Partial<Record<SettingsKey, string>> } {
  const errors: Partial<Record<SettingsKey, string>> = {};
  const read = (key: SettingsKey, ok: (n: number) => boolean, want: string): number => {
    const text = t[key].trim();
    const n = Number(text);
    if (text === '' || !Number.isFinite(n) || !ok(n)) errors[key] = want;
    return n;
  };
  const maxNewTokens = read('maxNewTokens', (n) => Number.isInteger(n) && n >= 1 && n <= 4096, 'a whole number from 1 to 4096');
  const temperature = read('temperature', (n) => n >= 0 && n <= 5, '0 (greedy) to 5');
  const topP = read('topP', (n) => n > 0 && n <= 1, 'more than 0, at most 1');
  const seed = read('seed', Number.isInteger, 'a whole number');
  if (Object.keys(errors).length > 0) return { values: null, errors };
  return { values: { maxNewTokens, temperature, topP, seed }, errors };
}

function rate(v: number): string {
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

/**
 * "12 tokens · 35.2 tok/s decode · prefill 120 ms (150 tok/s) · ended by the model": the decode speed counts only the
 * generated tokens after the first; the prompt's prefill is its own figure (with its speed when the prompt's length
 * is known).
 */
export function describeOutput(o: { tokens: number; tokensPerSecond: number | null; prefillMs?: number | null; stop: 'eos' | 'length' | 'cancelled' | null }, promptTokens?: number): string {
  const parts = [`${o.tokens} token${o.tokens === 1 ? '' : 's'}`];
  if (o.tokensPerSecond !== null) parts.push(`${rate(o.tokensPerSecond)} tok/s decode`);
  if (o.prefillMs !== undefined && o.prefillMs !== null) {
    const ms = o.prefillMs >= 100 ? o.prefillMs.toFixed(0) : o.prefillMs.toFixed(1);
    parts.push(`prefill ${ms} ms${promptTokens !== undefined && promptTokens > 0 && o.prefillMs > 0 ? ` (${rate(promptTokens / (o.prefillMs / 1000))} tok/s)` : ''}`);
  }
  if (o.stop === 'eos') parts.push('ended by the model');
  else if (o.stop === 'length') parts.push('reached max new tokens');
  else if (o.stop === 'cancelled') parts.push('stopped');
  return parts.join(' · ');
}
