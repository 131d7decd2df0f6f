/**
 * A run's settings as a JSON file: the same RunConfig a headless run.json holds (`lora-studio train run.json` reads
 * it), written from the form and read back into it. Reading checks the file with the protocol's own validator, so a
 * file that would not start a run says which field is wrong, by its label, with the file's name.
 */
import { describeFieldError } from '../../../common/field-labels.ts';
import { validateRunConfig, type RunConfig } from '../../../common/protocol.ts';
import { buildDraft, type FormValues } from './form.ts';

/** The form as a settings file's text (model and dataset paths included, as typed). */
export function settingsFileText(form: FormValues, modelPath: string, datasetPath: string): string {
  return JSON.stringify(buildDraft(form, modelPath.trim(), datasetPath.trim()), null, 2) + '\n';
}

export type SettingsFileRead = { ok: true; config: RunConfig } | { ok: false; message: string };

/**
 * A settings file's text → a config for applyConfig. A file without a model or dataset path is fine (the form's
 * own choice stays: `current` fills them); any other problem refuses the whole file, naming every bad field.
 */
export function readSettingsFile(text: string, fileName: string, current: { modelPath: string; datasetPath: string }): SettingsFileRead {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { ok: false, message: `${fileName} is not JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, message: `${fileName} does not hold run settings (expected a JSON object with lora and train)` };
  const record = raw as Record<string, unknown>;
  const filled = {
    ...record,
    modelPath: typeof record.modelPath === 'string' && record.modelPath ? record.modelPath : current.modelPath,
    datasetPath: typeof record.datasetPath === 'string' && record.datasetPath ? record.datasetPath : current.datasetPath,
  };
  const checked = validateRunConfig(filled);
  if (checked.ok) return checked;
  const problems = checked.errors.filter((e) => e.field !== 'modelPath' && e.field !== 'datasetPath');
  if (problems.length === 0) {
    // Only the paths are missing, in the file and in the form: keep the settings, leave the paths empty.
    const withPaths = validateRunConfig({ ...filled, modelPath: '-', datasetPath: '-' });
    if (withPaths.ok) return { ok: true, config: { ...withPaths.config, modelPath: filled.modelPath, datasetPath: filled.datasetPath } };
  }
  return { ok: false, message: `${fileName} cannot be used: ${problems.map(describeFieldError).join('; ')}` };
}
