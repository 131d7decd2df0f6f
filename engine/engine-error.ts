/**
 * Any thrown value → the fields of an engine 'error' event. Errors of the io and data layers carry `file`, `line`
 * and `field`; they are passed on so the UI can point at the place. A failed file operation's errno code (ENOENT,
 * ENOSPC…; its own, or its cause's when it was wrapped in words) is passed on too, so the host can tell what happened
 * without reading the message.
 */
export interface ErrorDetails {
  message: string;
  file?: string;
  line?: number;
  field?: string;
  code?: string;
}

export function errorDetails(e: unknown): ErrorDetails {
  if (!(e instanceof Error)) return { message: String(e) };
  const out: ErrorDetails = { message: e.message || e.name };
  const x = e as Error & { file?: unknown; line?: unknown; field?: unknown; code?: unknown };
  if (typeof x.file === 'string') out.file = x.file;
  if (typeof x.line === 'number') out.line = x.line;
  if (typeof x.field === 'string') out.field = x.field;
  const code = typeof x.code === 'string' ? x.code : (x.cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) out.code = code;
  return out;
}
