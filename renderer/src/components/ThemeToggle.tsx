import { nextThemeChoice, useTheme } from '../stores/theme.ts';

const LABEL = { system: 'Theme: system', light: 'Theme: light', dark: 'Theme: dark' } as const;

/** The top bar's theme button: system → light → dark. */
export function ThemeToggle() {
  const choice = useTheme((s) => s.choice);
  const theme = useTheme((s) => s.theme);
  const choose = useTheme((s) => s.choose);
  return (
    <button type="button" data-testid="theme-toggle" data-choice={choice} data-theme={theme} title={`${LABEL[choice]}${choice === 'system' ? ` (${theme} now)` : ''}; click for ${nextThemeChoice(choice)}`} onClick={() => choose(nextThemeChoice(choice))}>
      {choice === 'system' ? `◐ ${theme}` : choice === 'light' ? '☀ light' : '☾ dark'}
    </button>
  );
}
