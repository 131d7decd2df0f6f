export type StudioPage = 'train' | 'runs' | 'playground' | 'quant';

const PAGES: { id: StudioPage; label: string }[] = [
  { id: 'train', label: 'Train' },
  { id: 'runs', label: 'Runs' },
  { id: 'playground', label: 'Playground' },
  { id: 'quant', label: 'Quantization lab' },
];

/** The studio's pages, as tabs under the top bar. */
export function PageTabs({ page, onChange }: { page: StudioPage; onChange(page: StudioPage): void }) {
  return (
    <nav className="page-tabs" role="tablist" aria-label="Pages">
      {PAGES.map((p) => (
        <button key={p.id} type="button" role="tab" aria-selected={page === p.id} className={page === p.id ? 'on' : ''} data-testid={`tab-${p.id}`} onClick={() => onChange(p.id)}>
          {p.label}
        </button>
      ))}
    </nav>
  );
}
