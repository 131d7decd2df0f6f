import { AdaptersList } from './components/AdaptersList.tsx';
import { DatasetPanel } from './components/DatasetPanel.tsx';
import { DatasetPicker } from './components/DatasetPicker.tsx';
import { DropZone } from './components/DropZone.tsx';
import { LossChart } from './components/LossChart.tsx';
import { ModelPicker } from './components/ModelPicker.tsx';
import { RunHistory } from './components/RunHistory.tsx';
import { RunProgress } from './components/RunProgress.tsx';
import { TrainForm } from './components/TrainForm.tsx';
import { PageTabs, panelId, tabId, type StudioPage } from './lab/PageTabs.tsx';
import type { ReactNode } from 'react';
import { ConnectionLost, NoConnectionPage, TokenPage } from './components/ConnectionStates.tsx';
import { QuantLab } from './lab/QuantLab.tsx';
import { PlaygroundPage } from './playground/PlaygroundPage.tsx';
import { RunsPage } from './runs/RunsPage.tsx';
import { SettingsButton } from './runs/SettingsDialog.tsx';
import { usePage } from './stores/page.ts';
import { useStudio } from './stores/studio.ts';

export function App() {
  const currentRunId = useStudio((s) => s.currentRunId);
  const page = usePage((s) => s.page);
  const setPage = usePage((s) => s.show);
  const connection = useStudio((s) => s.connection);
  const unreachable = useStudio((s) => s.unreachable);
  // Nothing on the pages can work without the host: a refused token or a host that never answered gets a page of
  // its own that says what to do, instead of a whole UI whose only clue is a hint somewhere.
  if (connection === 'unauthorized') return <TokenPage />;
  if (unreachable) return <NoConnectionPage />;
  return (
    <div className="app">
      <Header />
      <PageTabs page={page} onChange={setPage} />
      <ConnectionLost />
      <Notice />
      <DropZone />
      <TabPanel page="quant" current={page}>
        {page === 'quant' ? <QuantLab /> : null}
      </TabPanel>
      <TabPanel page="runs" current={page}>
        {page === 'runs' ? <RunsPage /> : null}
      </TabPanel>
      {/* Hidden, not unmounted, like the training page: a streaming answer keeps its text while the user looks elsewhere. */}
      <TabPanel page="playground" current={page}>
        <PlaygroundPage />
      </TabPanel>
      {/* Hidden, not unmounted: the training page keeps its local state while the lab is open. */}
      <TabPanel page="train" current={page}>
        <main className="columns">
          <div className="column column-setup">
            <ModelPicker />
            <DatasetPicker />
            <TrainForm />
          </div>
          <div className="column column-live">
            <DatasetPanel />
            <section className="card" data-testid="training">
              <h2>Training</h2>
              <RunProgress runId={currentRunId} />
              <LossChart runId={currentRunId} />
            </section>
            <AdaptersList />
            <RunHistory />
          </div>
        </main>
      </TabPanel>
    </div>
  );
}

/** A page's panel: tied to its tab, and `hidden` (out of sight and of the accessibility tree) when another is shown. */
function TabPanel({ page, current, children }: { page: StudioPage; current: StudioPage; children: ReactNode }) {
  return (
    <div role="tabpanel" id={panelId(page)} aria-labelledby={tabId(page)} hidden={page !== current} data-testid={`panel-${page}`}>
      {children}
    </div>
  );
}

function Header() {
  const connection = useStudio((s) => s.connection);
  const info = useStudio((s) => s.appInfo);
  return (
    <header className="topbar">
      <div className="brand">
        <span className="logo" aria-hidden="true" />
        <h1 className="brand-name">LoRA Studio</h1>
        {info ? <span className="muted">v{info.version}</span> : null}
      </div>
      <div className="topbar-right">
        {info ? (
          <span className="muted" title={info.home}>
            {info.host === 'web' ? 'web' : 'desktop'} · backends {info.backends.join(', ') || '—'}
          </span>
        ) : null}
        <SettingsButton />
        <span className={`conn conn-${connection}`} data-testid="connection" data-state={connection}>
          {connection === 'open' ? 'connected' : connection === 'connecting' ? 'connecting…' : connection === 'unauthorized' ? 'refused' : 'disconnected'}
        </span>
      </div>
    </header>
  );
}

function Notice() {
  const notice = useStudio((s) => s.notice);
  const dismiss = useStudio((s) => s.dismissNotice);
  if (!notice) return null;
  return (
    <div className="banner" role="alert" data-testid="notice">
      <span>{notice.message}</span>
      <button type="button" className="link" onClick={dismiss}>
        Dismiss
      </button>
    </div>
  );
}
