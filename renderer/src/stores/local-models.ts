/**
 * The models already on this machine (services' 'models.discover': Hugging Face cache, Ollama, LM Studio), asked
 * for once when a picker first shows them and shared by every page's picker; "Look again" asks anew.
 */
import { create } from 'zustand';
import type { LocalModelsInfo, StudioErrorInfo } from '../../../common/protocol.ts';
import { errorInfo } from '../client/transport.ts';
import { useStudio } from './studio.ts';

export interface LocalModelsState {
  info: LocalModelsInfo | null;
  busy: boolean;
  error: StudioErrorInfo | null;
  /** Asks the services unless a list is there already (or `again`). */
  load(again?: boolean): Promise<void>;
}

export const useLocalModels = create<LocalModelsState>()((set, get) => ({
  info: null,
  busy: false,
  error: null,
  async load(again = false) {
    if (get().busy || (get().info && !again)) return;
    set({ busy: true, error: null });
    try {
      const c = useStudio.getState().client;
      if (!c) throw new Error('the studio is not connected yet');
      set({ info: await c.request('models.discover', {}), busy: false });
    } catch (e) {
      set({ error: errorInfo(e), busy: false });
    }
  },
}));
