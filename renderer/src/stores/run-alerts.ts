/**
 * Training-health alerts in the window: every run's alerts (from its event log, then live 'run.alert' events), the
 * step the user asked the chart to highlight, and the desktop / browser notification of a new alert (the Web
 * Notifications API; the desktop app shows the same renderer, so Electron turns it into a system notification).
 */
import { create } from 'zustand';
import type { StudioEventMessage, StudioSettings } from '../../../common/protocol.ts';
import { ALERT_TITLES, alertFromEvent, type RunAlert } from '../../../common/run-health.ts';
import { EMPTY_ALERTS, mergeAlerts } from './alerts-merge.ts';
import { followStudioEvents } from './follow-events.ts';
import { useStudio } from './studio.ts';

export interface RunAlertsState {
  alerts: Record<string, readonly RunAlert[]>;
  /** The alert step the charts mark, per run (set by clicking an alert). */
  highlighted: Record<string, number>;
  /** The 'healthAlerts.notify' setting as the services last said. */
  notify: boolean;
  load(runId: string): Promise<void>;
  highlight(runId: string, step: number | null): void;
}

export { EMPTY_ALERTS };

/** Asks the browser for notifications (call from a click: browsers only ask from a user gesture). */
export function requestAlertPermission(): void {
  if (typeof Notification === 'undefined' || Notification.permission !== 'default') return;
  void Notification.requestPermission().catch(() => undefined);
}

export function notificationPermission(): NotificationPermission | 'unsupported' {
  return typeof Notification === 'undefined' ? 'unsupported' : Notification.permission;
}

function showNotification(alert: RunAlert): void {
  const s = useRunAlerts.getState();
  if (!s.notify || notificationPermission() !== 'granted') return;
  const run = useStudio.getState().runs[alert.runId];
  const title = `${ALERT_TITLES[alert.kind]} — ${run?.name ?? alert.runId}`;
  const body = `Step ${alert.step}: ${alert.message}`;
  try {
    const n = new Notification(title, { body, tag: `${alert.runId}:${alert.kind}:${alert.step}` });
    n.onclick = () => {
      window.focus();
      useRunAlerts.getState().highlight(alert.runId, alert.step);
    };
  } catch {
    // some browsers only allow notifications from a service worker: the alert is still on the run
  }
}

export const useRunAlerts = create<RunAlertsState>()((set) => ({
  alerts: {},
  highlighted: {},
  notify: true,
  async load(runId) {
    const c = useStudio.getState().client;
    if (!c) return;
    try {
      const events = await c.request('runs.events', { id: runId });
      const found = events.flatMap((e) => {
        const a = alertFromEvent(e);
        return a ? [a] : [];
      });
      set((s) => ({ alerts: { ...s.alerts, [runId]: mergeAlerts(s.alerts[runId] ?? EMPTY_ALERTS, found) } }));
    } catch {
      return; // the run's log could not be read now (a lost connection): the next (re)open loads it again
    }
  },
  highlight(runId, step) {
    set((s) => {
      const highlighted = { ...s.highlighted };
      if (step === null) delete highlighted[runId];
      else highlighted[runId] = step;
      return { highlighted };
    });
  },
}));

function onEvent(m: StudioEventMessage): void {
  if (m.event === 'run.alert') {
    const alert = m.data as RunAlert;
    useRunAlerts.setState((s) => ({ alerts: { ...s.alerts, [alert.runId]: mergeAlerts(s.alerts[alert.runId] ?? EMPTY_ALERTS, [alert]) } }));
    showNotification(alert);
  } else if (m.event === 'settings.changed') {
    useRunAlerts.setState({ notify: (m.data as StudioSettings).healthAlerts.notify });
  } else if (m.event === 'run.removed') {
    const { id } = m.data as { id: string };
    useRunAlerts.setState((s) => {
      const alerts = { ...s.alerts };
      delete alerts[id];
      return { alerts };
    });
  }
}

async function onOpen(): Promise<void> {
  const c = useStudio.getState().client;
  if (!c) return;
  try {
    useRunAlerts.setState({ notify: (await c.request('settings.get', {})).healthAlerts.notify });
  } catch {
    // keep the last known value
  }
  // Alerts raised while the connection was down are in the log: load them for the runs already shown.
  for (const runId of Object.keys(useRunAlerts.getState().alerts)) void useRunAlerts.getState().load(runId);
}

followStudioEvents(onEvent, () => void onOpen());
