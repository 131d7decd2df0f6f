import { useEffect, useRef, useState } from 'react';
import type { StudioErrorInfo } from '../../../common/protocol.ts';
import { errorInfo } from '../client/transport.ts';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { useDialogFocus, useEscapeCloses } from '../components/use-dialog-focus.ts';
import { useStudio } from '../stores/studio.ts';
import './runs.css';
import { checkDraft, draftOf, HEALTH_NUMBER_FIELDS, type HealthDraft, type HealthNumberField, type SettingsDraft } from './settings-form.ts';
import { requestAlertPermission } from '../stores/run-alerts.ts';

/** What each alert threshold means, as the dialog labels it. */
const HEALTH_LABELS: Record<HealthNumberField, [label: string, hint: string]> = {
  lossSpikeFactor: ['Loss spike: × recent median', 'the loss above this many times its median over 20 steps'],
  spikeSteps: ['…for this many steps', 'in a row (also for gradient norm and throughput)'],
  skippedStepsIn20: ['Skipped fp16 steps in 20', 'this many overflowing steps of the last 20'],
  lossScaleBelow: ['Loss scale below', 'fp16: the scale has collapsed under this'],
  gradNormFactor: ['Gradient norm: × recent median', 'exploding above this many times its median'],
  gradNormBelow: ['Gradient norm below', 'vanishing under this value'],
  overfitEvaluations: ['Validation rises in a row', 'evaluations with a rising validation loss while training falls'],
  throughputFraction: ['Throughput below (fraction)', 'tokens/s under this share of its median'],
  memoryFraction: ['Memory above (fraction)', 'of the machine, used by the studio'],
};

/** The top bar's Settings button and the dialog it opens ('settings.get' / 'settings.set'). */
export function SettingsButton() {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button type="button" data-testid="settings-open" onClick={() => setOpen(true)}>
        Settings
      </button>
      {open ? <SettingsDialog onClose={() => setOpen(false)} /> : null}
    </>
  );
}

export function SettingsDialog({ onClose }: { onClose(): void }) {
  const client = useStudio((s) => s.client);
  const [draft, setDraft] = useState<SettingsDraft | null>(null);
  const [loadError, setLoadError] = useState<StudioErrorInfo | null>(null);
  const [saveError, setSaveError] = useState<StudioErrorInfo | null>(null);
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState(false);
  const dialog = useRef<HTMLDivElement>(null);
  useDialogFocus(dialog);

  useEffect(() => {
    if (!client) return;
    let live = true;
    client.request('settings.get', {}).then(
      (s) => live && setDraft(draftOf(s)),
      (e: unknown) => live && setLoadError(errorInfo(e)),
    );
    return () => {
      live = false;
    };
  }, [client]);
  useEscapeCloses(onClose);

  const check = draft ? checkDraft(draft) : null;
  const errors = check && !check.ok ? check.errors : {};
  const edit = <K extends keyof SettingsDraft>(key: K, value: SettingsDraft[K]) => {
    setSaved(false);
    setDraft((d) => (d ? { ...d, [key]: value } : d));
  };
  const editHealth = <K extends keyof HealthDraft>(key: K, value: HealthDraft[K]) => {
    setSaved(false);
    setDraft((d) => (d ? { ...d, health: { ...d.health, [key]: value } } : d));
  };

  const save = async () => {
    if (!client || !check || !check.ok) return;
    setSaving(true);
    setSaveError(null);
    try {
      setDraft(draftOf(await client.request('settings.set', check.patch)));
      setSaved(true);
    } catch (e) {
      setSaveError(errorInfo(e));
    } finally {
      setSaving(false);
    }
  };

  return (
    <div className="modal-backdrop" onClick={onClose}>
      <div ref={dialog} tabIndex={-1} className="modal card" role="dialog" aria-modal="true" aria-labelledby="settings-title" data-testid="settings-dialog" onClick={(e) => e.stopPropagation()}>
        <h2 id="settings-title">Studio settings</h2>
        {loadError ? <ErrorNote error={loadError} testId="settings-load-error" /> : null}
        {!draft ? (
          loadError ? null : <div className="muted">loading…</div>
        ) : (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              void save();
            }}
          >
            <fieldset>
              <legend>Checkpoints</legend>
              <div className="grid-2">
                <TextSetting id="checkpointEverySteps" label="Every N steps" hint="when a run sets none; 0: off" value={draft.checkpointEverySteps} error={errors.checkpointEverySteps} onChange={(v) => edit('checkpointEverySteps', v)} />
                <TextSetting id="checkpointEveryMinutes" label="Every M minutes" hint="also, by time; 0: off" value={draft.checkpointEveryMinutes} error={errors.checkpointEveryMinutes} onChange={(v) => edit('checkpointEveryMinutes', v)} />
              </div>
              <label className="check">
                <input type="checkbox" data-testid="setting-autoResume" checked={draft.autoResume} onChange={(e) => edit('autoResume', e.target.checked)} />
                Resume interrupted runs automatically after a crash
              </label>
            </fieldset>
            <fieldset>
              <legend>Queue</legend>
              <TextSetting
                id="maxConcurrentRunsPerDevice"
                label="Runs at once per device"
                hint="more runs wait in the queue and start by themselves"
                value={draft.maxConcurrentRunsPerDevice}
                error={errors.maxConcurrentRunsPerDevice}
                onChange={(v) => edit('maxConcurrentRunsPerDevice', v)}
              />
            </fieldset>
            <fieldset>
              <legend>CPU</legend>
              <TextSetting
                id="cpuThreads"
                label="Threads of the cpu backend"
                hint="empty: the machine's cores, at most 8 · applies to runs that start next; results are the same for any count"
                value={draft.cpuThreads}
                error={errors.cpuThreads}
                onChange={(v) => edit('cpuThreads', v)}
              />
            </fieldset>
            <fieldset data-testid="settings-health">
              <legend>Training-health alerts</legend>
              <label className="check">
                <input type="checkbox" data-testid="setting-health-enabled" checked={draft.health.enabled} onChange={(e) => editHealth('enabled', e.target.checked)} />
                Warn when a run goes wrong (loss spike, NaN, overflow, gradients, overfitting, throughput, memory)
              </label>
              <label className="check">
                <input
                  type="checkbox"
                  data-testid="setting-health-notify"
                  checked={draft.health.notify}
                  onChange={(e) => {
                    editHealth('notify', e.target.checked);
                    // Asked on the click that turns it on: browsers only ask from a user gesture.
                    if (e.target.checked) requestAlertPermission();
                  }}
                />
                Also as a desktop notification
              </label>
              {/* Always shown, even when alerts are off: a value that blocks Save must be where it can be seen. */}
              <div className="grid-2">
                {HEALTH_NUMBER_FIELDS.map((k) => (
                  <TextSetting key={k} id={`health-${k}`} label={HEALTH_LABELS[k][0]} hint={HEALTH_LABELS[k][1]} value={draft.health[k]} error={errors[`health.${k}`]} onChange={(v) => editHealth(k, v)} />
                ))}
              </div>
            </fieldset>
            <fieldset>
              <legend>Prometheus</legend>
              <label className="check">
                <input type="checkbox" data-testid="setting-prometheusOn" checked={draft.prometheusOn} onChange={(e) => edit('prometheusOn', e.target.checked)} />
                Serve metrics for Prometheus
              </label>
              {draft.prometheusOn ? (
                <TextSetting
                  id="prometheusPort"
                  label="Port"
                  hint={`http://127.0.0.1:${draft.prometheusPort.trim() || '…'}/metrics`}
                  value={draft.prometheusPort}
                  error={errors.prometheusPort}
                  onChange={(v) => edit('prometheusPort', v)}
                />
              ) : null}
            </fieldset>
            {saveError ? <ErrorNote error={saveError} testId="settings-save-error" /> : null}
            <div className="modal-actions">
              {saved ? (
                <span className="muted" data-testid="settings-saved">
                  Saved.
                </span>
              ) : null}
              <button type="button" onClick={onClose} data-testid="settings-close">
                Close
              </button>
              <button type="submit" className="primary" data-testid="settings-save" disabled={!check?.ok || saving}>
                {saving ? 'Saving…' : 'Save'}
              </button>
            </div>
          </form>
        )}
      </div>
    </div>
  );
}

function TextSetting({ id, label, hint, value, error, onChange }: { id: string; label: string; hint: string; value: string; error?: string; onChange(v: string): void }) {
  return (
    <div className={`field${error ? ' field-invalid' : ''}`}>
      <label htmlFor={`setting-${id}`}>{label}</label>
      <input id={`setting-${id}`} type="text" inputMode="decimal" data-testid={`setting-${id}`} value={value} onChange={(e) => onChange(e.target.value)} />
      {error ? (
        <div className="field-error" role="alert" data-testid={`setting-error-${id}`}>
          {error}
        </div>
      ) : (
        <div className="field-hint">{hint}</div>
      )}
    </div>
  );
}
