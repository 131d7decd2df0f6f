/**
 * The portable backend's attention: engine/model/attention.ts's reference, with the (sequence, head) pairs split over
 * the cpu thread pool when every array is in shared memory — forward by query head, backward by kv head so each part
 * owns its dk/dv. Each output element is still computed by one thread in the same order, so results do not change.
 */
import * as attention from '../../model/attention.ts';
import type { AttentionShape } from '../../model/attention.ts';
import type { FloatArray } from '../../model/types.ts';
import { isShared } from './shared-arrays.ts';
import { cpuPool, floatViewOf, PARALLEL_MIN_WORK, sharedRef, splitRanges, type AttentionPart } from './thread-pool.ts';

export function forward(out: FloatArray, lse: FloatArray | null, q: FloatArray, k: FloatArray, v: FloatArray, s: AttentionShape): void {
  attention.check(s);
  if (tryParallel('attnF', { out, lse, q, k, v }, s, s.batch * s.nHeads)) return;
  attention.forwardUnits(out, lse, q, k, v, s, 0, s.batch * s.nHeads);
}

export function backward(dq: FloatArray, dk: FloatArray, dv: FloatArray, dOut: FloatArray, out: FloatArray, lse: FloatArray, q: FloatArray, k: FloatArray, v: FloatArray, s: AttentionShape): void {
  attention.check(s);
  if (tryParallel('attnB', { dq, dk, dv, dOut, lse, q, k, v }, s, s.batch * s.nKvHeads)) return;
  attention.backward(dq, dk, dv, dOut, out, lse, q, k, v, s);
}

function tryParallel(op: 'attnF' | 'attnB', arrays: Record<string, FloatArray | null>, s: AttentionShape, units: number): boolean {
  if (units < 2 || s.batch * s.nHeads * s.queryLen * s.keyLen * s.headDim < PARALLEL_MIN_WORK) return false;
  for (const a of Object.values(arrays)) if (a !== null && !isShared(a)) return false;
  const pool = cpuPool();
  if (!pool) return false;
  const refs: AttentionPart['arrays'] = {};
  for (const [name, a] of Object.entries(arrays)) if (a !== null) refs[name] = sharedRef(a);
  const parts: AttentionPart[] = splitRanges(units, Math.min(pool.threads, units), 1).map((r) => ({ op, arrays: refs, shape: s, units: r }));
  pool.run(parts, runAttentionPart);
  return true;
}

function floatsOf(part: AttentionPart, name: string): FloatArray {
  const r = part.arrays[name];
  if (!r) throw new Error(`attention part: array ${name} is missing`);
  return floatViewOf(r, `attention ${name}`);
}

/** One thread's share of a split attention (run by the pool's workers, and by the caller for the first part). */
export function runAttentionPart(part: AttentionPart): void {
  const [u0, u1] = part.units;
  const a = (name: string): FloatArray => floatsOf(part, name);
  if (part.op === 'attnF') attention.forwardUnits(a('out'), part.arrays.lse ? a('lse') : null, a('q'), a('k'), a('v'), part.shape, u0, u1);
  else attention.backwardUnits(a('dq'), a('dk'), a('dv'), a('dOut'), a('lse'), a('q'), a('k'), a('v'), part.shape, u0, u1);
}
