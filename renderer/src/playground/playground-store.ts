/**
 * The playground's state: which model and adapter answer, how the prompt is wrapped, the sampling settings, and the
 * answers streaming in. Choosing an adapter fills in its base model and the prompt format its run was trained with,
 * so the first try shows what the adapter learned. Follows the generate.* events of its own job only.
 */
import { create } from 'zustand';
import type {
  AdapterSummary,
  PlaygroundEnded,
  PlaygroundOutput,
  PlaygroundRequest,
  PlaygroundStarted,
  PlaygroundTurn,
  PlaygroundVariant,
  PromptFormat,
  StudioErrorInfo,
  StudioEventMessage,
} from '../../../common/protocol.ts';
import { errorInfo, type StudioClient } from '../client/transport.ts';
import { createModelSlice, type ModelSlice } from '../stores/model-slice.ts';
import { followStudioEvents } from '../stores/follow-events.ts';
import { useStudio } from '../stores/studio.ts';
import { parseSettings, promptFormatFor, type SettingsKey, type TypedSettings } from './playground-logic.ts';

export interface PlaygroundState extends ModelSlice {
  /** Adapter id from the Adapters list; '' = the base model alone. */
  adapterId: string;
  compareBase: boolean;
  /** A second adapter's id to answer beside the first (same prompt and settings); '' = none. */
  compareAdapterId: string;
  prompt: string;
  promptFormat: PromptFormat;
  /** 'model' = the model's own template, else a built-in name. */
  chatTemplate: string;
  system: string;
  settings: TypedSettings;
  backend: PlaygroundRequest['backend'];
  /** Why the prompt format is what it is, after an adapter was chosen. */
  formatNote: string | null;
  /** Chat: the conversation so far; the prompt is the next user turn. */
  history: PlaygroundTurn[];
  /** The prompt of the job on screen (what "continue" keeps as the user turn). */
  asked: string;

  starting: boolean;
  startError: StudioErrorInfo | null;
  jobId: string | null;
  started: PlaygroundStarted | null;
  outputs: Partial<Record<PlaygroundVariant, PlaygroundOutput>>;
  ended: PlaygroundEnded | null;
  stopping: boolean;

  chooseAdapter(id: string, adapters: readonly AdapterSummary[]): Promise<void>;
  set<K extends 'compareBase' | 'compareAdapterId' | 'prompt' | 'promptFormat' | 'chatTemplate' | 'system' | 'backend'>(key: K, value: PlaygroundState[K]): void;
  setSetting(key: SettingsKey, text: string): void;
  generate(): Promise<void>;
  stop(): Promise<void>;
  /** Chat: keeps the last prompt and its answer (the adapter's, when there is one) as turns, for the next prompt. */
  continueConversation(): void;
  clearConversation(): void;
  onEvent(message: StudioEventMessage): void;
}

function client(): StudioClient {
  const c = useStudio.getState().client;
  if (!c) throw new Error('not connected to the studio yet');
  return c;
}

interface SeenJob {
  started?: PlaygroundStarted;
  outputs: Partial<Record<PlaygroundVariant, PlaygroundOutput>>;
  ended?: PlaygroundEnded;
}

/** The latest events of the last few jobs, for a job whose events came before the reply that named it. */
const recent = new Map<string, SeenJob>();
function remember(jobId: string): SeenJob {
  let seen = recent.get(jobId);
  if (!seen) {
    seen = { outputs: {} };
    recent.set(jobId, seen);
    for (const old of [...recent.keys()].slice(0, Math.max(0, recent.size - 8))) recent.delete(old);
  }
  return seen;
}

export const DEFAULT_SETTINGS: TypedSettings = { maxNewTokens: '128', temperature: '0', topP: '1', seed: '42' };

export const usePlayground = create<PlaygroundState>()((set, get) => ({
  ...createModelSlice<PlaygroundState>(set, get, { client, browseTitle: 'Choose a model folder (config.json + *.safetensors + tokenizer.json)' }),
  adapterId: '',
  compareBase: true,
  compareAdapterId: '',
  prompt: '',
  promptFormat: 'raw',
  chatTemplate: 'model',
  system: '',
  settings: { ...DEFAULT_SETTINGS },
  backend: 'auto',
  formatNote: null,
  history: [],
  asked: '',
  starting: false,
  startError: null,
  jobId: null,
  started: null,
  outputs: {},
  ended: null,
  stopping: false,

  async chooseAdapter(id, adapters) {
    set({ adapterId: id, formatNote: null, startError: null });
    const adapter = adapters.find((a) => a.id === id);
    if (!adapter) return;
    // The run knows the exact base model folder and the data; an imported adapter only names its base model.
    let modelPath = adapter.baseModel;
    let note: string | null = null;
    try {
      if (adapter.runId) {
        const run = await client().request('runs.get', { id: adapter.runId });
        modelPath = run.config.modelPath;
        let format = run.config.datasetFormat;
        if (format === 'auto') format = (await client().request('datasets.inspect', { path: run.config.datasetPath })).format;
        const promptFormat = promptFormatFor(format);
        // Runs render chat data with the model's own template.
        set({ promptFormat, chatTemplate: 'model' });
        note = `${promptFormat === 'raw' ? 'Raw text' : promptFormat === 'alpaca' ? 'The Alpaca prompt' : 'The chat template'}, as “${run.name}” was trained (${format} data).`;
      }
    } catch (e) {
      note = `Could not read how this adapter was trained (${errorInfo(e).message}); choose the prompt format yourself.`;
    }
    if (get().adapterId !== id) return;
    set({ formatNote: note });
    if (modelPath && modelPath !== get().model?.path) {
      get().setModelPath(modelPath);
      await get().inspectModel();
    }
  },

  set(key, value) {
    set({ [key]: value } as Partial<PlaygroundState>);
  },

  setSetting(key, text) {
    set((s) => ({ settings: { ...s.settings, [key]: text } }));
  },

  async generate() {
    const s = get();
    const parsed = parseSettings(s.settings);
    if (!parsed.values) {
      const fieldErrors = Object.entries(parsed.errors).map(([field, message]) => ({ field, message: message ?? '' }));
      set({ startError: { message: 'Check the generation settings:', fieldErrors } });
      return;
    }
    const adapter = useStudio.getState().adapters.find((a) => a.id === s.adapterId);
    const second = adapter && s.compareAdapterId !== adapter.id ? useStudio.getState().adapters.find((a) => a.id === s.compareAdapterId) : undefined;
    const request: PlaygroundRequest = {
      modelPath: s.modelPath.trim(),
      prompt: s.prompt,
      promptFormat: s.promptFormat,
      backend: s.backend,
      ...parsed.values,
      ...(adapter ? { adapterPath: adapter.path, compareBase: s.compareBase } : {}),
      ...(second ? { compareAdapterPath: second.path } : {}),
      ...(s.promptFormat === 'chat' && s.chatTemplate !== 'model' ? { chatTemplate: s.chatTemplate } : {}),
      ...(s.system.trim() !== '' && s.promptFormat !== 'raw' ? { system: s.system } : {}),
      ...(s.promptFormat === 'chat' && s.history.length > 0 ? { history: s.history } : {}),
    };
    set({ starting: true, startError: null, started: null, outputs: {}, ended: null, stopping: false, asked: s.prompt });
    try {
      const { jobId } = await client().request('generate.start', request);
      // Events travel apart from replies (a WebSocket beside HTTP): a short job may have run to its end already.
      const early = recent.get(jobId);
      set({ jobId, starting: false, started: early?.started ?? null, outputs: { ...early?.outputs }, ended: early?.ended ?? null });
    } catch (e) {
      set({ starting: false, startError: errorInfo(e) });
    }
  },

  continueConversation() {
    const s = get();
    const answer = s.outputs.adapter ?? s.outputs.base;
    if (!answer || !s.ended || s.ended.error || s.ended.cancelled || s.promptFormat !== 'chat') return;
    set({
      history: [...s.history, { role: 'user', content: s.asked }, { role: 'assistant', content: answer.text }],
      prompt: '',
      started: null,
      outputs: {},
      ended: null,
      jobId: null,
    });
  },

  clearConversation() {
    set({ history: [] });
  },

  async stop() {
    const jobId = get().jobId;
    if (!jobId || get().ended) return;
    set({ stopping: true });
    try {
      await client().request('generate.cancel', { jobId });
    } catch (e) {
      set({ startError: errorInfo(e) });
    } finally {
      set({ stopping: false });
    }
  },

  onEvent(message) {
    const jobId = get().jobId;
    switch (message.event) {
      case 'generate.started': {
        const d = message.data as PlaygroundStarted;
        remember(d.jobId).started = d;
        if (d.jobId === jobId) set({ started: d });
        return;
      }
      case 'generate.output': {
        const d = message.data as PlaygroundOutput;
        remember(d.jobId).outputs[d.variant] = d;
        if (d.jobId === jobId) set((s) => ({ outputs: { ...s.outputs, [d.variant]: d } }));
        return;
      }
      case 'generate.ended': {
        const d = message.data as PlaygroundEnded;
        remember(d.jobId).ended = d;
        if (d.jobId === jobId) set({ ended: d });
        return;
      }
      default:
        return;
    }
  },
}));

followStudioEvents((m) => usePlayground.getState().onEvent(m));
