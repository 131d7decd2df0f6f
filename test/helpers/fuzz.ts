/**
 * A bounded, seeded mutation fuzzer for the readers a user can point at a file. Each case mutates a valid file
 * (bytes: flips, overwrites, truncation, splices, runs of 0xff; JSON: a value replaced by a hostile one, a key
 * dropped or added), feeds it to the reader and classifies the outcome: success, a typed error (the reader's own
 * error class, whose message names the file), or a fault (anything else: a raw TypeError/RangeError, or a case over
 * the time bound). Seeded, so a failing case is reproduced from its number; `LORA_STUDIO_FUZZ_CASES` runs more.
 */
import { Rng } from '../../engine/util/rng.ts';

export interface FuzzOutcome {
  ok: number;
  typed: number;
  faults: { index: number; what: string }[];
  slowestMs: number;
}

export interface FuzzTarget {
  /** Mutated variants of these bytes are written and read. */
  base: Uint8Array;
  /** 'json' mutates parsed values as well as bytes. */
  kind: 'bytes' | 'json';
  /** Writes the mutated bytes where `read` will find them. */
  write(bytes: Uint8Array): void;
  /** Reads what `write` put there (throws the reader's typed error on bad input). */
  read(): unknown;
  /** True for an error the reader is expected to throw: its own class, with a message naming the file. */
  typed(e: unknown): boolean;
  /** A case taking longer than this is a fault (default 2 000 ms). */
  timeLimitMs?: number;
}

/** How many cases a suite runs: the default, or LORA_STUDIO_FUZZ_CASES for a longer run. */
export function fuzzCases(fallback: number): number {
  const env = Number(process.env.LORA_STUDIO_FUZZ_CASES);
  return Number.isInteger(env) && env > 0 ? env : fallback;
}

const HOSTILE_VALUES: unknown[] = [
  2_000_000, 1e9, 2 ** 53, -1, 0, 1.5, 1e308, -1e308, 'x', '', null, true, [], {}, [1, 2, 3], { a: 1 }, 'A'.repeat(10_000),
];

function mutateBytes(base: Uint8Array, rng: Rng): Uint8Array {
  const pick = (n: number): number => Math.floor(rng.uniform() * n);
  const b = Uint8Array.from(base);
  switch (pick(6)) {
    case 0: {
      const flips = 1 + pick(4);
      for (let i = 0; i < flips; i++) b[pick(b.length)] ^= 1 << pick(8);
      return b;
    }
    case 1: {
      const n = 1 + pick(8);
      for (let i = 0; i < n; i++) b[pick(b.length)] = pick(256);
      return b;
    }
    case 2:
      return b.subarray(0, pick(b.length));
    case 3: {
      // A run of 0xff: huge little-endian sizes and counts.
      const at = pick(b.length);
      b.fill(0xff, at, Math.min(b.length, at + 1 + pick(8)));
      return b;
    }
    case 4: {
      // A chunk duplicated elsewhere (plausible but inconsistent structure).
      const from = pick(b.length);
      const len = 1 + pick(64);
      const chunk = b.slice(from, from + len);
      const at = pick(b.length);
      const out = new Uint8Array(b.length + chunk.length);
      out.set(b.subarray(0, at));
      out.set(chunk, at);
      out.set(b.subarray(at), at + chunk.length);
      return out;
    }
    default: {
      // Small ints written at an aligned offset: header fields such as counts and types.
      const at = pick(Math.max(1, b.length - 8)) & ~3;
      const v = [0, 1, 0x7fffffff, 0xffffffff, 1 << 20, 30, 255][pick(7)];
      new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(at, v >>> 0, true);
      return b;
    }
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path to a value inside `v` (objects and arrays), so one can be replaced. */
function paths(v: Json, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (out.length > 5000) return out;
  if (Array.isArray(v)) v.slice(0, 64).forEach((x, i) => { out.push([...prefix, i]); paths(x, [...prefix, i], out); });
  else if (v !== null && typeof v === 'object') for (const k of Object.keys(v)) { out.push([...prefix, k]); paths(v[k], [...prefix, k], out); }
  return out;
}

function mutateJson(base: Uint8Array, rng: Rng): Uint8Array {
  const pick = (n: number): number => Math.floor(rng.uniform() * n);
  const root = JSON.parse(new TextDecoder().decode(base)) as Json;
  const all = paths(root);
  if (all.length === 0) return mutateBytes(base, rng);
  const target = all[pick(all.length)];
  let parent: Json = root;
  for (const k of target.slice(0, -1)) parent = (parent as Record<string | number, Json>)[k];
  const key = target[target.length - 1];
  const holder = parent as Record<string | number, unknown>;
  const op = pick(4);
  if (op === 0 && !Array.isArray(parent)) delete holder[key];
  else if (op === 1 && !Array.isArray(parent)) holder[['__proto__', 'constructor', 'unknown_key'][pick(3)]] = HOSTILE_VALUES[pick(HOSTILE_VALUES.length)];
  else holder[key] = HOSTILE_VALUES[pick(HOSTILE_VALUES.length)];
  return new TextEncoder().encode(JSON.stringify(root));
}

/** Case `i` of a suite seeded `seed`: the bytes it writes (to reproduce one case on its own). */
export function mutation(base: Uint8Array, kind: FuzzTarget['kind'], seed: number, i: number): Uint8Array {
  const rng = new Rng(seed * 100_003 + i);
  return kind === 'json' && rng.uniform() < 0.6 ? mutateJson(base, rng) : mutateBytes(base, rng);
}

/** Runs `cases` mutated inputs through the target; returns the tally (the caller asserts 0 faults). */
export async function fuzz(target: FuzzTarget, cases: number, seed: number): Promise<FuzzOutcome> {
  const out: FuzzOutcome = { ok: 0, typed: 0, faults: [], slowestMs: 0 };
  const limit = target.timeLimitMs ?? 2000;
  for (let i = 0; i < cases; i++) {
    target.write(mutation(target.base, target.kind, seed, i));
    const t0 = performance.now();
    try {
      await target.read();
      out.ok++;
    } catch (e) {
      if (target.typed(e)) out.typed++;
      else out.faults.push({ index: i, what: e instanceof Error ? `${e.name}: ${e.message.slice(0, 300)}` : String(e) });
    }
    const ms = performance.now() - t0;
    out.slowestMs = Math.max(out.slowestMs, ms);
    if (ms > limit) out.faults.push({ index: i, what: `took ${Math.round(ms)} ms (bound ${limit} ms)` });
  }
  return out;
}

/** A readable summary of the first faults, for the assertion message. */
export function describeFaults(name: string, o: FuzzOutcome): string {
  return `${name}: ${o.faults.length} faults (ok ${o.ok}, typed ${o.typed}); first: ${o.faults.slice(0, 5).map((f) => `#${f.index} ${f.what}`).join(' | ')}`;
}
