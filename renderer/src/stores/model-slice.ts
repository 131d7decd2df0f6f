/**
 * Choosing a base model: the typed path, the services' summary of it, and the actions that fill them (type, inspect,
 * the sample, the native picker). The studio store (Train page) and the quantization lab each hold one, spread into
 * their own state; what a store does besides (the studio clears the services' complaint about the model path) comes
 * in through the hooks, in the same update as the model fields, so no render sees one without the other.
 */
import type { ModelSummary, StudioErrorInfo } from '../../../common/protocol.ts';
import { errorInfo, type StudioClient } from '../client/transport.ts';

export interface ModelFields {
  modelPath: string;
  model: ModelSummary | null;
  modelError: StudioErrorInfo | null;
  modelBusy: boolean;
}

export interface ModelActions {
  /** A summary describes one path; once the path changes it no longer applies. */
  setModelPath(path: string): void;
  inspectModel(): Promise<void>;
  chooseSampleModel(): Promise<void>;
  /** Desktop only: the native folder picker, then an inspect of what was picked. */
  browseModel(): Promise<void>;
}

export type ModelSlice = ModelFields & ModelActions;

export interface ModelSliceOptions<S extends ModelSlice> {
  /** The store's way to the services; throws while not connected (the action then reports it). */
  client(): StudioClient;
  /** Title of the native folder picker. */
  browseTitle: string;
  /** More of the store's state to change whenever the user types a path. */
  onPathChange?(state: S): Partial<S>;
  /** More of the store's state to change when a model loads. */
  onLoaded?(state: S, model: ModelSummary): Partial<S>;
}

/** What zustand's `set` accepts, narrowed to what the slice passes it. */
export type ModelSetState<S extends ModelSlice> = (update: Partial<ModelFields> | ((state: S) => Partial<S>)) => void;

const EMPTY_MODEL_FIELDS: Readonly<ModelFields> = { modelPath: '', model: null, modelError: null, modelBusy: false };

export function createModelSlice<S extends ModelSlice>(set: ModelSetState<S>, get: () => S, options: ModelSliceOptions<S>): ModelSlice {
  const { client, browseTitle } = options;
  const nothing = (): Partial<S> => ({});
  const onPathChange = options.onPathChange ?? nothing;
  const onLoaded = options.onLoaded ?? nothing;

  async function loadModel(call: () => Promise<ModelSummary>): Promise<void> {
    set({ modelBusy: true, modelError: null });
    try {
      const model = await call();
      set((s) => ({ ...onLoaded(s, model), model, modelPath: model.path, modelBusy: false }));
    } catch (e) {
      set({ model: null, modelError: errorInfo(e), modelBusy: false });
    }
  }

  return {
    ...EMPTY_MODEL_FIELDS,
    setModelPath(path) {
      set((s) => ({ ...onPathChange(s), modelPath: path, model: null, modelError: null }));
    },
    async inspectModel() {
      const path = get().modelPath.trim();
      if (!path) {
        set({ model: null, modelError: { message: 'type the path of a model folder first', field: 'modelPath' } });
        return;
      }
      await loadModel(() => client().request('models.inspect', { path }));
    },
    async chooseSampleModel() {
      await loadModel(() => client().request('models.sample', {}));
    },
    async browseModel() {
      try {
        const { path } = await client().request('dialog.pickFolder', { title: browseTitle });
        if (!path) return;
        set({ modelPath: path });
        await get().inspectModel();
      } catch (e) {
        set({ modelError: errorInfo(e) });
      }
    },
  };
}

/** The slice's own fields out of a store's state, for `useStore(useShallow(pickModelSlice))`: a component that shows
 * the model re-renders when they change, not on every metric or progress event of the store. */
export function pickModelSlice(s: ModelSlice): ModelSlice {
  return {
    modelPath: s.modelPath,
    model: s.model,
    modelError: s.modelError,
    modelBusy: s.modelBusy,
    setModelPath: s.setModelPath,
    inspectModel: s.inspectModel,
    chooseSampleModel: s.chooseSampleModel,
    browseModel: s.browseModel,
  };
}
