/**
 * Any thrown value → the fields of an engine 'error' event. Errors of the io and data layers carry `file`, `line`
 * and `field`; they are passed on so the UI can point at the place.
 */
export interface ErrorDetails {
  message: string;
  file?: string;
  line?: number;
  field?: string;
}

export function errorDetails(e: unknown): ErrorDetails {
  if (!(e instanceof Error)) return { message: String(e) };
  const out: ErrorDetails = { message: e.message || e.name };
  const x = e as Error & { file?: unknown; line?: unknown; field?: unknown };
  if (typeof x.file === 'string') out.file = x.file;
  if (typeof x.line === 'number') out.line = x.line;
  if (typeof x.field === 'string') out.field = x.field;
  return out;
}
