/**
 * Keyboard access for things that act on click but are not buttons (table rows that open a run or a cell):
 * Enter or Space on the element itself does what the click does. Keys pressed inside its own controls (a checkbox,
 * a priority box) are left to them.
 */
import type { KeyboardEvent } from 'react';

export function activateOnKey(action: () => void): (e: KeyboardEvent<HTMLElement>) => void {
  return (e) => {
    if (e.target !== e.currentTarget) return;
    if (e.key !== 'Enter' && e.key !== ' ') return;
    e.preventDefault();
    action();
  };
}
