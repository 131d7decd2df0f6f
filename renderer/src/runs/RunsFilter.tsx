import { useMemo } from 'react';
import type { RunSummary } from '../../../common/protocol.ts';
import { useRunsPage } from './runs-store.ts';
import { tagCounts } from './run-manage-view.ts';

/** The Runs list's search box and tag chips (common/run-info.ts runMatches decides what shows). */
export function RunsFilter({ runs, shown }: { runs: readonly RunSummary[]; shown: number }) {
  const query = useRunsPage((s) => s.query);
  const tagFilter = useRunsPage((s) => s.tagFilter);
  const { setQuery, toggleTagFilter, clearFilter } = useRunsPage.getState();
  const tags = useMemo(() => tagCounts(runs), [runs]);
  const filtering = query.trim() !== '' || tagFilter.length > 0;
  return (
    <div className="runs-filter" role="search">
      <input
        type="search"
        className="runs-search"
        data-testid="runs-search"
        aria-label="Search runs by name, notes, tags, model or dataset"
        placeholder="Search name, notes, tags, model, dataset…"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Escape') setQuery('');
        }}
      />
      {tags.length > 0 ? (
        <div className="tag-chips" role="group" aria-label="Filter by tag">
          {tags.map(({ tag, count }) => {
            const on = tagFilter.some((t) => t.toLowerCase() === tag.toLowerCase());
            return (
              <button key={tag.toLowerCase()} type="button" className={`tag-chip${on ? ' on' : ''}`} data-testid="runs-tag-filter" data-tag={tag} aria-pressed={on} onClick={() => toggleTagFilter(tag)}>
                {tag} <span className="count">{count}</span>
              </button>
            );
          })}
        </div>
      ) : null}
      {filtering ? (
        <span className="muted runs-filter-count" data-testid="runs-filter-count">
          {shown} of {runs.length} shown{' '}
          <button type="button" className="link" data-testid="runs-filter-clear" onClick={clearFilter}>
            clear
          </button>
        </span>
      ) : null}
    </div>
  );
}
