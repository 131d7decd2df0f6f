import { useRef, useState } from 'react';
import { readSettingsFile, settingsFileText } from '../stores/settings-file.ts';
import { useStudio } from '../stores/studio.ts';

/** Save the form as a run-config JSON file (the CLI's run.json) and load one back into the form. */
export function SettingsFileButtons() {
  const input = useRef<HTMLInputElement>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [loaded, setLoaded] = useState<string | null>(null);

  function save(): void {
    const s = useStudio.getState();
    const blob = new Blob([settingsFileText(s.form, s.modelPath, s.datasetPath)], { type: 'application/json' });
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = 'lora-studio-run.json';
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  async function load(file: File): Promise<void> {
    const s = useStudio.getState();
    const read = readSettingsFile(await file.text(), file.name, { modelPath: s.modelPath, datasetPath: s.datasetPath });
    if (!read.ok) {
      setProblem(read.message);
      setLoaded(null);
      return;
    }
    setProblem(null);
    setLoaded(file.name);
    await s.applyConfig(read.config);
  }

  return (
    <div className="settings-file">
      <button type="button" className="link" data-testid="run-settings-save" onClick={save} title="Download these settings as a run.json (lora-studio train reads it too)">
        Save settings…
      </button>
      <button type="button" className="link" data-testid="run-settings-load" onClick={() => input.current?.click()} title="Fill the form from a saved run.json">
        Load settings…
      </button>
      <input
        ref={input}
        type="file"
        accept=".json,application/json"
        hidden
        data-testid="run-settings-file"
        onChange={(e) => {
          const file = e.target.files?.[0];
          e.target.value = '';
          if (file) void load(file);
        }}
      />
      {problem ? (
        <div className="field-error" role="alert" data-testid="run-settings-error">
          {problem}
        </div>
      ) : loaded ? (
        <span className="muted" role="status" data-testid="run-settings-loaded">
          settings from {loaded}
        </span>
      ) : null}
    </div>
  );
}
