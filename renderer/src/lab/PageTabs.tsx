import { useRef, type KeyboardEvent } from 'react';

export type StudioPage = 'train' | 'runs' | 'playground' | 'quant';

export const PAGES: { id: StudioPage; label: string }[] = [
  { id: 'train', label: 'Train' },
  { id: 'runs', label: 'Runs' },
  { id: 'playground', label: 'Playground' },
  { id: 'quant', label: 'Quantization lab' },
];

/** Ids that tie each tab to its panel (App renders the panels). */
export const tabId = (page: StudioPage): string => `tab-${page}`;
export const panelId = (page: StudioPage): string => `panel-${page}`;

/**
 * The studio's pages, as tabs under the top bar, keyboard-operable as the WAI-ARIA tabs pattern says: one tab stop
 * (the selected tab), arrow keys move to and show the next or previous page, Home and End the first and last.
 */
export function PageTabs({ page, onChange }: { page: StudioPage; onChange(page: StudioPage): void }) {
  const buttons = useRef(new Map<StudioPage, HTMLButtonElement>());

  function onKeyDown(e: KeyboardEvent<HTMLButtonElement>): void {
    const at = PAGES.findIndex((p) => p.id === page);
    const to =
      e.key === 'ArrowRight' ? (at + 1) % PAGES.length : e.key === 'ArrowLeft' ? (at - 1 + PAGES.length) % PAGES.length : e.key === 'Home' ? 0 : e.key === 'End' ? PAGES.length - 1 : -1;
    if (to < 0) return;
    e.preventDefault();
    const next = PAGES[to]!.id;
    onChange(next);
    buttons.current.get(next)?.focus();
  }

  return (
    <nav className="page-tabs" aria-label="Pages">
      <div role="tablist" aria-label="Pages" className="page-tabs-list">
        {PAGES.map((p) => (
          <button
            key={p.id}
            ref={(el) => {
              if (el) buttons.current.set(p.id, el);
              else buttons.current.delete(p.id);
            }}
            type="button"
            role="tab"
            id={tabId(p.id)}
            aria-selected={page === p.id}
            aria-controls={panelId(p.id)}
            tabIndex={page === p.id ? 0 : -1}
            className={page === p.id ? 'on' : ''}
            data-testid={`tab-${p.id}`}
            onClick={() => onChange(p.id)}
            onKeyDown={onKeyDown}
          >
            {p.label}
          </button>
        ))}
      </div>
    </nav>
  );
}
