import { describeFieldError } from '../../../common/field-labels.ts';
import type { StudioErrorInfo } from '../../../common/protocol.ts';

/** One problem, with where it is (file:line) when the services said so; field problems name the field by its label. */
export function ErrorNote({ error, testId }: { error: StudioErrorInfo; testId: string }) {
  const where = error.file ? `${error.file}${error.line !== undefined ? `:${error.line}` : ''}` : null;
  return (
    <div className="note note-error" role="alert" data-testid={testId}>
      <div className="note-message">{error.message}</div>
      {where && !error.message.includes(where) ? <div className="note-where">in {where}</div> : null}
      {error.fieldErrors && error.fieldErrors.length > 0 ? (
        <ul className="note-list">
          {error.fieldErrors.map((f) => (
            <li key={`${f.field}:${f.message}`}>{describeFieldError(f)}</li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
