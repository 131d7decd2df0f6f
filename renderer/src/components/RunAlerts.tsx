/**
 * A run's training-health alerts (stores/run-alerts.ts), on the Train page's live card and the run's detail: each
 * one names its step and, clicked, marks that step on the run's chart.
 */
import { useEffect, useState } from 'react';
import { ALERT_TITLES } from '../../../common/run-health.ts';
import { EMPTY_ALERTS, notificationPermission, requestAlertPermission, useRunAlerts } from '../stores/run-alerts.ts';
import { useStudio } from '../stores/studio.ts';
import './run-alerts.css';

export function RunAlerts({ runId }: { runId: string }) {
  const alerts = useRunAlerts((s) => s.alerts[runId] ?? EMPTY_ALERTS);
  const highlighted = useRunAlerts((s) => s.highlighted[runId]);
  const notify = useRunAlerts((s) => s.notify);
  const connected = useStudio((s) => s.connection === 'open');
  const [permission, setPermission] = useState(notificationPermission);

  useEffect(() => {
    if (connected) void useRunAlerts.getState().load(runId);
  }, [runId, connected]);

  if (alerts.length === 0) return null;
  return (
    <div className="run-alerts" role="region" aria-label="Training-health alerts" data-testid="run-alerts" data-count={alerts.length}>
      <div className="run-alerts-head">
        <strong>
          {alerts.length} training-health alert{alerts.length === 1 ? '' : 's'}
        </strong>
        {notify && permission === 'default' ? (
          <button
            type="button"
            className="link"
            data-testid="run-alerts-enable-notifications"
            onClick={() => {
              requestAlertPermission();
              // The answer comes later; read it again on the next render.
              setTimeout(() => setPermission(notificationPermission()), 1000);
            }}
          >
            Notify me on the desktop
          </button>
        ) : null}
      </div>
      <ul>
        {alerts.map((a) => (
          <li key={a.eventId ?? `${a.kind}@${a.step}`} data-kind={a.kind} data-step={a.step} data-testid="run-alert">
            <button
              type="button"
              className={`alert-link${highlighted === a.step ? ' alert-link-on' : ''}`}
              aria-pressed={highlighted === a.step}
              title="Mark this step on the chart"
              onClick={() => useRunAlerts.getState().highlight(runId, highlighted === a.step ? null : a.step)}
            >
              <span className="alert-step">step {a.step}</span> <span className="alert-title">{ALERT_TITLES[a.kind]}</span>
            </button>
            <span className="alert-message">{a.message}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}
