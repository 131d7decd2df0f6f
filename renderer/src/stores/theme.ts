/**
 * Light or dark: the system's setting unless the person chose one (kept in localStorage). The choice is applied as
 * `data-theme` on <html>, which the stylesheets read (styles.css holds dark, theme-light.css the light values), and
 * it follows the system while the choice is 'system'.
 */
import { create } from 'zustand';
import { browserStorage, type KeyValueStorage } from './form-storage.ts';

export const THEME_STORAGE_KEY = 'lora-studio.theme';
export const THEME_CHOICES = ['system', 'light', 'dark'] as const;
export type ThemeChoice = (typeof THEME_CHOICES)[number];
export type Theme = 'light' | 'dark';

export function resolveTheme(choice: ThemeChoice, systemPrefersLight: boolean): Theme {
  return choice === 'system' ? (systemPrefersLight ? 'light' : 'dark') : choice;
}

/** The next choice of the toggle: system → light → dark → system. */
export function nextThemeChoice(choice: ThemeChoice): ThemeChoice {
  return THEME_CHOICES[(THEME_CHOICES.indexOf(choice) + 1) % THEME_CHOICES.length]!;
}

export function loadThemeChoice(storage: KeyValueStorage | null): ThemeChoice {
  try {
    const v = storage?.getItem(THEME_STORAGE_KEY);
    return THEME_CHOICES.find((c) => c === v) ?? 'system';
  } catch {
    return 'system';
  }
}

const query = (): MediaQueryList | null => (typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: light)') : null);

function apply(theme: Theme): void {
  if (typeof document !== 'undefined') document.documentElement.dataset.theme = theme;
}

export interface ThemeState {
  choice: ThemeChoice;
  theme: Theme;
  choose(choice: ThemeChoice): void;
}

export const useTheme = create<ThemeState>()((set) => {
  const choice = loadThemeChoice(browserStorage());
  const theme = resolveTheme(choice, query()?.matches ?? false);
  apply(theme);
  query()?.addEventListener('change', (e) => {
    set((s) => {
      if (s.choice !== 'system') return {};
      const t = resolveTheme('system', e.matches);
      apply(t);
      return { theme: t };
    });
  });
  return {
    choice,
    theme,
    choose(next) {
      const t = resolveTheme(next, query()?.matches ?? false);
      apply(t);
      try {
        browserStorage()?.setItem(THEME_STORAGE_KEY, next);
      } catch {
        // blocked storage: the choice lasts until the page closes
      }
      set({ choice: next, theme: t });
    },
  };
});
