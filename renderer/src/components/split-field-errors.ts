/**
 * A dialog's refusal from the services split into the messages of the fields it has a control for (shown under each)
 * and what is left for the note under the form.
 */
import type { StudioErrorInfo } from '../../../common/protocol.ts';

export function splitFieldErrors<F extends string>(info: StudioErrorInfo, fieldsOfForm: readonly F[]): { fields: Partial<Record<F, string>>; rest: StudioErrorInfo | null } {
  const fields: Partial<Record<F, string>> = {};
  const isField = (f: string | undefined): f is F => f !== undefined && (fieldsOfForm as readonly string[]).includes(f);
  const others = (info.fieldErrors ?? []).filter((fe) => {
    if (!isField(fe.field)) return true;
    fields[fe.field] ??= fe.message;
    return false;
  });
  if (isField(info.field)) {
    fields[info.field] ??= info.message;
    return { fields, rest: others.length ? { message: 'Also:', fieldErrors: others } : null };
  }
  if (info.fieldErrors && others.length === 0 && Object.keys(fields).length > 0) return { fields, rest: null };
  return { fields, rest: { ...info, ...(info.fieldErrors ? { fieldErrors: others } : {}) } };
}
