/**
 * A run's fixed evaluation prompts as a timeline (config.evalPrompts): one row per sampled step, one column per
 * prompt, each cell the adapter's greedy answer at that step. On the Train page's live card and the run's detail.
 */
import { useEffect } from 'react';
import { evalSteps, evalTimeline } from '../../../common/eval-prompts.ts';
import type { RunSummary } from '../../../common/protocol.ts';
import { EMPTY_SAMPLES, useEvalSamples } from '../runs/eval-samples-store.ts';
import { useStudio } from '../stores/studio.ts';
import './eval-timeline.css';

export function EvalTimeline({ run }: { run: RunSummary }) {
  const evalPrompts = run.config.evalPrompts;
  const samples = useEvalSamples((s) => s.samples[run.id] ?? EMPTY_SAMPLES);
  const connected = useStudio((s) => s.connection === 'open');
  useEffect(() => {
    if (connected && evalPrompts) void useEvalSamples.getState().load(run.id);
  }, [run.id, connected, evalPrompts]);

  if (!evalPrompts) return null;
  const rows = evalTimeline(samples, evalPrompts.prompts.length);
  const planned = evalSteps(evalPrompts.everySteps, run.totalSteps || run.config.train.steps);
  return (
    <section className="eval-timeline" aria-labelledby={`eval-title-${run.id}`} data-testid="eval-timeline" data-rows={rows.length}>
      <h3 id={`eval-title-${run.id}`}>Evaluation prompts</h3>
      <p className="muted">
        Greedy answers with the adapter as it was at each step (steps {planned.length > 8 ? `${planned.slice(0, 6).join(', ')}, …, ${planned[planned.length - 1]}` : planned.join(', ')}), at most {evalPrompts.maxNewTokens} new tokens.
      </p>
      {rows.length === 0 ? (
        <p className="muted" data-testid="eval-timeline-empty">
          No answers yet: the first come before the first step.
        </p>
      ) : (
        <div className="table-scroll">
          <table className="eval-table">
            <thead>
              <tr>
                <th scope="col">Step</th>
                {evalPrompts.prompts.map((p, i) => (
                  <th scope="col" key={i} title={p}>
                    {p.length > 60 ? `${p.slice(0, 57)}…` : p}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.step} data-testid="eval-row" data-step={row.step}>
                  <th scope="row">{row.step}</th>
                  {row.answers.map((a, i) => (
                    <td key={i} data-testid="eval-answer" data-index={i} data-stop={a?.stop}>
                      {a ? <span className="eval-answer-text">{a.answer === '' ? '(empty)' : a.answer}</span> : <span className="muted">…</span>}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
