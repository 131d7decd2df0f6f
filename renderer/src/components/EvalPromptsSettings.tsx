/**
 * The run's fixed evaluation prompts (RunConfig.evalPrompts), collapsed with the advanced settings: up to 8 prompts
 * the engine answers greedily with the current adapter before the first step, every N steps and at the end; the
 * answers show as a timeline on the run (EvalTimeline). Off unless the person turns it on.
 */
import { EVAL_PROMPT_MAX_CHARS, EVAL_PROMPTS_MAX } from '../../../common/protocol.ts';
import type { EvalPromptsChoices } from '../stores/form.ts';
import { useStudio } from '../stores/studio.ts';

const DEFAULT_CHOICES: EvalPromptsChoices = { enabled: false, prompts: [''], everySteps: '10', maxNewTokens: '32' };

function update(patch: Partial<EvalPromptsChoices>): void {
  useStudio.setState((s) => ({ form: { ...s.form, evalPrompts: { ...(s.form.evalPrompts ?? DEFAULT_CHOICES), ...patch } } }));
}

export function EvalPromptsSettings({ errorOf }: { errorOf: (field: string) => string | undefined }) {
  const choices = useStudio((s) => s.form.evalPrompts ?? DEFAULT_CHOICES);
  const listError = errorOf('evalPrompts.prompts') ?? errorOf('evalPrompts');
  const numberField = (key: 'everySteps' | 'maxNewTokens', label: string, hint: string) => {
    const field = `evalPrompts.${key}`;
    const error = errorOf(field);
    return (
      <div className={`field${error ? ' field-invalid' : ''}`}>
        <label htmlFor={`field-${field}`}>{label}</label>
        <input
          id={`field-${field}`}
          data-testid={`field-${field}`}
          type="text"
          inputMode="numeric"
          autoComplete="off"
          value={choices[key]}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? `error-${field}` : undefined}
          onChange={(e) => update({ [key]: e.target.value })}
        />
        {error ? (
          <div className="field-error" id={`error-${field}`} data-testid={`error-${field}`} role="alert">
            {error}
          </div>
        ) : (
          <div className="field-hint">{hint}</div>
        )}
      </div>
    );
  };

  return (
    <details className="advanced" data-testid="eval-prompts-settings" open={choices.enabled || undefined}>
      <summary>Evaluation prompts</summary>
      <fieldset>
        <legend className="visually-hidden">Fixed evaluation prompts</legend>
        <label className="check">
          <input type="checkbox" data-testid="eval-prompts-enabled" checked={choices.enabled} onChange={(e) => update({ enabled: e.target.checked })} />
          Answer these prompts during training (greedy, with the adapter as it is then), shown as a timeline on the run
        </label>
        {choices.enabled ? (
          <>
            <div className="grid-2">
              {numberField('everySteps', 'Answer every', 'steps (also before the first and after the last)')}
              {numberField('maxNewTokens', 'Max new tokens', 'per answer, 1 to 512')}
            </div>
            {choices.prompts.map((p, i) => {
              const error = errorOf(`evalPrompts.prompts.${i}`);
              return (
                <div key={i} className={`field${error ? ' field-invalid' : ''}`}>
                  <label htmlFor={`eval-prompt-${i}`}>Prompt {i + 1}</label>
                  <textarea
                    id={`eval-prompt-${i}`}
                    data-testid={`eval-prompt-${i}`}
                    rows={2}
                    maxLength={EVAL_PROMPT_MAX_CHARS}
                    value={p}
                    aria-invalid={error ? true : undefined}
                    onChange={(e) => update({ prompts: choices.prompts.map((q, j) => (j === i ? e.target.value : q)) })}
                  />
                  {error ? (
                    <div className="field-error" data-testid={`error-evalPrompts.prompts.${i}`} role="alert">
                      {error}
                    </div>
                  ) : null}
                  {choices.prompts.length > 1 ? (
                    <button type="button" className="link" data-testid={`eval-prompt-remove-${i}`} onClick={() => update({ prompts: choices.prompts.filter((_, j) => j !== i) })}>
                      Remove prompt {i + 1}
                    </button>
                  ) : null}
                </div>
              );
            })}
            {choices.prompts.length < EVAL_PROMPTS_MAX ? (
              <button type="button" data-testid="eval-prompt-add" onClick={() => update({ prompts: [...choices.prompts, ''] })}>
                Add a prompt
              </button>
            ) : (
              <span className="muted">{EVAL_PROMPTS_MAX} prompts at most</span>
            )}
            {listError ? (
              <div className="field-error" data-testid="error-evalPrompts.prompts" role="alert">
                {listError}
              </div>
            ) : null}
          </>
        ) : null}
      </fieldset>
    </details>
  );
}
