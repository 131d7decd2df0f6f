import { AdaptersList } from './components/AdaptersList.tsx';
import { DatasetPanel } from './components/DatasetPanel.tsx';
import { DatasetPicker } from './components/DatasetPicker.tsx';
import { DropZone } from './components/DropZone.tsx';
import { LossChart } from './components/LossChart.tsx';
import { ModelPicker } from './components/ModelPicker.tsx';
import { RunHistory } from './components/RunHistory.tsx';
import { RunProgress } from './components/RunProgress.tsx';
import { TrainForm } from './components/TrainForm.tsx';
import { PageTabs } from './lab/PageTabs.tsx';
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
  return (
    <div className="app">
      <Header />
      <PageTabs page={page} onChange={setPage} />
      <Notice />
      <DropZone />
      {page === 'quant' ? <QuantLab /> : null}
      {page === 'runs' ? <RunsPage /> : null}
      {/* Hidden, not unmounted, like the training page: a streaming answer keeps its text while the user looks elsewhere. */}
      <div style={page === 'playground' ? undefined : { display: 'none' }}>
        <PlaygroundPage />
      </div>
      {/* Hidden, not unmounted: the training page keeps its local state while the lab is open. */}
      <main className="columns" style={page === 'train' ? undefined : { display: 'none' }}>
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
        <span className="brand-name">LoRA Studio</span>
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
          {connection === 'open' ? 'connected' : connection === 'connecting' ? 'connecting…' : 'disconnected'}
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
