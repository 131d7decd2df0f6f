import { memo, useState } from 'react';
import type { DatasetSummary } from '../../../common/protocol.ts';
import { previewSegments, trainedFraction } from './dataset-view.ts';

/** Long examples are cut here in the preview; the run itself cuts at the max sequence length. */
const SHOWN_CHARS = 2000;

/**
 * The first examples as the model will read them, one at a time: the loss-bearing text highlighted, the masked
 * text dimmed.
 */
export const ExamplePreview = memo(function ExamplePreview({ examples }: { examples: DatasetSummary['preview'] }) {
  const [chosen, setChosen] = useState(0);
  if (examples.length === 0) return null;
  const index = Math.min(chosen, examples.length - 1);
  const ex = examples[index];
  const segments = previewSegments(ex.text, ex.trainedSpans, SHOWN_CHARS);
  return (
    <div className="preview" data-testid="dataset-preview">
      <div className="preview-head">
        <div className="preview-legend">
          <mark className="trained">trained on</mark>
          <span className="masked">masked (label −100)</span>
        </div>
        <div className="pager">
          <button type="button" aria-label="Previous example" data-testid="preview-prev" disabled={index === 0} onClick={() => setChosen(index - 1)}>
            ‹
          </button>
          <span className="muted" data-testid="preview-index">
            example {index + 1} of {examples.length}
          </span>
          <button type="button" aria-label="Next example" data-testid="preview-next" disabled={index === examples.length - 1} onClick={() => setChosen(index + 1)}>
            ›
          </button>
        </div>
      </div>
      <figure className="example" data-testid="preview-example" data-index={index}>
        <pre>
          {segments.map((s, j) =>
            s.trained ? (
              <mark key={j} className="trained" title="trained on">
                {s.text}
              </mark>
            ) : (
              <span key={j} className="masked" title="masked: not trained on">
                {s.text}
              </span>
            ),
          )}
          {ex.text.length > SHOWN_CHARS ? <span className="muted">{`… (${ex.text.length - SHOWN_CHARS} more characters)`}</span> : null}
        </pre>
        <figcaption className="muted">{Math.round(trainedFraction(ex.text, ex.trainedSpans) * 100)} % of the characters are trained on</figcaption>
      </figure>
    </div>
  );
});
