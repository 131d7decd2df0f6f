/**
 * The one check of a request's params: its schema in common/request-schemas.ts. Every service handler goes through
 * it, so a refusal always has the same shape — StudioError.fields with each issue's dotted field path — whichever
 * service the method belongs to. (Here, not in common/, because StudioError is the services' own error.)
 */
import type { z } from 'zod';
import { REQUEST_PARAM_SCHEMAS, type RequestMethod, type RequestParamSchemas } from '../../common/request-schemas.ts';
import { StudioError } from './errors.ts';

/** The params of `method` as its schema outputs them (defaults filled in). */
export type ParsedParams<M extends RequestMethod> = z.output<RequestParamSchemas[M]>;

/** Checks `raw` against the method's schema (absent params read as `{}`); throws the field errors, else the parsed params. */
export function parseParams<M extends RequestMethod>(method: M, raw: unknown): ParsedParams<M> {
  const parsed = (REQUEST_PARAM_SCHEMAS[method] as z.ZodType).safeParse(raw ?? {});
  if (!parsed.success) throw StudioError.fields(parsed.error.issues.map((i) => ({ field: i.path.join('.'), message: i.message })));
  return parsed.data as ParsedParams<M>;
}
