/**
 * What a field allows, in words, read off its zod schema (through zod's own JSON Schema export), so a message can
 * say "allowed: a whole number from 1 to 1024" without a second list of rules that could drift from the schema.
 * Also the keys a schema does not know (a typo in a hand-written run.json would otherwise be ignored silently).
 *
 * Runs anywhere: imports nothing but zod.
 */
import { z } from 'zod';

interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  additionalProperties?: boolean | JsonSchema;
}

const cache = new WeakMap<z.ZodType, JsonSchema>();

function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  let j = cache.get(schema);
  if (!j) {
    // 'input': what a file may hold (defaults make a key optional); anything JSON cannot say is left open.
    j = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
    cache.set(schema, j);
  }
  return j;
}

/** The schema of the value at a dotted path ('lora.r', 'lora.targets.2'), or null when the path leads nowhere. */
function at(root: JsonSchema, path: readonly (string | number)[]): JsonSchema | null {
  let node: JsonSchema | null = root;
  for (const key of path) {
    if (!node) return null;
    // nullable / optional values: the branch that is not null holds the rules
    if (node.anyOf) node = node.anyOf.find((b) => b.type !== 'null') ?? null;
    if (!node) return null;
    if (typeof key === 'number' || /^\d+$/.test(String(key))) node = node.items ?? null;
    else node = node.properties?.[key] ?? null;
  }
  if (node?.anyOf) node = node.anyOf.find((b) => b.type !== 'null') ?? node;
  return node;
}

const fmt = (n: number): string => (Number.isInteger(n) && Math.abs(n) >= 10_000 ? n.toLocaleString('en-US') : String(n));

function numberRule(s: JsonSchema): string {
  const whole = s.type === 'integer';
  const what = whole ? 'a whole number' : 'a number';
  const low = s.minimum !== undefined ? { v: s.minimum, incl: true } : s.exclusiveMinimum !== undefined ? { v: s.exclusiveMinimum, incl: false } : null;
  const high = s.maximum !== undefined && Number.isFinite(s.maximum) && Math.abs(s.maximum) < Number.MAX_SAFE_INTEGER ? { v: s.maximum, incl: true } : s.exclusiveMaximum !== undefined ? { v: s.exclusiveMaximum, incl: false } : null;
  if (low && high && low.incl && high.incl) return `${what} from ${fmt(low.v)} to ${fmt(high.v)}`;
  const parts: string[] = [];
  if (low) parts.push(low.incl ? `at least ${fmt(low.v)}` : `above ${fmt(low.v)}`);
  if (high) parts.push(high.incl ? `at most ${fmt(high.v)}` : `below ${fmt(high.v)}`);
  return parts.length ? `${what}, ${parts.join(' and ')}` : what;
}

function describe(s: JsonSchema): string | null {
  if (s.enum) return `one of ${s.enum.map((v) => String(v)).join(', ')}`;
  if (s.const !== undefined) return `exactly ${JSON.stringify(s.const)}`;
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
  if (type === 'integer' || type === 'number') return numberRule(s);
  if (type === 'boolean') return 'true or false';
  if (type === 'string') {
    if (s.minLength && s.maxLength) return `text of ${s.minLength} to ${s.maxLength} characters`;
    if (s.minLength) return 'text, not empty';
    if (s.maxLength) return `text of at most ${s.maxLength} characters`;
    return 'text';
  }
  if (type === 'array') {
    const each = s.items ? describe(s.items) : null;
    const count = s.minItems && s.maxItems ? `${s.minItems} to ${s.maxItems}` : s.minItems ? `at least ${s.minItems}` : s.maxItems ? `at most ${s.maxItems}` : 'any number';
    return `a list of ${count}${each ? `, each ${each}` : ''}`;
  }
  if (type === 'object') return 'an object';
  return null;
}

/** "a whole number from 1 to 1024", "one of constant, linear, cosine" …; null when the schema says nothing more. */
export function allowedValues(schema: z.ZodType, path: string | readonly (string | number)[]): string | null {
  const keys = typeof path === 'string' ? path.split('.').filter(Boolean) : path;
  const node = at(jsonSchemaOf(schema), keys);
  return node ? describe(node) : null;
}

/** The dotted paths of keys in `value` that the object schema has no field for, in the order they appear. */
export function unknownKeys(schema: z.ZodType, value: unknown): { path: string; known: string[] }[] {
  const out: { path: string; known: string[] }[] = [];
  const walk = (node: JsonSchema | null, v: unknown, prefix: string): void => {
    if (!node || typeof v !== 'object' || v === null || Array.isArray(v)) return;
    const target = node.anyOf ? (node.anyOf.find((b) => b.type === 'object') ?? null) : node;
    if (!target?.properties) return;
    for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
      const path = prefix ? `${prefix}.${k}` : k;
      const s = target.properties[k];
      if (s) walk(s, child, path);
      else if (target.additionalProperties !== true && typeof target.additionalProperties !== 'object') out.push({ path, known: Object.keys(target.properties) });
    }
  };
  walk(jsonSchemaOf(schema), value, '');
  return out;
}
