import { useMemo } from 'react';
import { describeFieldError } from '../../../common/field-labels.ts';
import { BUILTIN_CHAT_TEMPLATE_NAMES, PROMPT_FORMATS, type PlaygroundVariant, type PromptFormat, type StudioErrorInfo } from '../../../common/protocol.ts';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { ModelLine, ModelPathControls } from '../components/ModelPathControls.tsx';
import { useShallow } from 'zustand/react/shallow';
import { pickModelSlice } from '../stores/model-slice.ts';
import { useStudio } from '../stores/studio.ts';
import { describeOutput, parseSettings, type SettingsKey } from './playground-logic.ts';
import { usePlayground } from './playground-store.ts';
import './playground.css';

const FORMAT_LABELS: Record<PromptFormat, { label: string; hint: string }> = {
  raw: { label: 'Raw text', hint: 'The prompt as typed; the model continues it (text and prompt/completion data).' },
  alpaca: { label: 'Alpaca', hint: 'Wrapped in the Stanford Alpaca instruction prompt (Alpaca data).' },
  chat: { label: 'Chat', hint: 'One user turn through the chat template, then the assistant answers (chat data).' },
};

const SETTINGS: { key: SettingsKey; label: string; hint: string }[] = [
  { key: 'maxNewTokens', label: 'Max new tokens', hint: '1 to 4096' },
  { key: 'temperature', label: 'Temperature', hint: '0 = greedy (always the likeliest token)' },
  { key: 'topP', label: 'Top-p', hint: 'nucleus mass; 1 = all tokens' },
  { key: 'seed', label: 'Seed', hint: 'same seed, same sample' },
];

/** Try a model on a prompt, with the adapter and without it, side by side. */
export function PlaygroundPage() {
  return (
    <main className="columns playground" data-testid="playground">
      <div className="column column-setup">
        <ModelCard />
        <SettingsCard />
      </div>
      <div className="column column-live">
        <PromptCard />
        <Answers />
      </div>
    </main>
  );
}

function ModelCard() {
  const adapters = useStudio((s) => s.adapters);
  const slice = usePlayground(useShallow(pickModelSlice));
  const adapterId = usePlayground((s) => s.adapterId);
  const compareBase = usePlayground((s) => s.compareBase);
  const compareAdapterId = usePlayground((s) => s.compareAdapterId);
  const { chooseAdapter, set } = usePlayground.getState();
  const first = adapters.find((a) => a.id === adapterId);
  // Adapters of the same base model can answer the same prompt on the same weights.
  const others = adapters.filter((a) => a.id !== adapterId && (!first || a.baseModel === first.baseModel));
  return (
    <section className="card" data-testid="pg-model">
      <h2>Model &amp; adapter</h2>
      <div className="field">
        <label htmlFor="pg-adapter">LoRA adapter</label>
        <select id="pg-adapter" data-testid="pg-adapter" value={adapterId} onChange={(e) => void chooseAdapter(e.target.value, adapters)}>
          <option value="">No adapter: the base model alone</option>
          {adapters.map((a) => (
            <option key={a.id} value={a.id}>
              {a.name} · r {a.r} · {a.targets.length} targets
            </option>
          ))}
        </select>
        <span className="field-hint">{adapters.length === 0 ? 'Adapters you train appear here.' : 'Choosing one fills in its base model and prompt format.'}</span>
      </div>
      {adapterId ? (
        <label className="check check-wide">
          <input type="checkbox" data-testid="pg-compare" checked={compareBase} onChange={(e) => set('compareBase', e.target.checked)} />
          <span>Also answer with the base model, to compare</span>
        </label>
      ) : null}
      {adapterId ? (
        <div className="field">
          <label htmlFor="pg-compare-adapter">Compare with a second adapter</label>
          <select id="pg-compare-adapter" data-testid="pg-compare-adapter" value={others.some((a) => a.id === compareAdapterId) ? compareAdapterId : ''} onChange={(e) => set('compareAdapterId', e.target.value)}>
            <option value="">None</option>
            {others.map((a) => (
              <option key={a.id} value={a.id}>
                {a.name} · r {a.r} · {a.targets.length} targets
              </option>
            ))}
          </select>
          <span className="field-hint">{others.length === 0 ? 'No other adapter of this base model yet.' : 'Both answer the same prompt with the same settings and seed, side by side.'}</span>
        </div>
      ) : null}
      <div className="field">
        <span className="label">Base model folder</span>
        <ModelPathControls slice={slice} idPrefix="pg-" />
      </div>
      <ModelLine slice={slice} testId="pg-model-summary" className="pg-model-line" showChatTemplate />
    </section>
  );
}

/** The problem `e` reports about one request field, if any. */
function fieldError(e: StudioErrorInfo | null, key: string): string | undefined {
  if (!e) return undefined;
  if (e.field === key && !e.fieldErrors?.length) return e.message;
  return e.fieldErrors?.find((f) => f.field === key)?.message;
}

/** Request fields the page shows their problems next to. */
const INLINE_FIELDS = new Set(['prompt', 'promptFormat', 'chatTemplate', 'maxNewTokens', 'temperature', 'topP', 'seed']);

/** Whether `e` still needs a note of its own: it names no field shown inline, or some field that is not. */
function needsGeneralNote(e: StudioErrorInfo): boolean {
  if (!e.field || !INLINE_FIELDS.has(e.field)) return true;
  return e.fieldErrors?.some((f) => !INLINE_FIELDS.has(f.field)) ?? false;
}

function SettingsCard() {
  const format = usePlayground((s) => s.promptFormat);
  const formatNote = usePlayground((s) => s.formatNote);
  const chatTemplate = usePlayground((s) => s.chatTemplate);
  const system = usePlayground((s) => s.system);
  const settings = usePlayground((s) => s.settings);
  const typedErrors = useMemo(() => parseSettings(settings).errors, [settings]);
  const backend = usePlayground((s) => s.backend);
  const model = usePlayground((s) => s.model);
  const startError = usePlayground((s) => s.startError);
  const { set, setSetting } = usePlayground.getState();
  const formatError = fieldError(startError, 'promptFormat') ?? fieldError(startError, 'chatTemplate');
  return (
    <section className="card" data-testid="pg-settings">
      <h2>Prompt format &amp; sampling</h2>
      <div className="lab-segmented lab-segmented-fill" role="radiogroup" aria-label="Prompt format">
        {PROMPT_FORMATS.map((f) => (
          <button key={f} type="button" role="radio" aria-checked={format === f} className={format === f ? 'on' : ''} data-testid={`pg-format-${f}`} onClick={() => set('promptFormat', f)}>
            {FORMAT_LABELS[f].label}
          </button>
        ))}
      </div>
      <p className="field-hint" data-testid="pg-format-note">
        {formatNote ?? FORMAT_LABELS[format].hint}
      </p>
      {formatError ? (
        <div className="field-error" role="alert" data-testid="pg-format-error">
          {formatError}
        </div>
      ) : null}
      {format === 'chat' ? (
        <div className="field">
          <label htmlFor="pg-template">Chat template</label>
          <select id="pg-template" data-testid="pg-template" value={chatTemplate} onChange={(e) => set('chatTemplate', e.target.value)}>
            <option value="model">{model && !model.hasChatTemplate ? "The model's own (it has none)" : "The model's own"}</option>
            {BUILTIN_CHAT_TEMPLATE_NAMES.map((n) => (
              <option key={n} value={n}>
                Built-in: {n}
              </option>
            ))}
          </select>
        </div>
      ) : null}
      {format !== 'raw' ? (
        <div className="field">
          <label htmlFor="pg-system">{format === 'chat' ? 'System message (optional)' : 'Preamble (optional, replaces Alpaca’s)'}</label>
          <input id="pg-system" type="text" data-testid="pg-system" value={system} onChange={(e) => set('system', e.target.value)} />
        </div>
      ) : null}
      <div className="grid-2">
        {SETTINGS.map((f) => {
          // As typed, like the Train form; the services' own refusal after a click otherwise.
          const error = typedErrors[f.key] ?? fieldError(startError, f.key);
          return (
            <div key={f.key} className={`field${error ? ' field-invalid' : ''}`}>
              <label htmlFor={`pg-${f.key}`}>{f.label}</label>
              <input
                id={`pg-${f.key}`}
                data-testid={`pg-${f.key}`}
                type="text"
                inputMode="decimal"
                spellCheck={false}
                value={settings[f.key]}
                aria-invalid={error ? true : undefined}
                onChange={(e) => setSetting(f.key, e.target.value)}
              />
              {error ? (
                <div className="field-error" role="alert" data-testid={`pg-error-${f.key}`}>
                  {error}
                </div>
              ) : (
                <div className="field-hint">{f.hint}</div>
              )}
            </div>
          );
        })}
      </div>
      <div className="field">
        <label htmlFor="pg-backend">Backend</label>
        <select id="pg-backend" data-testid="pg-backend" value={backend} onChange={(e) => set('backend', e.target.value as typeof backend)}>
          <option value="auto">auto (a hardware GPU if there is one)</option>
          <option value="cpu">cpu</option>
          <option value="webgpu">webgpu</option>
        </select>
      </div>
    </section>
  );
}

function PromptCard() {
  const prompt = usePlayground((s) => s.prompt);
  const starting = usePlayground((s) => s.starting);
  const jobId = usePlayground((s) => s.jobId);
  const ended = usePlayground((s) => s.ended);
  const stopping = usePlayground((s) => s.stopping);
  const startError = usePlayground((s) => s.startError);
  const started = usePlayground((s) => s.started);
  const promptFormat = usePlayground((s) => s.promptFormat);
  const { set, generate, stop, continueConversation } = usePlayground.getState();
  const running = jobId !== null && ended === null && !starting;
  const canContinue = promptFormat === 'chat' && ended !== null && ended.error === null && !ended.cancelled;
  const promptError = fieldError(startError, 'prompt');
  const settings = usePlayground((s) => s.settings);
  const blockers = useMemo(
    () => Object.entries(parseSettings(settings).errors).map(([field, message]) => describeFieldError({ field, message: `must be ${message ?? 'valid'}` })),
    [settings],
  );
  const general = startError && needsGeneralNote(startError) ? startError : null;
  return (
    <section className="card" data-testid="pg-prompt">
      <h2>Prompt</h2>
      <Conversation />
      <textarea
        className={`pg-prompt${promptError ? ' field-invalid' : ''}`}
        data-testid="pg-prompt-text"
        aria-label="Prompt"
        rows={5}
        placeholder="Ask or start something the adapter was trained for…"
        value={prompt}
        onChange={(e) => set('prompt', e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void generate();
        }}
      />
      {promptError ? (
        <div className="field-error" role="alert" data-testid="pg-error-prompt">
          {promptError}
        </div>
      ) : null}
      <div className="train-actions">
        <button
          type="button"
          className="primary"
          data-testid="pg-generate"
          disabled={starting || blockers.length > 0}
          aria-describedby={blockers.length > 0 ? 'pg-blockers' : undefined}
          onClick={() => void generate()}
          title="Ctrl+Enter"
        >
          {starting ? 'Starting…' : running ? 'Generate again' : 'Generate'}
        </button>
        {blockers.length > 0 ? (
          <ul className="lab-blockers" id="pg-blockers" data-testid="pg-blockers">
            {blockers.map((b) => (
              <li key={b}>{b}</li>
            ))}
          </ul>
        ) : null}
        {running ? (
          <button type="button" className="danger" data-testid="pg-stop" disabled={stopping} onClick={() => void stop()}>
            {stopping ? 'Stopping…' : 'Stop'}
          </button>
        ) : null}
        {canContinue ? (
          <button type="button" data-testid="pg-continue" title="Keep this prompt and answer as turns of the conversation, then ask the next question" onClick={() => continueConversation()}>
            Continue the conversation
          </button>
        ) : null}
        {started ? (
          <span className="muted" data-testid="pg-job-line">
            {started.promptTokens} prompt tokens · {started.backend}
          </span>
        ) : null}
      </div>
      {general ? <ErrorNote error={general} testId="pg-start-error" /> : null}
      {ended?.error ? <ErrorNote error={ended.error} testId="pg-job-error" /> : null}
      {started ? (
        <details className="pg-prompt-text">
          <summary>What the model reads</summary>
          <pre data-testid="pg-formatted-prompt">{started.promptText}</pre>
        </details>
      ) : null}
    </section>
  );
}

/** Chat: the turns kept so far, above the next prompt. */
function Conversation() {
  const history = usePlayground((s) => s.history);
  const format = usePlayground((s) => s.promptFormat);
  const { clearConversation } = usePlayground.getState();
  if (history.length === 0) return null;
  return (
    <div className="pg-conversation" data-testid="pg-conversation">
      {history.map((t, i) => (
        <div key={i} className={`pg-turn pg-turn-${t.role}`} data-testid="pg-turn" data-role={t.role}>
          <span className="pg-turn-role">{t.role === 'user' ? 'You' : 'Model'}</span>
          <span className="pg-turn-text">{t.content}</span>
        </div>
      ))}
      <div className="row-actions">
        {format !== 'chat' ? <span className="field-hint">The conversation is used with the chat format only.</span> : null}
        <button type="button" className="link" data-testid="pg-clear-history" onClick={() => clearConversation()}>
          New conversation
        </button>
      </div>
    </div>
  );
}

const VARIANT_TITLES: Record<PlaygroundVariant, string> = { adapter: 'With the adapter', compare: 'With the second adapter', base: 'Base model' };

/** "With <adapter name>" when the adapter is known (two adapters side by side need their names). */
function useVariantTitle(v: PlaygroundVariant): string {
  const id = usePlayground((s) => (v === 'adapter' ? s.adapterId : v === 'compare' ? s.compareAdapterId : ''));
  const name = useStudio((s) => (id ? s.adapters.find((a) => a.id === id)?.name : undefined));
  return name ? `With ${name}` : VARIANT_TITLES[v];
}

function VariantTitle({ variant }: { variant: PlaygroundVariant }) {
  return <h2>{useVariantTitle(variant)}</h2>;
}

function Answers() {
  const started = usePlayground((s) => s.started);
  const outputs = usePlayground((s) => s.outputs);
  const ended = usePlayground((s) => s.ended);
  if (!started) return null;
  return (
    <div className={`pg-answers pg-answers-${started.variants.length}`} data-testid="pg-answers">
      {started.variants.map((v) => {
        const o = outputs[v];
        const waiting = !o && !ended;
        return (
          <section key={v} className="card pg-answer" data-testid={`pg-answer-${v}`} data-done={o?.stop ? 'true' : 'false'}>
            <VariantTitle variant={v} />
            <div className="pg-answer-text" data-testid={`pg-text-${v}`}>
              {o?.text ?? ''}
              {waiting || (o && !o.stop) ? <span className="pg-caret" aria-hidden="true" /> : null}
            </div>
            <div className="muted pg-answer-stats" data-testid={`pg-stats-${v}`}>
              {o ? describeOutput(o, started.promptTokens) : waiting ? 'waiting…' : ''}
            </div>
          </section>
        );
      })}
    </div>
  );
}
