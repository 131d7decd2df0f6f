/**
 * "Export for a cluster" on a run ('runs.exportBundle'): where the bundle goes, how it will be launched (one GPU,
 * DDP, DeepSpeed ZeRO-2, FSDP; processes; dropout masks) and whether the base model travels with it. The answer
 * shows the folder and the launch commands; a refusal shows under the field it is about.
 */
import { useRef, useState } from 'react';
import {
  BUNDLE_DROPOUT_MODES,
  BUNDLE_LAUNCHERS,
  DEFAULT_BUNDLE_LAUNCH,
  DROPOUT_MODE_LABEL,
  LAUNCHER_LABEL,
  launchCommand,
  type BundleDropoutMode,
  type BundleLauncher,
} from '../../../common/bundle-launch.ts';
import { BUNDLE_INCLUDE_MODEL, type BundleIncludeModel, type BundleSummary, type RunSummary, type StudioErrorInfo } from '../../../common/protocol.ts';
import { errorInfo } from '../client/transport.ts';
import { useExternalRuns } from '../stores/external-runs.ts';
import { useStudio } from '../stores/studio.ts';
import { ErrorNote } from './ErrorNote.tsx';
import { FieldNote } from './FieldNote.tsx';
import { splitFieldErrors } from './split-field-errors.ts';
import { PathField } from './PathField.tsx';
import { useDialogFocus, useEscapeCloses } from './use-dialog-focus.ts';
import '../runs/runs.css';
import './cluster.css';

const INCLUDE_LABEL: Record<BundleIncludeModel, string> = {
  auto: 'when it is small (≤ 64 MiB)',
  always: 'always',
  never: 'never (train.py gets --model)',
};

/** The request's fields the dialog has a control for; a refusal about one of them is shown under it. */
type Field = 'destination' | 'launcher' | 'processes' | 'dropout' | 'includeModel';
const FIELDS: readonly Field[] = ['destination', 'launcher', 'processes', 'dropout', 'includeModel'];

export function ExportBundleButton({ run }: { run: RunSummary }) {
  const [open, setOpen] = useState(false);
  const connected = useStudio((s) => s.connection === 'open');
  return (
    <>
      <button type="button" data-testid="run-export-bundle" disabled={!connected} title="Write this run as a folder Hugging Face Accelerate + PEFT train exactly as the studio would" onClick={() => setOpen(true)}>
        Export for a cluster
      </button>
      {open ? <ExportBundleDialog run={run} onClose={() => setOpen(false)} /> : null}
    </>
  );
}

export function ExportBundleDialog({ run, onClose }: { run: RunSummary; onClose(): void }) {
  const client = useStudio((s) => s.client);
  const isElectron = client?.host === 'electron';
  const [destination, setDestination] = useState('');
  const [launcher, setLauncher] = useState<BundleLauncher>(DEFAULT_BUNDLE_LAUNCH.launcher);
  const [processes, setProcesses] = useState(String(DEFAULT_BUNDLE_LAUNCH.processes));
  const [dropout, setDropout] = useState<BundleDropoutMode>(DEFAULT_BUNDLE_LAUNCH.dropout);
  const [includeModel, setIncludeModel] = useState<BundleIncludeModel>('auto');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<BundleSummary | null>(null);
  const [fieldErrors, setFieldErrors] = useState<Partial<Record<Field, string>>>({});
  const [error, setError] = useState<StudioErrorInfo | null>(null);
  const [followed, setFollowed] = useState<string | null>(null);
  const dialog = useRef<HTMLDivElement>(null);
  useDialogFocus(dialog);
  useEscapeCloses(onClose, !busy);

  const edited = (field: Field) => setFieldErrors((f) => (field in f ? { ...f, [field]: undefined } : f));

  async function pickFolder(): Promise<void> {
    if (!client) return;
    try {
      const { path } = await client.request('dialog.pickFolder', { title: 'Write the bundle into…' });
      if (path) {
        setDestination(path);
        edited('destination');
      }
    } catch (e) {
      setError(errorInfo(e));
    }
  }

  async function exportIt(): Promise<void> {
    if (!client || busy) return;
    setBusy(true);
    setError(null);
    setFieldErrors({});
    setResult(null);
    setFollowed(null);
    try {
      const summary = await client.request('runs.exportBundle', {
        id: run.id,
        ...(destination.trim() ? { destination: destination.trim() } : {}),
        launcher,
        // What was typed goes as it is: the services say what is wrong with it, under this field.
        ...(launcher === 'single-gpu' ? {} : { processes: processes.trim() === '' ? Number.NaN : Number(processes) }),
        dropout,
        includeModel,
      });
      setResult(summary);
    } catch (e) {
      const split = splitFieldErrors(errorInfo(e), FIELDS);
      setFieldErrors(split.fields);
      setError(split.rest);
    } finally {
      setBusy(false);
    }
  }

  async function followOutput(bundle: BundleSummary): Promise<void> {
    // The bundle folder itself is accepted: its run writes into output/.
    const id = await useExternalRuns.getState().follow(bundle.path);
    if (id) setFollowed(id);
  }

  const others = result ? BUNDLE_LAUNCHERS.filter((l) => l !== result.chosenLaunch.launcher) : [];

  return (
    <div className="modal-backdrop" onClick={() => !busy && onClose()}>
      <div
        ref={dialog}
        tabIndex={-1}
        className="modal card bundle-dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby="bundle-title"
        data-testid="bundle-dialog"
        onClick={(e) => e.stopPropagation()}
      >
        <h2 id="bundle-title">Export {run.name} for a cluster</h2>
        <p className="muted">
          A folder with <code>train.py</code> (transformers + PEFT + Accelerate), the data exactly as the studio prepared it, the initial adapter and launch configurations. It trains the same run on one
          GPU, many, or a Slurm cluster; follow it here while it runs.
        </p>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void exportIt();
          }}
        >
          <fieldset>
            <legend>Where</legend>
            <div className={`field${fieldErrors.destination ? ' field-invalid' : ''}`}>
              <label htmlFor="bundle-destination">Folder to write the bundle into</label>
              <PathField
                id="bundle-destination"
                value={destination}
                onChange={(v) => {
                  setDestination(v);
                  edited('destination');
                }}
                placeholder="empty: the studio's bundles folder"
                testId="bundle-destination"
                busy={busy}
                onBrowse={() => void pickFolder()}
                browseTestId="bundle-browse"
              />
              <FieldNote errorTestId="bundle-error-destination" error={fieldErrors.destination} hint={`a new sub-folder "${run.name}-bundle" is made in it, never over existing files${isElectron ? '' : ' (a folder on the studio’s machine)'}`} />
            </div>
            <div className={`field${fieldErrors.includeModel ? ' field-invalid' : ''}`}>
              <label htmlFor="bundle-include-model">Copy the base model into the bundle</label>
              <select id="bundle-include-model" data-testid="bundle-include-model" value={includeModel} onChange={(e) => {
                    setIncludeModel(e.target.value as BundleIncludeModel);
                    edited('includeModel');
                  }}>
                {BUNDLE_INCLUDE_MODEL.map((v) => (
                  <option key={v} value={v}>
                    {INCLUDE_LABEL[v]}
                  </option>
                ))}
              </select>
              <FieldNote errorTestId="bundle-error-includeModel" error={fieldErrors.includeModel} hint="a big model is better fetched from the hub or a shared folder where the run trains" />
            </div>
          </fieldset>
          <fieldset>
            <legend>Launch</legend>
            <div className="grid-2">
              <div className={`field${fieldErrors.launcher ? ' field-invalid' : ''}`}>
                <label htmlFor="bundle-launcher">Launcher</label>
                <select id="bundle-launcher" data-testid="bundle-launcher" value={launcher} onChange={(e) => {
                    setLauncher(e.target.value as BundleLauncher);
                    edited('launcher');
                  }}>
                  {BUNDLE_LAUNCHERS.map((l) => (
                    <option key={l} value={l}>
                      {LAUNCHER_LABEL[l]}
                    </option>
                  ))}
                </select>
                <FieldNote errorTestId="bundle-error-launcher" error={fieldErrors.launcher} hint="every configuration is in the bundle; this one is put first" />
              </div>
              {launcher === 'single-gpu' ? null : (
                <div className={`field${fieldErrors.processes ? ' field-invalid' : ''}`}>
                  <label htmlFor="bundle-processes">Processes (GPUs)</label>
                  <input
                    id="bundle-processes"
                    type="text"
                    inputMode="numeric"
                    data-testid="bundle-processes"
                    value={processes}
                    onChange={(e) => {
                      setProcesses(e.target.value);
                      edited('processes');
                    }}
                  />
                  <FieldNote errorTestId="bundle-error-processes" error={fieldErrors.processes} hint="any count trains the same run: the micro-batches are shared out" />
                </div>
              )}
            </div>
            <div className={`field${fieldErrors.dropout ? ' field-invalid' : ''}`} role="radiogroup" aria-label="LoRA dropout masks">
              <span className="field-label">LoRA dropout masks</span>
              {BUNDLE_DROPOUT_MODES.map((m) => (
                <label key={m} className="check">
                  <input type="radio" name="bundle-dropout" data-testid={`bundle-dropout-${m}`} checked={dropout === m} onChange={() => {
                      setDropout(m);
                      edited('dropout');
                    }} />
                  {DROPOUT_MODE_LABEL[m]}
                </label>
              ))}
              <FieldNote errorTestId="bundle-error-dropout" error={fieldErrors.dropout} hint={run.config.lora.dropout > 0 ? `this run's dropout is ${run.config.lora.dropout}` : 'this run has no dropout: both give the same run'} />
            </div>
          </fieldset>
          {error ? <ErrorNote error={error} testId="bundle-error" /> : null}
          {result ? <BundleResult bundle={result} others={others} followed={followed} onFollow={() => void followOutput(result)} /> : null}
          <div className="modal-actions">
            <button type="button" onClick={onClose} data-testid="bundle-close" disabled={busy}>
              Close
            </button>
            <button type="submit" className="primary" data-testid="bundle-export" disabled={busy || !client}>
              {busy ? 'Exporting…' : result ? 'Export again' : 'Export'}
            </button>
          </div>
        </form>
      </div>
    </div>
  );
}

function BundleResult({ bundle, others, followed, onFollow }: { bundle: BundleSummary; others: readonly BundleLauncher[]; followed: string | null; onFollow(): void }) {
  const chosen = bundle.chosenLaunch;
  const many = chosen.launcher === 'single-gpu' ? DEFAULT_BUNDLE_LAUNCH.processes : chosen.processes;
  return (
    <div className="note note-ok bundle-result" data-testid="bundle-result">
      <div className="note-message">
        Bundle written: <code className="path" data-testid="bundle-path">{bundle.path}</code>
      </div>
      <div className="muted">
        {bundle.steps} steps · {bundle.trainExamples} training / {bundle.validationExamples} validation examples · {bundle.targetTokens} target tokens · base model{' '}
        {bundle.modelIncluded ? 'copied into model/' : 'not copied'} · {bundle.files.length} files
      </div>
      <div className="bundle-launch-title">Launch it ({LAUNCHER_LABEL[chosen.launcher]}):</div>
      <pre className="bundle-command" data-testid="bundle-launch">
        {bundle.launch}
      </pre>
      <details>
        <summary>Other launchers</summary>
        <pre className="bundle-command" data-testid="bundle-launch-others">
          {others.map((l) => `${launchCommand({ ...chosen, launcher: l, processes: many })}\n`).join('')}sbatch slurm.sbatch
        </pre>
      </details>
      <div className="row-actions">
        {followed ? (
          <span data-testid="bundle-followed">Followed under External runs on the Runs page: its curves appear as soon as it starts.</span>
        ) : (
          <button type="button" data-testid="bundle-follow" onClick={onFollow}>
            Follow its output
          </button>
        )}
      </div>
    </div>
  );
}
