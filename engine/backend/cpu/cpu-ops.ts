/**
 * The cpu backend: which kernels a model runs on. The native kernels (native.ts) when they are built and the model is
 * f32 (f32 or f16 frozen weights); otherwise the portable TypeScript ops, split over worker threads when the model was
 * loaded into shared memory ("cpu (portable, slow)": the UI and the run log say so).
 */
import type { ModelOps } from '../../model/ops.ts';
import type { ModelWeights } from '../../model/types.ts';
import { nativeOps } from './native-ops.ts';
import { nativeStatus } from './native.ts';
import { PORTABLE_NAME, portableOps } from './portable-ops.ts';
import { isShared } from './shared-arrays.ts';
import { configuredThreads, cpuThreadsWanted } from './thread-pool.ts';

let native: ModelOps | null | undefined;

/** The native op set, or null when the addon is not there. */
export function nativeModelOps(): ModelOps | null {
  if (native === undefined) {
    const n = nativeStatus().native;
    native = n === null ? null : nativeOps(n);
  }
  return native;
}

/** The ops for this model on the cpu: native for f32 models when built, else portable. */
export function cpuOps(model: ModelWeights): ModelOps {
  const n = model.norm instanceof Float32Array ? nativeModelOps() : null;
  if (n !== null) return n;
  return portableFor(model);
}

function portableFor(model: ModelWeights): ModelOps {
  return portableOps(isShared(model.lmHead) && cpuThreadsWanted());
}

/**
 * Whether a cpu model should be loaded into shared memory: only for the portable backend's worker threads (the
 * native kernels run their own threads on any memory).
 */
export function cpuSharedMemoryWanted(): boolean {
  return nativeModelOps() === null && cpuThreadsWanted();
}

export interface CpuBackendInfo {
  native: boolean;
  /** The instruction set of the native kernels (avx512, avx2, neon, scalar), null on the portable path. */
  isa: string | null;
  threads: number;
  /** For the UI and logs: "cpu (native avx512, 2 threads)" or "cpu (portable, slow)". */
  label: string;
  /** Why the portable path is used (null on the native one). */
  reason: string | null;
}

/** "cpu (…)" around an op set's name: the run's backend as the Runs page and the Playground show it. */
export function cpuLabel(opsName: string): string {
  return `cpu (${opsName})`;
}

export function cpuBackendInfo(): CpuBackendInfo {
  const st = nativeStatus();
  const ops = nativeModelOps();
  if (st.native === null || ops === null) return { native: false, isa: null, threads: configuredThreads(), label: cpuLabel(PORTABLE_NAME), reason: st.reason };
  const { isa, threads } = st.native.info();
  return { native: true, isa, threads, label: cpuLabel(ops.name), reason: null };
}
