import type { ReactNode } from 'react';

/**
 * What shows under a form field: its error when it has one (role=alert, so a screen reader announces it), else its
 * hint, else nothing. One component so every form says problems and help the same way.
 */
export function FieldNote({
  error,
  errorTestId,
  hint,
  hintTestId,
  hintData,
}: {
  error: string | null | undefined;
  errorTestId: string;
  hint?: ReactNode;
  hintTestId?: string;
  /** data-* attributes for the hint (tests read what it stands for, e.g. the backend `auto` resolved to). */
  hintData?: Record<`data-${string}`, string>;
}) {
  if (error) {
    return (
      <div className="field-error" data-testid={errorTestId} role="alert">
        {error}
      </div>
    );
  }
  if (hint === undefined || hint === null || hint === '') return null;
  return (
    <div className="field-hint" data-testid={hintTestId} {...hintData}>
      {hint}
    </div>
  );
}
