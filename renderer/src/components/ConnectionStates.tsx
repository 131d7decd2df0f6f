/**
 * What the page says when the host cannot be used: a token it refuses (missing, or from an earlier session), a host
 * that never answered, and a connection lost after it worked (the pages stay, their actions are off, and runs read
 * "unknown — reconnecting" until the host answers again).
 */
import { useStudio } from '../stores/studio.ts';

export function TokenPage() {
  const problem = useStudio((s) => s.authProblem);
  return (
    <main className="card full-page-state" data-testid="token-page">
      <h1>This page has no access to the studio</h1>
      <p data-testid="token-problem">{problem ?? 'the studio refused this page'}</p>
      <p className="muted">
        The address <code>lora-studio serve</code> prints carries a token (<code>?token=…</code>); a restart of the studio makes a new one, so a tab
        opened before it stops working. Open the address it printed this time.
      </p>
    </main>
  );
}

export function NoConnectionPage() {
  return (
    <main className="card full-page-state" data-testid="no-connection-page" role="status">
      <h1>Cannot reach the studio</h1>
      <p>The page keeps trying and opens by itself once the studio answers.</p>
      <p className="muted">
        Is <code>lora-studio serve</code> still running? Start it again and open the address it prints.
      </p>
    </main>
  );
}

/** Under the tabs once a working connection was lost; gone when the host answers again. */
export function ConnectionLost() {
  const connection = useStudio((s) => s.connection);
  const everConnected = useStudio((s) => s.everConnected);
  if (!everConnected || connection === 'open') return null;
  return (
    <div className="banner banner-offline" role="status" data-testid="connection-lost">
      <span>
        <strong>Lost the connection to the studio — reconnecting…</strong> What runs are doing now is unknown, and actions are off until it answers.
        Nothing typed here is lost.
      </span>
    </div>
  );
}
