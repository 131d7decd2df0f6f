/**
 * The cpu backend's thread pool: the big matrix products and attention of a step split across worker_threads that
 * read and write shared memory in place. Every output element is computed by exactly one thread with the same accumulation order as
 * the single-threaded kernel, so results are bit-identical for any thread count (tests check it).
 *
 * The calling thread blocks in Atomics.wait while the workers run (the engine's loops are synchronous, and the engine
 * itself is a worker, or a CLI process, where blocking is allowed) and does a share of the rows itself. Threads:
 * LORA_STUDIO_CPU_THREADS (1 = no pool), else the machine's parallelism, at most 8. Workers are unref'd, so a CLI
 * process still exits when its work is done.
 */
import { availableParallelism } from 'node:os';
import { isMainThread, workerData, type Worker } from 'node:worker_threads';
import { startWorkerModule } from '../../engine-host.ts';
import type { PackedFormat } from '../../quant/packed-weight.ts';

export type SharedKind = 'f32' | 'f64' | 'f16' | 'u8';

/** What a 'u8' reference holds: the bytes of a PackedWeight of this format and shape. */
export interface PackedMeta {
  format: PackedFormat;
  rows: number;
  cols: number;
}

/** A view of a shared array: its buffer, element type, first element and length. */
export interface SharedRef {
  buf: SharedArrayBuffer;
  kind: SharedKind;
  offset: number;
  length: number;
  /** Set for the bytes of a packed weight. */
  packed?: PackedMeta;
}

/** One thread's part of a product: out rows [r0, r1), or all rows and out columns [c0, c1) (ABt only). */
export interface MatmulPart {
  op: 'ABt' | 'AB';
  out: SharedRef;
  a: SharedRef;
  b: SharedRef;
  bias: SharedRef | null;
  M: number;
  K: number;
  N: number;
  accumulate: boolean;
  alpha: number;
  rows: [number, number] | null;
  cols: [number, number] | null;
}

/** One thread's part of attention: the (sequence, head) pairs [u0, u1) of engine/model/attention.ts. */
export interface AttentionPart {
  op: 'attnF' | 'attnB';
  arrays: Record<string, SharedRef>;
  shape: { batch: number; queryLen: number; keyLen: number; nHeads: number; nKvHeads: number; headDim: number; window: number | null };
  units: [number, number];
}

export type PoolPart = MatmulPart | AttentionPart;

export interface PoolTask {
  part: PoolPart;
  /** Which worker slot of the control block to signal. */
  slot: number;
}

/** Multiply-adds below which work stays on one thread (handing parts out costs tens of microseconds). */
export const PARALLEL_MIN_WORK = 1 << 21;

/** The shared memory behind a float array (or f16 bits), for a part. */
export function sharedRef(x: Float32Array | Float64Array | Uint16Array | Uint8Array, kind?: SharedKind): SharedRef {
  const k: SharedKind = kind ?? (x instanceof Float64Array ? 'f64' : x instanceof Uint16Array ? 'f16' : x instanceof Uint8Array ? 'u8' : 'f32');
  return { buf: x.buffer as SharedArrayBuffer, kind: k, offset: x.byteOffset / x.BYTES_PER_ELEMENT, length: x.length };
}

/** The array a part's reference stands for (f16 bits as a Uint16Array). */
export function viewOf(r: SharedRef): Float32Array | Float64Array | Uint16Array | Uint8Array {
  if (r.kind === 'u8') return new Uint8Array(r.buf, r.offset, r.length);
  if (r.kind === 'f16') return new Uint16Array(r.buf, r.offset * 2, r.length);
  return r.kind === 'f64' ? new Float64Array(r.buf, r.offset * 8, r.length) : new Float32Array(r.buf, r.offset * 4, r.length);
}

/** A part's float array (its kernels take no f16 bits there). */
export function floatViewOf(r: SharedRef, what: string): Float32Array | Float64Array {
  const v = viewOf(r);
  if (v instanceof Uint16Array || v instanceof Uint8Array) throw new Error(`cpu pool: ${what} cannot be f16 bits or packed bytes`);
  return v;
}

/** Splits [0, n) into at most `parts` ranges whose bounds are multiples of `align` (the last takes the rest). */
export function splitRanges(n: number, parts: number, align: number): [number, number][] {
  const step = Math.ceil(n / parts / align) * align;
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += step) out.push([s, Math.min(n, s + step)]);
  return out;
}

/** Set in the pool's own workers, where products always run single-threaded. */
export const IN_POOL_WORKER = !isMainThread && (workerData as { loraStudioCpuPool?: boolean } | null)?.loraStudioCpuPool === true;

/** Threads a product may use, the caller's included (≥ 1). */
export function configuredThreads(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.LORA_STUDIO_CPU_THREADS;
  if (raw !== undefined && raw.trim() !== '') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`LORA_STUDIO_CPU_THREADS must be a whole number from 1 to 256, got ${JSON.stringify(raw)}`);
    return n;
  }
  return Math.max(1, Math.min(8, availableParallelism()));
}

// Control block per worker (thread-pool-worker.ts writes it): [ready, done count, failed].
export const READY = 0;
export const DONE = 1;
export const FAILED = 2;
export const SLOT = 3;
/** How long a worker may take to start, or to finish one part, before the pool gives up on it. */
const START_TIMEOUT_MS = 60_000;
const PART_TIMEOUT_MS = 600_000;

export class CpuPool {
  readonly threads: number;
  private readonly workers: Worker[];
  private readonly ctrl: Int32Array;

  private constructor(workers: Worker[], ctrl: Int32Array) {
    this.workers = workers;
    this.ctrl = ctrl;
    this.threads = workers.length + 1;
  }

  /** Starts `threads − 1` workers and waits until they are ready; null when fewer than 2 threads are wanted. */
  static start(threads: number): CpuPool | null {
    if (threads < 2) return null;
    const ctrl = new Int32Array(new SharedArrayBuffer(4 * SLOT * (threads - 1)));
    const entry = new URL(import.meta.url.endsWith('.ts') ? './thread-pool-worker.ts' : './thread-pool-worker.js', import.meta.url);
    const workers: Worker[] = [];
    for (let w = 0; w < threads - 1; w++) {
      const worker = startWorkerModule(entry, { workerData: { loraStudioCpuPool: true, ctrl: ctrl.buffer, slot: w } });
      worker.unref();
      workers.push(worker);
    }
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (let w = 0; w < workers.length; w++) {
      while (Atomics.load(ctrl, w * SLOT + READY) === 0) {
        if (Date.now() > deadline) {
          for (const x of workers) void x.terminate();
          throw new Error(`cpu thread pool: worker ${w} did not start within ${START_TIMEOUT_MS / 1000} s`);
        }
        Atomics.wait(ctrl, w * SLOT + READY, 0, 100);
      }
    }
    return new CpuPool(workers, ctrl);
  }

  /**
   * Runs parts[1..] on the workers and `own` (parts[0]) here, then waits for all. At most `threads` parts.
   * Throws when a worker failed or stalled (the products' results are then undefined).
   */
  run<P extends PoolPart>(parts: P[], own: (part: P) => void): void {
    if (parts.length > this.threads) throw new Error(`cpu thread pool: ${parts.length} parts for ${this.threads} threads`);
    const expected: number[] = [];
    for (let i = 1; i < parts.length; i++) {
      const slot = i - 1;
      expected.push(Atomics.load(this.ctrl, slot * SLOT + DONE) + 1);
      this.workers[slot].postMessage({ part: parts[i], slot } satisfies PoolTask);
    }
    own(parts[0]);
    for (let i = 1; i < parts.length; i++) {
      const slot = i - 1;
      const at = slot * SLOT + DONE;
      const deadline = Date.now() + PART_TIMEOUT_MS;
      for (;;) {
        const done = Atomics.load(this.ctrl, at);
        if (done >= expected[i - 1]) break;
        if (Atomics.load(this.ctrl, slot * SLOT + FAILED) !== 0) throw new Error(`cpu thread pool: worker ${slot} failed (see its stderr)`);
        if (Date.now() > deadline) throw new Error(`cpu thread pool: worker ${slot} did not finish its part within ${PART_TIMEOUT_MS / 1000} s`);
        Atomics.wait(this.ctrl, at, done, 1000);
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

let pool: CpuPool | null | undefined;

/** The process's pool (started on first use); null in pool workers, with 1 thread, or if it could not start. */
export function cpuPool(): CpuPool | null {
  if (IN_POOL_WORKER) return null;
  if (pool === undefined) {
    try {
      pool = CpuPool.start(configuredThreads());
    } catch (e) {
      // Training still works single-threaded; say why once.
      process.stderr.write(`lora-studio: cpu threads off: ${e instanceof Error ? e.message : String(e)}\n`);
      pool = null;
    }
  }
  return pool;
}

/** The environment a worker gets for a cpuThreads setting (null: leave it to the machine, or to the variable). */
export function cpuThreadsEnv(setting: number | null, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return setting === null ? { ...env } : { ...env, LORA_STUDIO_CPU_THREADS: String(setting) };
}

/** Whether a pool would be used (without starting one): the cpu backend then allocates in shared memory. */
export function cpuThreadsWanted(): boolean {
  if (IN_POOL_WORKER) return false;
  if (pool !== undefined) return pool !== null;
  try {
    return configuredThreads() > 1;
  } catch {
    return false;
  }
}
