/**
 * The Train form's preset picker state: the user's presets (kept in localStorage, stores/presets.ts) and the last
 * preset applied, with what it changed, so the form can show the changes and Undo can put the form back.
 */
import { create } from 'zustand';
import type { TrainPreset } from '../../../common/train-form-snapshot.ts';
import { browserStorage } from './form-storage.ts';
import type { FormValues } from './form.ts';
import { deleteUserPreset, formChanges, formWithPreset, loadUserPresets, saveUserPreset, type FormChange, type FormPreset } from './presets.ts';
import { useStudio } from './studio.ts';

export interface AppliedPreset {
  name: string;
  changes: FormChange[];
  before: FormValues;
  after: FormValues;
}

export interface PresetState {
  user: TrainPreset[];
  applied: AppliedPreset | null;
  apply(preset: FormPreset): void;
  /** Puts the form back as it was before the preset, unless it was edited since. */
  undo(): void;
  dismiss(): void;
  /** Saves the form's settings under a name; throws the reason a name cannot be used. */
  save(name: string): void;
  remove(name: string): void;
}

export const usePresets = create<PresetState>()((set, get) => ({
  user: loadUserPresets(browserStorage()),
  applied: null,
  apply(preset) {
    const before = useStudio.getState().form;
    const after = formWithPreset(before, preset.settings);
    useStudio.setState({ form: after });
    set({ applied: { name: preset.name, changes: formChanges(before, after), before, after } });
  },
  undo() {
    const a = get().applied;
    if (!a || useStudio.getState().form !== a.after) return;
    useStudio.setState({ form: a.before });
    set({ applied: null });
  },
  dismiss() {
    set({ applied: null });
  },
  save(name) {
    set({ user: saveUserPreset(browserStorage(), get().user, name, useStudio.getState().form) });
  },
  remove(name) {
    set({ user: deleteUserPreset(browserStorage(), get().user, name) });
  },
}));
