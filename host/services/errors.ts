/**
 * StudioError: a refusal the UI shows next to the thing it is about. Anything else thrown inside the services is
 * turned into one by toStudioErrorInfo, keeping field/file/line when the thrower had them (DatasetError does).
 */
import { describeFieldError } from '../../common/field-labels.ts';
import type { FieldError, StudioErrorInfo } from '../../common/protocol.ts';

export class StudioError extends Error {
  readonly info: StudioErrorInfo;
  constructor(info: StudioErrorInfo) {
    super(info.message);
    this.name = 'StudioError';
    this.info = info;
  }

  static fields(errors: FieldError[], prefix = ''): StudioError {
    const full = errors.map((e) => ({ field: prefix && e.field ? `${prefix}.${e.field}` : prefix || e.field, message: e.message }));
    const first = full[0];
    // Fields by the labels the pages show ("Max new tokens: …"), never by their keys; the keys stay in fieldErrors.
    const summary = full.map(describeFieldError).join('; ');
    return new StudioError({ message: `invalid settings — ${summary}`, field: first?.field || undefined, fieldErrors: full });
  }
}

/**
 * Best-effort StudioErrorInfo for any thrown value; duck-types file/line/field so engine errors need no import here.
 * `requestField` names the request field the problem belongs to (e.g. `datasetPath`) and wins over a thrower's own
 * `field`, which for a dataset is a record field, not something the UI has an input for.
 */
export function toStudioErrorInfo(e: unknown, requestField?: string): StudioErrorInfo {
  if (e instanceof StudioError) return requestField && !e.info.field ? { ...e.info, field: requestField } : e.info;
  if (e instanceof Error) {
    const extra = e as Error & { file?: unknown; line?: unknown; field?: unknown };
    const info: StudioErrorInfo = { message: e.message };
    if (requestField) info.field = requestField;
    else if (typeof extra.field === 'string') info.field = extra.field;
    if (typeof extra.file === 'string') info.file = extra.file;
    if (typeof extra.line === 'number') info.line = extra.line;
    return info;
  }
  return { message: String(e), ...(requestField ? { field: requestField } : {}) };
}

/** Rethrows anything as a StudioError, tagging it with the request field it is about when it had none. */
export function asStudioError(e: unknown, requestField?: string): StudioError {
  if (e instanceof StudioError && (!requestField || e.info.field)) return e;
  return new StudioError(toStudioErrorInfo(e, requestField));
}
